"""A local stand-in for the Hugging Face Hub's file endpoint and for plain URL downloads."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves ``/{repo}/resolve/{revision}/{filename}`` (hub) and ``/raw/{filename}`` (URL)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _lookup(self) -> bytes | None:
                hub.requests.append((self.command, self.path))
                path = self.path.split("?")[0].lstrip("/")
                if "/resolve/" in path:
                    repo, rest = path.split("/resolve/", 1)
                    path = f"{repo}/{rest.split('/', 1)[1]}"
                return hub.files.get(path)

            def _headers(self, body: bytes) -> None:
                digest = hashlib.sha256(body).hexdigest()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", f'"{digest}"')
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()

            def _respond(self, with_body: bool) -> None:
                body = self._lookup()
                if body is None:  # as the hub answers for a file its repository lacks
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._headers(body)
                if with_body:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._respond(with_body=False)

            def do_GET(self) -> None:
                self._respond(with_body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
