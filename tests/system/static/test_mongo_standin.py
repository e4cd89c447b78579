"""The MongoDB stand-in as the scripts start it (scripts/lib/common.sh): each start keeps its data,
pid file, log and port to itself, so several run at once — a stack, a test run, another stack.

nx-27017 on its own keeps its pid file in /tmp/nx_27017.pid and refuses to start while the
process named there runs; these tests start real stand-ins, two at the same moment, and use both.
"""

import subprocess
from pathlib import Path

import pymongo
import pytest

from conftest import ROOT

COMMON = ROOT / "scripts" / "lib" / "common.sh"


def common_sh(script: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["bash", "-c", f'set -euo pipefail; source "{COMMON}"; {script}'],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_standins(*folders: Path) -> list[tuple[str, int]]:
    """Starts one stand-in per folder, all at once; returns each one's (MongoDB URI, pid)."""
    starts = [common_sh(f'start_mongo_standin "{folder}"; echo "$MONGODB_URI $MONGO_STANDIN_PID"') for folder in folders]
    started = []
    for start in starts:
        out, err = start.communicate(timeout=60)
        assert start.returncode == 0, err
        uri, pid = out.split()
        started.append((uri, int(pid)))
    return started


@pytest.fixture
def standins(tmp_path):
    """Two stand-ins started at the same moment, stopped afterwards."""
    folders = [tmp_path / "first", tmp_path / "second"]
    started = start_standins(*folders)
    yield [(uri, pid, folder) for (uri, pid), folder in zip(started, folders)]
    for _, pid in started:
        subprocess.run(["kill", str(pid)], check=False)


def client(uri: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)


def test_two_stand_ins_started_at_once_each_serve_their_own_data(standins):
    (first_uri, _, _), (second_uri, _, _) = standins
    assert first_uri != second_uri

    with client(first_uri) as first, client(second_uri) as second:
        first.webchat.rooms.insert_one({"title": "only in the first"})
        second.webchat.rooms.insert_one({"title": "only in the second"})

        assert [r["title"] for r in first.webchat.rooms.find()] == ["only in the first"]
        assert [r["title"] for r in second.webchat.rooms.find()] == ["only in the second"]


def test_each_keeps_its_pid_file_log_port_and_data_in_its_own_folder(standins):
    for uri, pid, folder in standins:
        assert (folder / "nx-27017.pid").read_text().strip() == str(pid)
        assert (folder / "port").read_text().strip() == uri.rsplit(":", 1)[1]
        assert "Listening on" in (folder / "nx-27017.log").read_text()
        with client(uri) as mongo:
            mongo.webchat.users.insert_one({"email": "a@example.test"})
        assert (folder / "webchat.db").exists(), sorted(p.name for p in folder.iterdir())


def test_a_folder_serves_one_stand_in_at_a_time(standins):
    _, _, folder = standins[0]

    second_start = common_sh(f'start_mongo_standin "{folder}"')
    _, err = second_start.communicate(timeout=60)

    assert second_start.returncode != 0
    assert "did not start" in err


def test_every_command_line_names_its_own_pid_file_and_log(tmp_path):
    listing = common_sh(f'mongo_standin_command "{tmp_path}/x" && printf "%s\\n" "${{MONGO_STANDIN_COMMAND[@]}}"')
    out, err = listing.communicate(timeout=60)
    assert listing.returncode == 0, err
    args = out.splitlines()

    assert args[args.index("--pid-file") + 1] == f"{tmp_path}/x/nx-27017.pid"
    assert args[args.index("--log-file") + 1] == f"{tmp_path}/x/nx-27017.log"
    assert args[args.index("--data-dir") + 1] == f"{tmp_path}/x"
    assert args[args.index("--port") + 1] == "0", "the system picks a free port as the stand-in binds"
