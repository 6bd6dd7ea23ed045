"""Model names as DMR normalises and compares them (DMR-PROTOCOL.md section 4)."""

from __future__ import annotations


from pytest_dmr.protocol._regex import compiled


_HEX_ID = r"^(?:[0-9a-f]{12}|[0-9a-f]{64}|sha256:[0-9a-f]{64})$"


def looks_like_model_id(ref: str) -> bool:
    """True for a model ID or its short form: 12 or 64 lowercase hex, or ``sha256:<64 hex>``."""
    return bool(compiled(_HEX_ID).match(ref))


def normalize_model_name(name: str) -> str:
    """Normalise a model reference exactly as DMR does before every local lookup.

    ``smollm2`` -> ``ai/smollm2:latest``; ``SmolLM2:360M-Q4_K_M`` -> ``ai/smollm2:360M-Q4_K_M``
    (the name is lowercased, the tag keeps its case); ``hf.co/Org/M`` -> ``huggingface.co/org/m:latest``.
    IDs and digest references come back unchanged.
    """
    ref = name.strip()
    if not ref:
        return ""
    if ref.startswith("hf.co/"):
        ref = "huggingface.co/" + ref[len("hf.co/") :]
    if looks_like_model_id(ref) or "@" in ref:
        return ref
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        repo, tag = ref[:colon], ref[colon + 1 :]
    else:
        repo, tag = ref, ""
    if "/" not in repo:
        repo = "ai/" + repo
    return f"{repo.lower()}:{tag or 'latest'}"


def canonical_model_name(ref: str) -> str:
    """The fully qualified form used to compare references: ``docker.io/ai/smollm2:latest``.

    Runners since v1.0.11 store tags as ``docker.io/ai/...``, older ones as ``ai/...``; both, and
    ``index.docker.io/...`` and the implicit ``library/`` org, compare equal in this form.
    """
    normalized = normalize_model_name(ref)
    if not normalized or looks_like_model_id(normalized) or "@" in normalized:
        return normalized
    first, _, rest = normalized.partition("/")
    if "." in first or ":" in first or first == "localhost":
        registry, path = first, rest
    else:
        registry, path = "docker.io", normalized
    if registry == "index.docker.io":
        registry = "docker.io"
    if registry == "docker.io" and path.startswith("library/"):
        path = "ai/" + path[len("library/") :]
    return f"{registry}/{path}"


def same_model(a: str, b: str) -> bool:
    """Whether two references name the same model once both are canonical."""
    return canonical_model_name(a) == canonical_model_name(b)


def short_model_name(ref: str) -> str:
    """The CLI's display form: no ``docker.io/``, no ``ai/``, no ``:latest``."""
    name = ref
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("ai/"):
        name = name[len("ai/") :]
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return name


_DOCKER_REFERENCE = (
    r"^(?:(?P<domain>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@sha256:[0-9a-f]{64})?$"
)


def is_valid_reference(normalized: str) -> bool:
    """Whether a normalised name parses as a Docker reference (a pull answers 400 otherwise)."""
    return bool(normalized) and bool(compiled(_DOCKER_REFERENCE).match(normalized))


def partial_name_matches(ref: str, tag: str) -> bool:
    """``GET /models/{ref}``'s fallback: the tag without its ``:tag`` and its path equals ``ref``.

    ``smollm2`` matches ``docker.io/ai/smollm2:360M-Q4_K_M`` and ``myorg/smollm2:v1``; case-sensitive.
    """
    colon = tag.rfind(":")
    name = tag[:colon] if colon >= 0 else tag
    return name[name.rfind("/") + 1 :] == ref
