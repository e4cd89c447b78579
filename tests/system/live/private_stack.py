"""A stack of a test module's own (not the one tests/system/run starts), driven through scripts/stack.

It has its own STACK_DIR under target/ and its own HTTP_PORT; the suite's stack and its settings of
one replica each stay out of its environment. `running()` starts it afresh for a module fixture and
stops it at the end.
"""

import os
import subprocess
from pathlib import Path

from test_edge_nginx import free_port

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "scripts" / "stack"
SUITE_SETTINGS = {"STACK_DIR", "HTTP_PORT", "WEBCHAT_URL", "WEBSITE_PORT", "CHAT_PORT", "REDIS_URL"}


class PrivateStack:
    def __init__(self, folder: str, settings: dict[str, str]):
        self.dir = ROOT / "target" / folder
        self.http_port = free_port()
        self.env = {name: value for name, value in os.environ.items() if name not in SUITE_SETTINGS} | {
            "STACK_DIR": str(self.dir),
            "HTTP_PORT": str(self.http_port),
            "STACK_BUILD": "0",  # tests/system/run's stack has built the binaries
            **settings,
        }
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.up_log = ""

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([STACK, *args], env=self.env, capture_output=True, text=True, timeout=180)

    def status_lines(self) -> dict[str, str]:
        """`scripts/stack status` as {name: its whole line}."""
        return {line.split()[0]: line for line in self.run("status").stdout.splitlines()[1:]}

    def status(self) -> dict[str, dict]:
        """`scripts/stack status` as {name: {"state", "pid", "where"}}."""
        rows = {}
        for name, line in self.status_lines().items():
            fields = line.split()
            row = {"state": fields[1]}
            if fields[1] == "running":
                row |= {"pid": int(fields[3]), "where": fields[4]}
            rows[name] = row
        return rows


def running(stack: PrivateStack):
    """Starts `stack` afresh (after stopping one left by an interrupted run), yields it, and stops
    it at the end: `yield from running(...)` in a module fixture."""
    stack.run("down")
    subprocess.run(["rm", "-rf", str(stack.dir)], check=True)
    started = stack.run("up")
    stack.up_log = started.stderr
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        yield stack
    finally:
        stack.run("down")
