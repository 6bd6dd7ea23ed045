"""What listens at a discovery candidate: a Docker Model Runner, an OpenAI-compatible server, or neither.

``discovery.py`` loads this module once a candidate accepts a TCP (or unix socket) connection: a
plain ``GET`` on the socket, then the banner, the model list or an OpenAI ``/models`` list, read
with the protocol's layers. A run where nothing listens never loads it; one where only a server
of another kind listens (a Docker API socket without the model runner) loads no protocol module.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_dmr import discovery
from pytest_dmr.discovery import (
    ALIAS_PREFIX,
    ENGINES_PREFIX,
    ERROR,
    KIND_DMR,
    KIND_OPENAI,
    MANAGEMENT_MODELS_PATH,
    MODELS,
    NOT_DMR,
    ROOT_BANNER,
    ROOT_PATH,
    TIMEOUT,
    Target,
    _open,
    _Outcome,
)

if TYPE_CHECKING:
    from pytest_dmr.protocol.addresses import RunnerAddress

MAX_BODY = 1_000_000
"""Bytes of a probe's answer read at most (a model list; the banner is 30)."""


def _get(target: Target, ip: str, path: str) -> tuple[int, bytes]:
    """One ``GET``: the status and the body.

    Plain HTTP/1.0 on a socket, a few lines that cover what a probe needs (a status and a small
    body, ``Connection: close``): importing ``http.client`` (which brings ``ssl`` and ``email``)
    would cost a run more than the probe itself. Only an ``https`` URL, which a user must give
    explicitly, goes through ``http.client``.
    """
    host_header = urlsplit(target.root).netloc or "localhost"
    try:
        if urlsplit(target.root).scheme == "https":
            return _get_https(target, path, host_header)
        with _open(target, ip, discovery.HTTP_TIMEOUT) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode())
            received = bytearray()
            while len(received) <= MAX_BODY:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        if not received:
            raise _Outcome(ERROR, f"closed the connection without answering GET {path} (not an HTTP server?)")
        return _parse_response(bytes(received))
    except (socket.timeout, TimeoutError):
        raise _Outcome(TIMEOUT, f"no HTTP answer to GET {path} within {discovery.HTTP_TIMEOUT:g}s") from None
    except ValueError as exc:
        raise _Outcome(ERROR, f"answered GET {path} with something that is not HTTP ({str(exc)[:80]})") from None
    except OSError as exc:
        raise _Outcome(ERROR, f"the connection broke during GET {path} ({exc.strerror or exc.__class__.__name__})") from None


def _parse_response(raw: bytes) -> tuple[int, bytes]:
    """``(status, body)`` of a whole HTTP/1.x response; a chunked body is decoded. ``ValueError`` if malformed."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise ValueError("no end of headers")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, after_version = status_line.partition(" ")
    status = after_version[:3]
    if not version.startswith("HTTP/") or not status.isdigit():
        raise ValueError(f"not an HTTP status line: {status_line[:40]!r}")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        decoded = bytearray()
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                raise ValueError(f"not a chunk size: {size_line[:20]!r}") from None
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2 :]
        body = bytes(decoded)
    return int(status), body[:MAX_BODY]


def _get_https(target: Target, path: str, host_header: str) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPSConnection(target.host, target.port, timeout=discovery.HTTP_TIMEOUT)
    try:
        connection.request("GET", path, headers={"Host": host_header})
        response = connection.getresponse()
        return response.status, response.read(MAX_BODY)
    except http.client.HTTPException as exc:
        raise ValueError(str(exc)) from exc
    finally:
        connection.close()


def _json(body: bytes) -> Any:
    from pytest_dmr.protocol import encoding  # only when something answers

    try:
        return encoding.loads(body)
    except ValueError:
        return None


def _listed(read: Callable[[], Sequence[str]]) -> tuple[str, ...]:
    """The model names of a listing, or none when the listing cannot be read: the runner still answered."""
    from pytest_dmr import errors

    try:
        return tuple(read())
    except errors.MalformedResponseError:
        return ()


def identify(target: Target, ip: str) -> tuple[RunnerAddress, str, tuple[str, ...]]:
    """Ask what listens: Docker Model Runner, an OpenAI-compatible server, or something else (an
    ``_Outcome`` then says what it answered)."""
    root_path = urlsplit(target.root).path.rstrip("/")
    status, body = _get(target, ip, root_path + ROOT_PATH)
    if status == 200 and body.decode(errors="replace").strip().startswith(ROOT_BANNER):
        from pytest_dmr.protocol import model_info  # only for a runner found

        models: tuple[str, ...] = ()
        status, listing = _get(target, ip, root_path + MANAGEMENT_MODELS_PATH)
        data = _json(listing) if status == 200 else None
        if isinstance(data, list):
            entries: list[Any] = data
            models = _listed(lambda: [model_info.ModelInfo.from_json(item).name for item in entries if isinstance(item, Mapping)])
        return target.address, KIND_DMR, models
    answers = [f"/ {status}"]
    for prefix in dict.fromkeys((target.api_prefix, ENGINES_PREFIX, ALIAS_PREFIX)):
        status, listing = _get(target, ip, root_path + prefix + MODELS)
        data = _json(listing) if status == 200 else None
        if isinstance(data, Mapping) and isinstance(data.get("data"), list):
            from pytest_dmr.protocol import addresses, model_info  # only for a runner found

            address = addresses.RunnerAddress(target.root, prefix)
            return address, KIND_OPENAI, _listed(lambda: model_info.model_ids_from_openai_list(data))
        answers.append(f"{prefix}{MODELS} {status}")
    raise _Outcome(NOT_DMR, "answered, but not as a model runner (HTTP " + ", ".join(answers) + ")")
