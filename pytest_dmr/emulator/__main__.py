"""``python -m pytest_dmr.emulator``: serve DMR's API on real llama.cpp (or the mock)."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys

from pytest_dmr.protocol import addresses, cors
from pytest_dmr.emulator.engines import DEFAULT_IDLE_TIMEOUT, DEFAULT_LOAD_TIMEOUT
from pytest_dmr.emulator.server import DEFAULT_CONNECTION_IDLE_TIMEOUT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_dmr.emulator",
        description="A Docker Model Runner stand-in: DMR's HTTP API, inference by llama.cpp (xllamacpp) "
        "or by pytest-dmr's deterministic mock.",
        epilog="Catalogue layout: DIR/<name>/<tag>.gguf is pulled as ai/<name>:<tag>; ai/<name>:latest is "
        "DIR/<name>/latest.gguf, or the only .gguf file in DIR/<name>. Symlinks are allowed.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=addresses.DEFAULT_PORT, help="port (default %(default)s; 0 picks one)")
    parser.add_argument("--catalog", required=True, metavar="DIR", help="directory of GGUF files that pulls copy from")
    parser.add_argument("--store", metavar="DIR", help="where pulled models live (default: a temporary directory)")
    parser.add_argument("--engine", choices=("auto", "llama", "mock"), default="auto",
                        help="auto: llama.cpp when xllamacpp is installed, else the mock (default)")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="S",
                        help="unload a model idle this many seconds (default %(default)s)")
    parser.add_argument("--load-timeout", type=float, default=DEFAULT_LOAD_TIMEOUT, metavar="S",
                        help="give up loading a model after this many seconds (default %(default)s)")
    parser.add_argument("--loading-503", action="store_true",
                        help="answer 503 'Loading model' while a model loads, as older runners did "
                        "(default: hold the request until the model is loaded, as current DMR does)")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per model (default 1: spinning threads stall on a busy machine; raise it on an idle one)")
    parser.add_argument("--ctx-size", type=int, default=2048, help="llama.cpp context size (default 2048)")
    parser.add_argument("--slots", type=int, default=None, help="most models loaded at once (default min(CPUs, 8))")
    parser.add_argument("--connection-idle-timeout", type=float, default=DEFAULT_CONNECTION_IDLE_TIMEOUT, metavar="S",
                        help="close a client connection that sends no request for S seconds; 0: never "
                        "(default %(default)s)")
    parser.add_argument("--origins", metavar="LIST", default=os.environ.get("DMR_ORIGINS"),
                        help="CORS origins allowed besides http(s)://localhost, 127.0.0.1 and 0.0.0.0 (with and without "
                        "a literal ':*' port), comma-separated, matched exactly as DMR does (default: $DMR_ORIGINS). "
                        "As in DMR, '*' here is one more exact entry, not a wildcard")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    return parser  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pytest_dmr.emulator.server import EmulatorServer

    try:
        server = EmulatorServer(
            args.catalog,
            host=args.host,
            port=args.port,
            engine=args.engine,
            store=args.store,
            idle_timeout=args.idle_timeout,
            load_timeout=args.load_timeout,
            loading_503=args.loading_503,
            threads=args.threads,
            ctx_size=args.ctx_size,
            slots=args.slots,
            log_requests=args.log_requests,
            connection_idle_timeout=args.connection_idle_timeout or None,
            origins=cors.allowed_origins(args.origins),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = f"cannot listen on {args.host}:{args.port}: the address is in use (a runner already there? pick another --port)"
        else:
            message = str(exc)
        print(f"pytest-dmr emulator: {message}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as exc:
        print(f"pytest-dmr emulator: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"pytest-dmr emulator on {server.url} (llama.cpp: {server.engine_status}; catalogue {args.catalog})",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
