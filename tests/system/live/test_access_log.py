"""nginx's access log: one JSON line per request, with timing, and never a ticket."""

import json
import socket
import time
import uuid
from urllib.parse import urlsplit

from test_chat import next_event, open_chat, ticket


def read_log(stack_logs) -> list[dict]:
    return [json.loads(line) for line in (stack_logs / "nginx-access.log").read_text().splitlines() if line]


def wait_for_line(stack_logs, predicate) -> dict:
    # nginx writes the line when the request ends; a WebSocket's line comes after its close.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        matches = [entry for entry in read_log(stack_logs) if predicate(entry)]
        if matches:
            return matches[-1]
        time.sleep(0.1)
    raise AssertionError("no such line in nginx-access.log")


def test_every_request_gets_exactly_one_line_with_the_timing_fields(visitor, stack_logs):
    agent = f"system-test-{uuid.uuid4().hex}"
    paths = ["/", "/login", "/register", "/readyz", "/no-such-page"]
    for path in paths:
        visitor.get(path, headers={"User-Agent": agent})

    wait_for_line(stack_logs, lambda e: e["user_agent"] == agent and e["uri"] == paths[-1])
    lines = [e for e in read_log(stack_logs) if e["user_agent"] == agent]

    assert [e["uri"] for e in lines] == paths
    for entry in lines:
        assert isinstance(entry["request_time"], (int, float))
        for field in ("upstream_connect_time", "upstream_header_time", "upstream_response_time"):
            assert float(entry[field]) >= 0, field
        assert entry["upstream_status"] == str(entry["status"])
    assert lines[-1]["status"] == 404


def test_each_request_is_logged_with_its_timing_and_upstream(member, stack_logs):
    marker = uuid.uuid4().hex
    member.get(f"/search?q={marker}")

    entry = wait_for_line(stack_logs, lambda e: e["uri"] == "/search" and e["request_id"] and e["method"] == "GET")

    assert entry["status"] == 200
    assert isinstance(entry["request_time"], float)
    assert float(entry["upstream_response_time"]) >= 0
    assert entry["upstream_addr"].startswith("127.0.0.1:")
    assert entry["bytes_sent"] > 0
    assert marker not in json.dumps(read_log(stack_logs)), "query strings are not logged"


def test_a_websocket_is_logged_as_an_upgrade_without_its_ticket(member, base_url, stack_logs):
    room_id = member.create_room(f"Logged room {uuid.uuid4().hex[:8]}")
    token = ticket(member, room_id)
    with open_chat(base_url, token) as chat:
        next_event(chat, "welcome")

    entry = wait_for_line(stack_logs, lambda e: e["uri"] == "/ws" and e["status"] == 101)

    assert entry["upstream_addr"].startswith("127.0.0.1:")
    assert float(entry["request_time"]) >= 0
    for log in ("nginx-access.log", "nginx-error.log"):
        text = (stack_logs / log).read_text()
        assert token not in text and token.split(".")[2] not in text, f"the ticket leaked into {log}"


def test_the_log_stays_valid_json_for_request_lines_that_are_not_utf8(base_url, stack_logs):
    marker = f"raw-bytes-{uuid.uuid4().hex}"
    address = urlsplit(base_url)
    requests = [
        b"GET /%FF%FE HTTP/1.1\r\nHost: x\r\nUser-Agent: " + marker.encode() + b"\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nUser-Agent: " + marker.encode() + b"\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: x\r\nUser-Agent: \xc3\x28" + marker.encode() + b"\r\n\r\n",
        b"\xff\xfe / HTTP/1.1\r\n\r\n",
    ]
    for raw in requests:
        with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
            connection.sendall(raw)
            connection.recv(4096)

    wait_for_line(stack_logs, lambda e: e["uri"] == "/ok" and e["user_agent"] == "(not UTF-8)")
    for line in (stack_logs / "nginx-access.log").read_bytes().splitlines():
        json.loads(line.decode("utf-8"))  # strict: raises on a byte that is not UTF-8
    logged = [e for e in read_log(stack_logs) if e["user_agent"] == marker]
    assert [e["uri"] for e in logged] == ["(not UTF-8)", "(not UTF-8)"]
