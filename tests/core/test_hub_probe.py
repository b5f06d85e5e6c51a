"""sources.hub_unreachable_reason: one quick hub probe for every study (local servers only, no network)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from adaptlab.core import sources


class _NotFound(BaseHTTPRequestHandler):
    def do_HEAD(self):  # any HTTP answer, even an error status, means the hub is reachable
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_answering_server_is_reachable_even_with_an_error_status(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}/")
        assert sources.hub_endpoint() == f"http://127.0.0.1:{server.server_port}"
        assert sources.hub_unreachable_reason(timeout_s=2.0) is None
    finally:
        server.shutdown()


def test_a_closed_port_is_unreachable_with_the_reason(monkeypatch):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    reason = sources.hub_unreachable_reason(timeout_s=2.0)
    assert reason is not None and reason.startswith(f"http://127.0.0.1:{port}: ") and "refused" in reason.lower()


def test_a_hanging_endpoint_gives_up_in_time(monkeypatch):
    monkeypatch.setattr(sources.urllib.request, "urlopen", lambda *a, **k: time.sleep(30))
    start = time.perf_counter()
    reason = sources.hub_unreachable_reason(timeout_s=0.2)
    assert time.perf_counter() - start < 3.0 and reason is not None and "no answer" in reason
