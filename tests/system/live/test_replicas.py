"""scripts/stack with replicas: two website and two chat processes behind one nginx, and a Redis.

This needs a stack of its own (not the one tests/system/run starts): `WEBSITE_REPLICAS=2
CHAT_REPLICAS=2 scripts/stack up` with its own STACK_DIR and HTTP_PORT, stopped at the end. Through
its nginx: pages come from both website replicas and a signed-in session works on both (sessions
live in MongoDB), chat sockets spread over both chat replicas and two people on different replicas
talk in one room (rooms are shared through the stack's Redis), and a rolling restart of the website
keeps answering a signed-in person.
"""

import json
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from websockets.sync.client import connect

from conftest import PASSWORD, Page, Visitor, registered, unique_email
from private_stack import ROOT, PrivateStack, running
from test_chat import delete_room, next_event, ticket, told_of_deletion, ws_url

STACK_DIR = ROOT / "target" / "replicas-stack"


class Stack(PrivateStack):
    """A private stack with two replicas of each service (and so a Redis)."""

    def __init__(self):
        super().__init__(STACK_DIR.name, {
            "WEBSITE_REPLICAS": "2",
            "CHAT_REPLICAS": "2",
            "MONGODB_DB": "webchat_replicas",
        })

    def access_log(self) -> list[dict]:
        return [json.loads(line) for line in (self.dir / "logs" / "nginx-access.log").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def stack():
    yield from running(Stack())


@pytest.fixture
def person(stack) -> Visitor:
    """Someone who has just registered through the stack's nginx, and so is signed in."""
    return registered(stack.base_url)


def lines_of(stack: Stack, agent: str, uri: str | None = None) -> list[dict]:
    return [line for line in stack.access_log() if line["user_agent"] == agent and uri in (None, line["uri"])]


def signed_in(response) -> bool:
    return response.status_code == 200 and bool(Page(response.text).csrf_tokens)


def test_status_reports_every_replica_and_redis_each_on_its_own_port(stack):
    rows = stack.status()

    for name in ["redis", "website-1", "website-2", "chat-1", "chat-2", "nginx"]:
        assert rows.get(name, {}).get("state") == "running", (name, rows)
    assert "website" not in rows and "chat" not in rows
    addresses = [rows[name]["where"] for name in ["website-1", "website-2", "chat-1", "chat-2"]]
    assert len(set(addresses)) == 4
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+", rows["redis"]["where"])
    state = (STACK_DIR / "stack.env").read_text()
    assert "WEBSITE_REPLICAS=2" in state.splitlines() and "CHAT_REPLICAS=2" in state.splitlines()


def test_every_chat_replica_is_given_the_stacks_redis_whose_state_is_in_the_stack_folder(stack):
    rows = stack.status()
    redis_url = rows["redis"]["where"]

    def environment(name: str) -> dict:
        raw = Path(f"/proc/{rows[name]['pid']}/environ").read_bytes().split(b"\0")
        return dict(item.decode().split("=", 1) for item in raw if b"=" in item)

    for name in ["chat-1", "chat-2"]:
        assert environment(name).get("REDIS_URL") == redis_url, name
    for name in ["website-1", "website-2"]:
        assert "REDIS_URL" not in environment(name), name
    port = redis_url.rsplit(":", 1)[1]
    pong = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "ping"], capture_output=True, text=True)
    assert pong.stdout.strip() == "PONG"
    assert Path(f"/proc/{rows['redis']['pid']}/cwd").resolve() == (STACK_DIR / "redis").resolve()


def test_pages_come_from_both_website_replicas_and_a_signed_in_session_works_on_each(stack, person):
    rows = stack.status()
    replicas = {rows["website-1"]["where"], rows["website-2"]["where"]}
    agent = f"replicas-{uuid.uuid4().hex}"
    title = f"Seen by both {uuid.uuid4().hex[:8]}"
    person.create_room(title)

    answers = [person.get("/", headers={"User-Agent": agent}) for _ in range(8)]

    assert all(signed_in(answer) for answer in answers), [a.status_code for a in answers]
    assert all(title in answer.text for answer in answers), "every replica lists the new room"
    lines = lines_of(stack, agent)
    assert len(lines) == 8
    assert {line["upstream_addr"] for line in lines} == replicas


def open_socket(stack: Stack, token: str, agent: str):
    return connect(
        ws_url(stack.base_url),
        subprotocols=["chat.v1", f"bearer.{token}"],
        origin=stack.base_url,
        user_agent_header=agent,
        open_timeout=10,
        proxy=None,
    )


