"""scripts/stack as the browser tests use it: restarting the chat service of a running stack."""

import os
import subprocess
from pathlib import Path

from test_chat import next_event, open_chat, ticket

STACK = Path(__file__).resolve().parents[3] / "scripts" / "stack"


def stack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STACK, *args], env=os.environ, capture_output=True, text=True, timeout=120)


def test_status_lists_every_process_running():
    result = stack("status")

    assert result.returncode == 0, result.stdout + result.stderr
    for service in ("website", "chat", "nginx"):
        assert any(line.split()[:2] == [service, "running"] for line in result.stdout.splitlines()), service


def test_by_default_each_service_runs_once_without_redis():
    # tests/system/run starts this stack without WEBSITE_REPLICAS or CHAT_REPLICAS.
    rows = {line.split()[0]: line.split() for line in stack("status").stdout.splitlines()[1:]}
    assert [name for name in rows if name != "mongo"] == ["website", "chat", "nginx"]
    state = (Path(os.environ["STACK_DIR"]) / "stack.env").read_text().splitlines()
    assert "WEBSITE_REPLICAS=1" in state and "CHAT_REPLICAS=1" in state
    assert not any(line.startswith(("REDIS_PORTS=", "REDIS_PORT=", "EXTERNAL_REDIS_URL=")) for line in state)
    chat_pid = rows["chat"][3]
    assert b"REDIS_URL=" not in Path(f"/proc/{chat_pid}/environ").read_bytes()


def test_after_a_chat_restart_a_new_connection_opens_through_the_same_nginx(member, base_url):
    room_id = member.create_room("Restarted chat " + os.urandom(4).hex())
    with open_chat(base_url, ticket(member, room_id)) as before:
        next_event(before, "welcome")

        restarted = stack("restart", "chat")

        assert restarted.returncode == 0, restarted.stderr
        with open_chat(base_url, ticket(member, room_id)) as after:
            assert next_event(after, "welcome")["room_id"] == room_id
