"""pytest-dmr: Docker Model Runner for tests: live when a runner is there, a deterministic mock when not."""
