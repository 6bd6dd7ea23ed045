"""A tiny Docker Model Runner stand-in for the plugin's tests: stdlib HTTP server, a thread per request.

It answers just enough of DMR's API (``GET /`` banner, ``/models``, ``/engines/v1/models``,
``/engines/v1/chat/completions``, ``POST /models/create``), built from ``pytest_dmr.protocol``,
and logs every request so tests can count probes. ``openai_only=True`` makes it a bare
OpenAI-compatible server (no banner, no management API), like a plain llama.cpp server.
``pull_error="..."`` makes every pull fail with that error line. ``hold_pulls=S`` keeps a pull going until someone else looks models up (``GET /models...``),
for at most S seconds: concurrent pulls of one model then overlap for sure.
It binds 127.0.0.1 on port 0; the real emulator on llama.cpp lives elsewhere.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_dmr.protocol import addresses, encoding, error_bodies, model_info, model_names, openai_api, pull_stream, routes

LIVE_ANSWER = "an answer from the live stand-in"


class StandIn:
    def __init__(
        self,
        *,
        models: tuple[str, ...] = ("docker.io/ai/smollm2:latest",),
        openai_only: bool = False,
        hold_pulls: float = 0.0,
        pull_error: str | None = None,
    ) -> None:
        self.models = [model_info.ModelInfo(id=f"sha256:{index:012x}{index:052x}", tags=(name,), config={"size": "256.35 MiB"}) for index, name in enumerate(models, 1)]
        self.openai_only = openai_only
        self.hold_pulls = hold_pulls
        self.pull_error = pull_error
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._model_lookups = 0
        self._looked_up = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _hold_pull(self) -> None:
        """Wait until another request looks a model up, or ``hold_pulls`` seconds have passed."""
        with self._looked_up:
            seen = self._model_lookups
            self._looked_up.wait_for(lambda: self._model_lookups > seen, timeout=self.hold_pulls)

    def _note_lookup(self) -> None:
        with self._looked_up:
            self._model_lookups += 1
            self._looked_up.notify_all()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for entry in self.requests if entry == (method, path))

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, value: Any, status: int = 200) -> None:
                self._send(status, (encoding.dumps(value) + "\n").encode(), encoding.JSON_CONTENT_TYPE)

            def _text(self, message: str, status: int) -> None:
                self._send(status, error_bodies.plain_error_body(message), encoding.TEXT_PLAIN)

            def _record(self) -> None:
                with standin._lock:
                    standin.requests.append((self.command, self.path))

            def do_GET(self) -> None:
                self._record()
                path = self.path
                if path.startswith(routes.MANAGEMENT_MODELS_PATH):
                    standin._note_lookup()
                if path == routes.ROOT_PATH and not standin.openai_only:
                    self._send(200, addresses.ROOT_BANNER.encode(), "text/plain; charset=utf-8")
                elif path == routes.MANAGEMENT_MODELS_PATH and not standin.openai_only:
                    self._json([model.to_json() for model in standin.models])
                elif path.startswith(routes.MANAGEMENT_MODELS_PATH + "/") and not standin.openai_only:
                    ref = path[len(routes.MANAGEMENT_MODELS_PATH) + 1 :]
                    found = [model for model in standin.models if model.matches(ref)]
                    if found:
                        self._json(found[0].to_json())
                    else:
                        self._text(error_bodies.MODEL_NOT_FOUND, 404)
                elif path in (routes.ENGINES_PREFIX + routes.MODELS, routes.ALIAS_PREFIX + routes.MODELS):
                    self._json(model_info.openai_model_list(standin.models))
                else:
                    self._text(error_bodies.PAGE_NOT_FOUND, 404)

            def do_POST(self) -> None:
                self._record()
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                route = routes.match_inference_path(self.path)
                if route is not None and route.endpoint == routes.CHAT_COMPLETIONS:
                    self._json(
                        openai_api.chat_completion(
                            id="chatcmpl-standin",
                            created=1,
                            model=str(body.get("model")),
                            content=LIVE_ANSWER,
                            finish_reason="stop",
                            prompt_tokens=3,
                            completion_tokens=6,
                        )
                    )
                elif self.path == routes.MODELS_CREATE_PATH and not standin.openai_only:
                    name = model_names.normalize_model_name(str(body.get("from", "")))
                    if standin.hold_pulls:
                        standin._hold_pull()
                    if standin.pull_error is not None:
                        line = pull_stream.pull_error_progress(standin.pull_error)
                        raw = pull_stream.pull_wants_raw_json(self.headers.get("Accept"))
                        self._send(200, pull_stream.encode_pull_line(line, raw_json=raw), pull_stream.pull_content_type(self.headers.get("Accept")))
                        return
                    standin.models.append(model_info.ModelInfo(id=f"sha256:{len(standin.models) + 1:064x}", tags=(name,)))
                    lines = [
                        pull_stream.PullProgress("progress", pull_stream.downloaded_message(512), 1024, "sha256:aa", 1024, 512),
                        pull_stream.PullProgress("progress", pull_stream.downloaded_message(1024), 1024, "sha256:aa", 1024, 1024),
                        pull_stream.PullProgress("success", pull_stream.PULL_SUCCESS_MESSAGE),
                    ]
                    raw = pull_stream.pull_wants_raw_json(self.headers.get("Accept"))
                    payload = b"".join(pull_stream.encode_pull_line(line, raw_json=raw) for line in lines)
                    self._send(200, payload, pull_stream.pull_content_type(self.headers.get("Accept")))
                else:
                    self._text(error_bodies.PAGE_NOT_FOUND, 404)

        return Handler
