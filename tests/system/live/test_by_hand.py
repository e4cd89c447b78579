"""docs/running.md "Talk to it by hand": its shell lines, taken from the Markdown and run as written
against the test stack (only WEBCHAT set to its address), sign in, get a ticket, open /ws through
nginx and get the message sent back."""

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def by_hand_blocks() -> list[str]:
    running = (ROOT / "docs" / "running.md").read_text()
    section = running.split("\n## Talk to it by hand\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)


def test_the_documented_lines_sign_in_get_a_ticket_and_chat_through_nginx(base_url):
    blocks = by_hand_blocks()
    assert len(blocks) == 2, "the curl block and the WebSocket block"
    environment = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", "\n".join(blocks)],
        cwd=ROOT,
        env={**environment, "WEBCHAT": base_url},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] in ("register: 303", "register: 409"), lines
    assert lines[1:3] == ["sign in: 303", "new room: 303"], lines
    events = [json.loads(line) for line in lines[3:]]
    assert events[0]["type"] == "welcome" and events[0]["room"] == "Talking by hand", events[0]
    assert events[0]["you"] == "me@example.test"
    assert events[-1] == {**events[-1], "type": "message", "user": "me@example.test", "text": "hello by hand"}
    assert "Traceback" not in result.stderr
