"""`hpsearch storage-server`: Optuna's gRPC storage proxy in front of one study database, so that thousands of
workers each hold a channel to it rather than a connection (and a cache of every trial) to the database.

    hpsearch storage-server --storage postgresql://USER@DBHOST/DB --host 0.0.0.0 --port 13000
    hpsearch worker studies/NAME.yaml --storage grpc://SERVERHOST:13000     # on every worker machine

The database is opened by `storage.open_storage` (SQLite: WAL, busy timeout), behind Optuna's trial cache.
"""

from __future__ import annotations

import socket
import sys
from concurrent.futures import ThreadPoolExecutor

import optuna

from hpsearch.errors import EXIT_FAILURE, EXIT_OK, SpecError, redact
from hpsearch.results.dashboard import LOOPBACK
from hpsearch.results.stopping import sigterm_stops
from hpsearch.results.storage import checked_url, open_storage
from hpsearch.spec.storage_url import GRPC_MISSING, grpc_address, grpc_installed

SOURCE = "hpsearch storage-server"
DEFAULT_PORT = 13000  # Optuna's (run_grpc_proxy_server, GrpcStorageProxy)
DEFAULT_THREADS = 10  # Optuna's: requests served at once; each holds one database connection while it runs


def address_for(host: str, port: int) -> str:
    """The grpc:// URL workers give: a wildcard bind is reached by this machine's name."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = socket.getfqdn()
    return f"grpc://{f'[{host}]' if ':' in host and not host.startswith('[') else host}:{port}"


def build(storage: optuna.storages.BaseStorage, threads: int):
    """The gRPC server with Optuna's proxy service (Optuna's own `make_server` hides the port it bound)."""
    import grpc
    from optuna.storages._grpc.auto_generated import api_pb2_grpc
    from optuna.storages._grpc.servicer import OptunaStorageProxyService

    # No SO_REUSEPORT (gRPC's default): a second server on a taken port must fail, not share it unseen.
    server = grpc.server(ThreadPoolExecutor(max_workers=threads), options=[("grpc.so_reuseport", 0)])
    api_pb2_grpc.add_StorageServiceServicer_to_server(OptunaStorageProxyService(storage), server)
    return server


def serve(
    url: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    threads: int = DEFAULT_THREADS,
    field: str = "--storage",
) -> int:
    """Serve the storage at `url` until Ctrl-C or SIGTERM (exit 0); a port taken is exit 1, bad input exit 2.

    `field` is where the URL came from (`--storage` or `$HPSEARCH_STORAGE`), for the errors to name.
    `port=0` takes a free port; the first line on stdout is the grpc:// URL that answers."""
    if grpc_address(url) is not None:
        raise SpecError(
            SOURCE,
            field,
            f"{url!r} is a storage server itself: give the database's URL (sqlite:///FILE, postgresql://...)",
        )
    checked_url(url, SOURCE, field, write=True)
    if not grpc_installed():
        raise SpecError(SOURCE, "", f"the gRPC proxy needs {GRPC_MISSING}")
    if threads < 1:
        raise SpecError(SOURCE, "--threads", f"must be at least 1, got {threads}")
    # get_storage wraps the RDBStorage in Optuna's cache of finished trials, which its docs ask for here.
    storage = optuna.storages.get_storage(open_storage(url, create=True))
    server = build(storage, threads)
    listen = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        bound = server.add_insecure_port(f"{listen}:{port}")
    except RuntimeError as exc:
        bound, reason = 0, str(exc)
    else:
        reason = "the port is taken or the address is not this machine's"
    if not bound:
        print(f"error: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    server.start()
    try:  # from the URL on, Ctrl-C or SIGTERM is the way it ends: exit 0
        print(f"storage server: {address_for(host, bound)}", flush=True)
        print(f"storage: {redact(url)}")
        print(f"workers: hpsearch worker STUDY --storage {address_for(host, bound)}")
        if host not in LOOPBACK:
            print(
                f"warning: anyone who reaches {host}:{bound} can read, change, delete these studies (no login, no TLS)"
            )
        print("Ctrl-C to stop", flush=True)
        with sigterm_stops():
            server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=5).wait()  # requests under way finish; a worker's next call fails and says so
    return EXIT_OK
