"""Starting the service: one per RSOV_HOME, bound to loopback unless told otherwise, token always on."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
from pathlib import Path

from backend.errors import UserInputError
from backend.server.settings import ServiceSettings, load_token

log = logging.getLogger("rsov.serve")


def serve(host: str, port: int, token: str | None, output_roots: list[Path], max_upload_mb: int,
          max_polygons: int) -> int:
    """Run the service until SIGINT/SIGTERM; return the exit code."""
    import uvicorn

    from backend.server.app import create_app
    from backend.weights import rsov_home

    home = rsov_home()
    for name, value in (("max_upload_mb", max_upload_mb), ("max_polygons", max_polygons), ("port", port)):
        if value < 0:
            raise UserInputError(f"{{{name}}} {value} must be 0 or more.", name)
    for root in output_roots:
        if not root.expanduser().is_dir():
            raise UserInputError(f"{{output_root}} {root} is not a folder; give an existing folder.", "output_root")
    lock = _lock_home(home)
    settings = ServiceSettings(home=home, token=load_token(home, token), output_roots=tuple(output_roots),
                               max_upload_bytes=max_upload_mb * 2**20, max_polygons=max_polygons)
    listener = _listen(host, port)
    bound_host, bound_port = listener.getsockname()[:2]
    url = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}"
    app = create_app(settings)
    info = settings.state_folder / "server.json"
    info.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    token_note = "the token you gave" if token or os.environ.get("RSOV_TOKEN") else f"token in {settings.token_file}"
    print(f"rsov serve: listening on {url} ({token_note}); output roots: "
          f"{', '.join(map(str, output_roots)) or 'each input folder and ' + str(home)}", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"rsov serve: warning: {host} is reachable from other machines; the token still applies.",
              file=sys.stderr, flush=True)
    try:
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, lifespan="on")
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then passes SIGINT/SIGTERM on: a clean stop
        pass
    finally:
        info.unlink(missing_ok=True)
        os.close(lock)
    return 0


def _lock_home(home: Path) -> int:
    """Hold ``server/service.lock`` for the life of the process: one service per RSOV_HOME."""
    folder = home / "server"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(folder / "service.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        running = folder / "server.json"
        where = json.loads(running.read_text()).get("url", "?") if running.exists() else "?"
        raise UserInputError(f"another rsov serve is running with RSOV_HOME {home} (at {where}); use it, stop it, "
                             "or start this one with another RSOV_HOME.") from None
    return descriptor


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise UserInputError(f"cannot listen on {host}:{port} ({error.strerror}); choose another {{port}} "
                             "(0 picks a free one) or {host}.", "port", "host") from None
    listener.listen(128)
    return listener
