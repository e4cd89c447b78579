"""nginx's edge rules on their own: its own pages carry the security headers, and each abuse limit
answers 429 with Retry-After.

These run an nginx of their own, rendered from the same template with tiny limits, in front of a
stand-in upstream: one that answers every request at once, except WebSocket upgrades, which it
holds open like a chat socket. That makes every limit reachable in a few requests, and lets the
upstream vanish for a 502. The same rules through the real stack: test_edge.py.
"""

import http.client
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

LIMITS = {
    "NGINX_WS_PER_ADDRESS": "2",
    "NGINX_ACCOUNT_RATE": "1r/m",
    "NGINX_ACCOUNT_BURST": "2",
    "NGINX_TICKET_RATE": "1r/m",
    "NGINX_TICKET_BURST": "3",
    "NGINX_TICKET_SESSION_RATE": "1r/m",
    "NGINX_TICKET_SESSION_BURST": "1",
}
SECURITY_HEADERS = ["Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"]


class Upstream(BaseHTTPRequestHandler):
    """200 for everything; a WebSocket upgrade is held open until the test ends."""

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            time.sleep(30)
            return
        self.answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer()

    def answer(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def start_nginx(folder: Path, website_port: int, chat_port: int, **values: str) -> tuple[subprocess.Popen, int]:
    """nginx rendered from the template with the tiny limits, in front of 127.0.0.1:<website_port>
    and 127.0.0.1:<chat_port>; `values` replace template values (test_edge_dns.py gives Compose's).
    Returns the process and its port."""
    port = free_port()
    env = {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        "NGINX_LISTEN": f"127.0.0.1:{port}",
        "NGINX_RESOLVER": "127.0.0.1",
        "NGINX_ACCESS_LOG": str(folder / "access.log"),
        "NGINX_UPSTREAMS": "# none: one address each",
        "NGINX_STATUS_LISTEN": f"127.0.0.1:{free_port()}",
        "WEBSITE_UPSTREAM": f"127.0.0.1:{website_port}",
        "CHAT_UPSTREAM": f"127.0.0.1:{chat_port}",
        **LIMITS,
        **values,
    }
    script = (
        f'source "{ROOT}/scripts/lib/common.sh" && source "{ROOT}/scripts/lib/nginx.sh" && '
        f'nginx_render_template "{folder}/default.conf" && nginx_write_main_conf "{folder}" "{folder}/default.conf"'
    )
    subprocess.run(["bash", "-c", script], env=env, check=True, cwd=ROOT)
    nginx = subprocess.Popen(
        ["nginx", "-p", f"{folder}/", "-c", f"{folder}/nginx.conf", "-e", f"{folder}/error.log"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return nginx, port
        except OSError:
            time.sleep(0.05)
    nginx.kill()
    raise AssertionError(f"nginx did not start; see {folder}/error.log")


@pytest.fixture(scope="module")
def edge(tmp_path_factory, upstream):
    """nginx in front of the stand-in upstream: (port, the upstream's port)."""
    nginx, port = start_nginx(tmp_path_factory.mktemp("edge"), upstream, upstream)
    yield port
    nginx.terminate()
    nginx.wait(10)


@pytest.fixture(scope="module")
def edge_without_upstream(tmp_path_factory):
    """nginx whose upstreams are not listening: every proxied request is nginx's own 502."""
    nginx, port = start_nginx(tmp_path_factory.mktemp("edge-dead"), free_port(), free_port())
    yield port
    nginx.terminate()
    nginx.wait(10)


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def read_head(s: socket.socket) -> tuple[int, dict]:
    """The status and headers (lower-case names) of the HTTP answer on `s`."""
    s.settimeout(5)
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    head = reply.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head[0].split()[1]), headers


def raw_request(port: int, data: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(data)
        return read_head(s)


def assert_security_headers(headers, what):
    names = {k.lower(): v for k, v in dict(headers).items()}
    for name in SECURITY_HEADERS:
        assert name.lower() in names, f"{what}: no {name}"
    assert "object-src 'none'" in names["content-security-policy"], what
    assert "frame-ancestors 'none'" in names["content-security-policy"], what


def test_nginxs_own_502_carries_the_security_headers(edge_without_upstream):
    response = request(edge_without_upstream, "GET", "/")
    assert response.status == 502
    assert_security_headers(response.getheaders(), "502")


def test_nginxs_own_413_carries_the_security_headers(edge):
    response = request(edge, "POST", "/rooms", body=b"x" * 100_000, headers={"Content-Type": "text/plain"})
    assert response.status == 413
    assert_security_headers(response.getheaders(), "413")


def test_nginxs_own_414_and_400_carry_the_security_headers(edge):
    status, headers = raw_request(edge, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414
    assert_security_headers(headers, "414")
    status, headers = raw_request(edge, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert status == 400
    assert_security_headers(headers, "400")


def test_proxied_answers_keep_the_upstreams_headers_and_get_nginxs_only_where_missing(edge):
    response = request(edge, "GET", "/")
    assert response.status == 200
    # The stand-in upstream sends none, so each comes from nginx, exactly once.
    for name in SECURITY_HEADERS:
        assert len(response.headers.get_all(name) or []) == 1, name
    assert response.getheader("Retry-After") is None


def test_account_forms_are_limited_per_address_with_429_and_retry_after(edge):
    # Showing the forms never counts; only submissions do.
    for _ in range(5):
        assert request(edge, "GET", "/register", source="127.0.0.11").status == 200
    statuses = [request(edge, "POST", "/register", body=b"a=b", source="127.0.0.11").status for _ in range(4)]
    assert statuses[:3] == [200, 200, 200], "the first one and the burst of 2 pass"
    assert statuses[3] == 429
    # Login shares the budget: the same address is still over it.
    response = request(edge, "POST", "/login", body=b"a=b", source="127.0.0.11")
    assert response.status == 429
    assert int(response.getheader("Retry-After")) > 0
    assert_security_headers(response.getheaders(), "429")
    # Another address has its own budget.
    assert request(edge, "POST", "/login", body=b"a=b", source="127.0.0.12").status == 200


TICKET_PATH = "/api/rooms/0123456789abcdef01234567/ticket"


def ask_for_tickets(port: int, source: str, cookie: str | None, count: int) -> list[int]:
    headers = {"Cookie": cookie} if cookie else {}
    return [request(port, "POST", TICKET_PATH, headers=headers, source=source).status for _ in range(count)]


def test_tickets_are_limited_per_session_and_per_address_with_429_and_retry_after(edge):
    # Per session (address and session cookie): the first and a burst of 1 pass.
    assert ask_for_tickets(edge, "127.0.0.13", "session=anna", 4) == [200, 200, 429, 429]
    # Anna's refused requests took nothing from the address: Bob, behind the same address, gets
    # his, and with them the address's budget (the first and a burst of 3) is spent.
    assert ask_for_tickets(edge, "127.0.0.13", "lang=ru; session=bob", 2) == [200, 200]
    response = request(edge, "POST", TICKET_PATH, headers={"Cookie": "session=carl"}, source="127.0.0.13")
    assert response.status == 429, "a new session behind a spent address"
    assert int(response.getheader("Retry-After")) > 0
    assert_security_headers(response.getheaders(), "429")
    # The same session from another address has budgets of its own there.
    assert ask_for_tickets(edge, "127.0.0.16", "session=carl", 1) == [200]
    # Other API paths and pages are not part of the ticket budget.
    assert request(edge, "GET", "/rooms", source="127.0.0.13").status == 200


def test_the_secure_session_cookie_counts_as_a_session_and_no_cookie_as_one(edge):
    assert ask_for_tickets(edge, "127.0.0.17", "__Host-session=dora; lang=en", 3) == [200, 200, 429]
    # Requests without a session cookie (or with one whose name only ends in "session") share one
    # budget per address; the address's own is not spent, so a session there still passes.
    assert ask_for_tickets(edge, "127.0.0.18", None, 2) == [200, 200]
    assert ask_for_tickets(edge, "127.0.0.18", "mysession=erin", 1) == [429]
    assert ask_for_tickets(edge, "127.0.0.18", "session=frank", 1) == [200]


def test_the_services_internal_paths_are_never_forwarded(edge):
    # The upstream answers 200 to anything: a 404 here is nginx's own.
    notice = "/internal/rooms/0123456789abcdef01234567/deleted"
    for method, path in [("POST", notice), ("GET", notice), ("POST", "/internal/"), ("GET", "/internal/x")]:
        assert request(edge, method, path).status == 404, f"{method} {path}"
    assert request(edge, "POST", "/rooms/0123456789abcdef01234567/delete").status == 200


class Full(BaseHTTPRequestHandler):
    """A chat replica at its connection cap: 503 with Retry-After to every handshake."""

    def do_GET(self):
        self.send_response(503)
        self.send_header("Retry-After", "5")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class WithRoom(BaseHTTPRequestHandler):
    """A chat replica with room; marks its answer so the test sees who answered."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("X-Replica", "with-room")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def serve(handler) -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def test_a_handshake_a_full_replica_refuses_goes_to_a_replica_with_room(tmp_path, upstream):
    full, with_room = serve(Full), serve(WithRoom)
    for folder in ("pair", "alone"):
        (tmp_path / folder).mkdir()
    group = f"upstream chat_pair {{ server 127.0.0.1:{full} max_fails=0; server 127.0.0.1:{with_room} max_fails=0; }}"
    nginx, port = start_nginx(tmp_path / "pair", upstream, 0, NGINX_UPSTREAMS=group, CHAT_UPSTREAM="chat_pair")
    alone, alone_port = start_nginx(tmp_path / "alone", upstream, full)
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    try:
        # Round robin starts at either replica; every handshake ends at the one with room.
        answers = [request(port, "GET", "/ws", headers=upgrade, source=f"127.0.0.{20 + i}") for i in range(4)]
        assert [(a.status, a.getheader("X-Replica")) for a in answers] == [(200, "with-room")] * 4
        # With no replica that has room, the client hears it: 503 and when to come back.
        refused = request(alone_port, "GET", "/ws", headers=upgrade, source="127.0.0.30")
        assert (refused.status, refused.getheader("Retry-After")) == (503, "5")
    finally:
        for process in (nginx, alone):
            process.terminate()
            process.wait(10)


def open_socket(port: int, source: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), 5, source_address=(source, 0))
    s.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    return s


def test_open_chat_sockets_are_capped_per_address_with_429(edge):
    held = [open_socket(edge, "127.0.0.14") for _ in range(2)]
    time.sleep(0.3)  # both reach the upstream and stay open there
    with open_socket(edge, "127.0.0.14") as third:
        status, headers = read_head(third)
    assert status == 429
    assert int(headers["retry-after"]) > 0
    # Another address is not affected.
    other = open_socket(edge, "127.0.0.15")
    time.sleep(0.3)
    other.settimeout(0.5)
    with pytest.raises(socket.timeout):
        other.recv(1)  # held by the upstream, not refused by nginx
    for s in held + [other]:
        s.close()
