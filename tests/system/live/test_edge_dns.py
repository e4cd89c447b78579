"""How nginx finds the replicas under Compose, without Docker: through DNS, per request.

`docker compose --scale website=3` gives the service name `website` one address per replica in
Docker's DNS. nginx is rendered here with Compose's own values for the template (from
docker-compose.yml; the abuse limits are test_edge_nginx.py's small ones, which these requests do
not reach), except that its resolver is a DNS stand-in on 127.0.0.1, which answers
`website` and `chat` with several loopback addresses, each a stand-in replica that names itself in
its answers. So the tests can show what Compose relies on: every replica gets requests, one that
is gone is skipped, and one recreated with a new address gets requests once the resolver's answer
expires (`valid=10s` in the template).
"""

import http.client
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from test_edge_nginx import start_nginx

ROOT = Path(__file__).resolve().parents[3]
WEBSITE = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
CHAT = ["127.0.0.5", "127.0.0.6"]
RESOLVER_VALID_SECONDS = 10  # `resolver ... valid=10s` in the template


class Dns:
    """A DNS server answering A queries from `records` (name -> addresses), NXDOMAIN otherwise."""

    def __init__(self):
        self.records: dict[str, list[str]] = {}
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                query, client = self.socket.recvfrom(512)
            except OSError:
                return  # closed
            self.socket.sendto(self.answer(query), client)

    def answer(self, query: bytes) -> bytes:
        ident = query[:2]
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1 : i + 1 + query[i]].decode())
            i += 1 + query[i]
        question = query[12 : i + 5]  # the name, its end, type and class
        qtype = struct.unpack(">H", query[i + 1 : i + 3])[0]
        name = ".".join(labels)
        addresses = self.records.get(name, []) if qtype == 1 else []
        rcode = 0 if name in self.records else 3
        header = ident + struct.pack(">HHHHH", 0x8180 | rcode, 1, len(addresses), 0, 0)
        answers = b"".join(
            struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(address) for address in addresses
        )
        return header + question + answers

    def close(self):
        self.socket.close()


class Replica(BaseHTTPRequestHandler):
    """A website or chat replica: answers every request with the address it listens on."""

    def do_GET(self):
        body = self.server.server_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_replica(address: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((address, port), Replica)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def port_free_on(addresses: list[str]) -> int:
    """A port that every one of the addresses can bind."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses:
                with socket.socket() as s:
                    s.bind((address, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on every address")


def compose_nginx_environment() -> dict:
    """The template's topology values as docker-compose.yml gives them to the nginx image."""
    environment = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["nginx"]["environment"]
    return {name: str(environment[name]) for name in ["NGINX_UPSTREAMS", "WEBSITE_UPSTREAM", "CHAT_UPSTREAM"]}


class Edge:
    """nginx rendered as under Compose in front of the stand-in replicas, asking the DNS stand-in."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.dns = Dns()
        self.dns.records = {"website": list(WEBSITE), "chat": list(CHAT)}
        self.website_port = port_free_on(WEBSITE + ["127.0.0.7"])
        self.chat_port = port_free_on(CHAT)
        self.replicas = {address: start_replica(address, self.website_port) for address in WEBSITE}
        self.replicas |= {address: start_replica(address, self.chat_port) for address in CHAT}
        compose = compose_nginx_environment()
        website_upstream = compose["WEBSITE_UPSTREAM"].replace(":8000", f":{self.website_port}")
        chat_upstream = compose["CHAT_UPSTREAM"].replace(":9000", f":{self.chat_port}")
        assert website_upstream == f"website:{self.website_port}", "Compose names the service"
        self.nginx, self.port = start_nginx(
            folder,
            self.website_port,
            self.chat_port,
            # Compose's values, with the stand-ins' ports; Docker's DNS is the stand-in.
            NGINX_UPSTREAMS=compose["NGINX_UPSTREAMS"],
            WEBSITE_UPSTREAM=website_upstream,
            CHAT_UPSTREAM=chat_upstream,
            NGINX_RESOLVER=f"127.0.0.1:{self.dns.port}",
        )

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        return response.status, body

    def answering(self, path: str, requests: int) -> list[str]:
        """Who answered each of `requests` requests (all must be 200)."""
        answers = [self.get(path) for _ in range(requests)]
        assert all(status == 200 for status, _ in answers), answers
        return [body for _, body in answers]

    def log(self) -> list[dict]:
        path = self.folder / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def close(self):
        self.nginx.terminate()
        self.nginx.wait(10)
        for server in self.replicas.values():
            server.shutdown()
            server.server_close()
        self.dns.close()


@pytest.fixture
def edge(tmp_path):
    edge = Edge(tmp_path)
    yield edge
    edge.close()


def test_requests_reach_every_replica_of_each_service_and_the_log_names_it(edge):
    # Each request starts at a random address of the answer: 60 requests miss one of three
    # replicas with a chance of 3 * (2/3)^60, about 10^-10.
    pages = edge.answering("/", 60)
    sockets = edge.answering("/ws", 40)

    assert set(pages) == set(WEBSITE)
    assert set(sockets) == set(CHAT)
    # The access log's upstream_addr is the replica that answered. nginx's two workers each write
    # a line once their request is over, so two requests in a row may be logged in either order:
    # the lines are compared as a whole, each replica named as often as it answered.
    lines = edge.log()
    assert sorted(line["upstream_addr"] for line in lines) == sorted(
        [f"{address}:{edge.website_port}" for address in pages]
        + [f"{address}:{edge.chat_port}" for address in sockets]
    )


def test_a_replica_that_is_gone_is_skipped(edge):
    gone = edge.replicas.pop(WEBSITE[1])
    gone.shutdown()
    gone.server_close()

    pages = edge.answering("/", 30)

    assert set(pages) == {WEBSITE[0], WEBSITE[2]}


def test_a_replica_recreated_with_a_new_address_gets_requests_once_the_answer_expires(edge):
    edge.answering("/", 5)  # nginx now holds the answer with the three addresses
    # Compose recreates the second replica: a new container, a new address.
    old = edge.replicas.pop(WEBSITE[1])
    old.shutdown()
    old.server_close()
    edge.replicas["127.0.0.7"] = start_replica("127.0.0.7", edge.website_port)
    edge.dns.records["website"] = [WEBSITE[0], WEBSITE[2], "127.0.0.7"]

    # Meanwhile every request is answered: the old address is skipped.
    deadline = time.monotonic() + RESOLVER_VALID_SECONDS + 5
    seen: set[str] = set()
    while "127.0.0.7" not in seen and time.monotonic() < deadline:
        seen |= set(edge.answering("/", 3))
        time.sleep(0.2)

    assert "127.0.0.7" in seen, f"the new replica got no request within {RESOLVER_VALID_SECONDS + 5} s"
    assert WEBSITE[1] not in seen
