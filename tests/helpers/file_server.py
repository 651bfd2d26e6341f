"""A file server on 127.0.0.1 for download tests: Range requests, broken and slow transfers."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DROP_AFTER = 100_000
SLOW_CHUNK = 1 << 16
SLOW_PAUSE_S = 0.02


class FileServer:
    """Serves `files` with Range support; `plan` lists one behaviour per coming request.

    Behaviours: "ok", "drop" (announce the full length, send DROP_AFTER bytes, close), "wrong"
    (same length, other bytes), "norange" (ignore Range, send everything with 200), "500",
    "slow" (send SLOW_CHUNK bytes every SLOW_PAUSE_S seconds, until done or the client leaves).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.plan: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers.items())))
                owner.serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        behaviour = self.plan.pop(0) if self.plan else "ok"
        data = self.files.get(h.path)
        if behaviour == "500":
            h.send_error(500, "Internal Server Error")
            return
        if data is None:
            h.send_error(404, "Not Found")
            return
        if behaviour == "wrong":
            data = bytes(b ^ 0x55 for b in data)
        start, status = 0, 200
        rng = h.headers.get("Range")
        if rng and behaviour != "norange":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        body = data[start:]
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("ETag", '"v1"')
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if behaviour == "drop":
            h.wfile.write(body[:DROP_AFTER])
            h.wfile.flush()
            h.close_connection = True
            return
        if behaviour == "slow":
            for i in range(0, len(body), SLOW_CHUNK):
                try:
                    h.wfile.write(body[i : i + SLOW_CHUNK])
                    h.wfile.flush()
                except OSError:  # the client cancelled and closed the connection
                    return
                time.sleep(SLOW_PAUSE_S)
            return
        h.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
