"""`hpsearch dashboard`: optuna-dashboard on a study's storage, safe to open while a sweep writes to it.

Not the `optuna-dashboard` CLI: it opens a bare RDBStorage (5 s busy timeout, no WAL switch, an empty file and a crash
for a wrong path); we serve its WSGI app (`optuna_dashboard.wsgi`) on `storage.open_storage` (read only: the
journal mode left as found; 60 s busy timeout).

    python -m hpsearch.results.dashboard sqlite:///studies/quickstart.db [--host 127.0.0.1] [--port 8080] [--study NAME]

The dashboard only reads on its own; it writes when its user acts (notes, tell, rename, delete).
"""

from __future__ import annotations

import argparse
import socket
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hpsearch.errors import EXIT_FAILURE, EXIT_INVALID, EXIT_OK, NotFound, missing_study, redact
from hpsearch.results.stopping import sigterm_stops
from hpsearch.results.storage import open_storage

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # stopping does not wait for a browser's open connection


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """The page polls every few seconds: log only server errors, not each request."""

    def log_request(self, code="-", size="-") -> None:
        if str(getattr(code, "value", code)).startswith("5"):
            super().log_request(code, size)


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(storage_url: str, host: str = "127.0.0.1", port: int = 8080, study_name: str | None = None) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM; returns the exit status (0, 1 runtime, 2 bad input).

    `port=0` takes a free port; the URL printed first on stdout is the one that answers.
    With `study_name`, that study must exist and its page is printed too.
    """
    try:
        storage = open_storage(storage_url, create=False, read_only=True)
        study_id = None
        if study_name is not None:
            try:
                study_id = storage.get_study_id_from_name(study_name)
            except KeyError:
                raise missing_study(study_name, storage_url) from None
    except NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        import optuna_dashboard
    except ImportError:
        print("error: optuna-dashboard is not installed (pip install optuna-dashboard)", file=sys.stderr)
        return EXIT_FAILURE
    app = optuna_dashboard.wsgi(storage)
    try:
        server = make_server(
            host, port, app, server_class=_Server6 if ":" in host else _Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    with server:
        try:  # from the URL on, Ctrl-C or SIGTERM is the way it ends: exit 0
            url = url_for(host, server.server_port)
            print(f"dashboard: {url}/dashboard", flush=True)
            if study_id is not None:
                print(f"study {study_name}: {url}/dashboard/studies/{study_id}")
            print(f"storage: {redact(storage_url)}")
            if host not in LOOPBACK:
                print(f"warning: anyone who reaches {host}:{server.server_port} can edit and delete these studies")
            print("Ctrl-C to stop", flush=True)
            with sigterm_stops():
                server.serve_forever()
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpsearch.results.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("storage", help="SQLAlchemy URL of the study storage, e.g. sqlite:///studies/quickstart.db")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    parser.add_argument("--study", help="the study to link to (it must exist)")
    args = parser.parse_args(argv)
    return serve(args.storage, args.host, args.port, args.study)


if __name__ == "__main__":
    sys.exit(main())
