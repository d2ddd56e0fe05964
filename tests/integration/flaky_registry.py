"""A registry that fails now and then, for the tests: a loopback proxy in front of the lab's
registry that turns down the first pushes of manifests (by BuildKit, or by any client) with an
answer of our choosing (what real registries behind load balancers do now and then), and
passes everything else through untouched."""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Refusal:
    """How many manifest pushes to turn down, from which client (User-Agent prefix), and with what."""

    count: int
    agent: str = "buildkit/"  # "" for any client: buildx imagetools says containerd/… or buildx/…
    status: int = 400
    body: bytes = b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}'
    refused: list[str] = field(default_factory=list)  # the paths turned down, in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path: str) -> bool:
        with self.lock:
            if len(self.refused) >= self.count:
                return False
            self.refused.append(path)
            return True


class FlakyRegistry:
    """`with FlakyRegistry("127.0.0.1:5000", Refusal(1)) as reg:` push to `reg.address`."""

    def __init__(self, upstream: str, refusal: Refusal) -> None:
        self.upstream, self.refusal = upstream, refusal
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads the refusals
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self) -> None:
                body = self._body()
                agent = self.headers.get("User-Agent", "")
                if (
                    self.command == "PUT"
                    and "/manifests/" in self.path
                    and agent.startswith(registry.refusal.agent)
                    and registry.refusal.take(self.path)
                ):
                    body = registry.refusal.body
                    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
                    self._answer(registry.refusal.status, headers, body)
                    return
                conn = http.client.HTTPConnection(registry.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    if self.command in ("PUT", "POST", "PATCH"):
                        headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
                    if self.command != "HEAD":
                        out = [(k, v) for k, v in out if k.lower() != "content-length"]
                        out.append(("Content-Length", str(len(data))))
                    self._answer(resp.status, out, data)
                finally:
                    conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        return Handler