def test_chat_sockets_spread_over_both_chat_replicas_and_people_on_each_talk_in_one_room(stack, person):
    rows = stack.status()
    replicas = {rows["chat-1"]["where"], rows["chat-2"]["where"]}
    room_id = person.create_room(f"Spread {uuid.uuid4().hex[:8]}")
    guest = Visitor(stack.base_url)
    guest_email = unique_email()
    assert guest.register(guest_email, PASSWORD).status_code == 303
    agent = f"replicas-ws-{uuid.uuid4().hex}"

    # Open at once: each new socket goes to the replica with the fewest open.
    with open_socket(stack, ticket(person, room_id), agent) as first, open_socket(stack, ticket(guest, room_id), agent) as second:
        for chat in (first, second):
            assert next_event(chat, "welcome")["room_id"] == room_id
        # The guest's arrival reaches the owner's replica through Redis: both are counted.
        assert next_event(first, "joined", user=guest_email)["online"] == 2

        second.send(json.dumps({"type": "message", "text": "from the second replica"}))
        for chat in (first, second):
            assert next_event(chat, "message", user=guest_email)["text"] == "from the second replica"
        first.send(json.dumps({"type": "message", "text": "and back"}))
        for chat in (second, first):
            assert next_event(chat, "message")["text"] == "and back"

    deadline = time.monotonic() + 10  # a socket's line is written when it closes
    while len(lines_of(stack, agent, "/ws")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = lines_of(stack, agent, "/ws")
    assert [line["status"] for line in lines] == [101, 101]
    assert {line["upstream_addr"] for line in lines} == replicas


def test_a_deleted_room_closes_its_people_on_both_chat_replicas(stack, person):
    room_id = person.create_room(f"Deleted {uuid.uuid4().hex[:8]}")
    guest = registered(stack.base_url)
    agent = f"replicas-deleted-{uuid.uuid4().hex}"

    # Opened at once, the two sockets land on the two replicas (the test above pins the spread).
    with open_socket(stack, ticket(person, room_id), agent) as first, open_socket(stack, ticket(guest, room_id), agent) as second:
        for chat in (first, second):
            next_event(chat, "welcome")
        delete_room(person, room_id)
        assert [told_of_deletion(chat, room_id) for chat in (first, second)] == [4004, 4004]

    deadline = time.monotonic() + 10
    while len(lines_of(stack, agent, "/ws")) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = stack.status()
    assert {line["upstream_addr"] for line in lines_of(stack, agent, "/ws")} == {
        rows["chat-1"]["where"],
        rows["chat-2"]["where"],
    }


def restart_steps(restarted: subprocess.CompletedProcess, service: str) -> list[str]:
    """What `scripts/stack restart` did to the service's replicas, in order: "stopped website-1",
    "started website-1" (ready: its log line comes after the readiness check)..."""
    return [
        f"stopped {stopped}" if stopped else f"started {started}"
        for stopped, started in re.findall(rf"==> (?:stopped ({service}-\d+)|({service}-\d+) on )", restarted.stderr)
    ]


def test_a_rolling_restart_of_the_website_keeps_answering_a_signed_in_person(stack, person):
    before = stack.status()
    answers: list = []
    done = threading.Event()

    def keep_asking():
        while not done.is_set():
            try:
                answers.append(person.get("/"))
            except Exception as error:  # noqa: BLE001 - a refused or broken request is what we look for
                answers.append(error)

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        restarted = stack.run("restart", "website")
    finally:
        done.set()
        asker.join(30)

    assert restarted.returncode == 0, restarted.stderr[-3000:]
    # One replica at a time: each is back and ready before the next stops.
    assert restart_steps(restarted, "website") == ["stopped website-1", "started website-1", "stopped website-2", "started website-2"]
    after = stack.status()
    for name in ["website-1", "website-2"]:
        assert after[name]["pid"] != before[name]["pid"], name
        assert after[name]["where"] == before[name]["where"], name
    print(f"{len(answers)} answers during the restart")
    assert len(answers) > 20, "the restart took a moment, and answers kept coming"
    failed = [a if isinstance(a, Exception) else a.status_code for a in answers if not (not isinstance(a, Exception) and signed_in(a))]
    assert failed == [], f"{len(failed)} of {len(answers)} answers were not a signed-in page"


def test_a_rolling_restart_of_the_chat_restarts_each_replica_and_sockets_open_again(stack, person):
    before = stack.status()
    room_id = person.create_room(f"Rolling {uuid.uuid4().hex[:8]}")

    restarted = stack.run("restart", "chat")

    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert restart_steps(restarted, "chat") == ["stopped chat-1", "started chat-1", "stopped chat-2", "started chat-2"]
    after = stack.status()
    for name in ["chat-1", "chat-2"]:
        assert after[name]["pid"] != before[name]["pid"], name
    with open_socket(stack, ticket(person, room_id), "after-rolling-restart") as chat:
        assert next_event(chat, "welcome")["room_id"] == room_id


def test_down_stops_every_process_redis_included(stack):
    pids = {name: row["pid"] for name, row in stack.status().items() if row["state"] == "running"}
    assert "redis" in pids

    stopped = stack.run("down")

    assert stopped.returncode == 0, stopped.stderr
    for name, pid in pids.items():
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().split()[2] == "Z", f"{name} (pid {pid}) still runs"
    assert stack.run("status").returncode == 3
