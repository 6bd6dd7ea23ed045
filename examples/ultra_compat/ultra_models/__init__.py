"""Ultra's ``src/models`` call patterns (see ../README.md); in Ultra these are ``src.models.*``."""
