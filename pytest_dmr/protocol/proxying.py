"""What a stand-in server in front of llama.cpp needs: hop-by-hop headers, upstream paths, crash bodies, metrics."""

from __future__ import annotations


from pytest_dmr.protocol.encoding import dumps


MAX_INFERENCE_BODY = 10 * 1024 * 1024
"""Inference bodies above 10 MiB get ``400 request too large``."""


METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_ACTIVE_RUNNERS_BODY = b"# No active runners\n"


HOP_BY_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
     "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Headers a reverse proxy drops in both directions (Go's ``httputil.ReverseProxy``)."""

_GO_SIGNAL_NAMES = {
    1: "hangup", 2: "interrupt", 4: "illegal instruction", 6: "aborted", 7: "bus error",
    8: "floating point exception", 9: "killed", 11: "segmentation fault", 15: "terminated",
}  # fmt: skip
"""How Go's ``syscall.Signal`` names the signals a crashed backend usually dies of (Linux numbers)."""


def backend_terminated_message(backend: str, returncode: int) -> str:
    """DMR's error for a backend process that exited on its own, e.g.
    ``llama.cpp terminated unexpectedly: signal: killed`` (Go's ``exec.ExitError`` wording)."""
    if returncode < 0:
        status = "signal: " + _GO_SIGNAL_NAMES.get(-returncode, f"signal {-returncode}")
    else:
        status = f"exit status {returncode}"
    return f"{backend} terminated unexpectedly: {status}"


def backend_crash_body(message: str) -> bytes:
    """The body of DMR's ``500`` when a runner's connection hits end of file and its process has exited."""
    return dumps({"type": "error", "code": None, "message": message, "param": None, "sequence_number": 1}).encode()


def upstream_path(path: str) -> str:
    """The path a runner forwards to its backend: cut to start at the first ``/v1/``."""
    index = path.find("/v1/")
    return path[index:] if index >= 0 else path
