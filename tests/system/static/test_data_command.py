"""scripts/data, the command that prints the database as stored, against a real MongoDB stand-in of
its own; and the Compose line of docs/running.md that does the same with the `db` container's
mongosh, run as written with stand-ins for `docker` and `mongosh` (no Docker engine here).

tests/system/live/test_data_command.py reads what the website itself stored, through a stack.
"""

import datetime
import json
import os
import re
import subprocess

import pymongo
import pytest
from bson import ObjectId, json_util

from conftest import ROOT
from test_mongo_standin import start_standins

DATA = ROOT / "scripts" / "data"
HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
USER_ID, ROOM_ID = ObjectId(), ObjectId()
CREATED = datetime.datetime(2026, 11, 25, 16, 29, 33, 123000, tzinfo=datetime.timezone.utc)
USER = {"_id": USER_ID, "email": "anna@example.test", "password_hash": HASH, "created_at": CREATED}
ROOM = {"_id": ROOM_ID, "title": "Комната «Чай»", "owner_id": USER_ID, "owner_email": "anna@example.test", "created_at": CREATED}


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A stand-in of its own holding one user and one room, as the website stores them."""
    [(uri, pid)] = start_standins(tmp_path_factory.mktemp("data-standin"))
    try:
        with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            client.webchat.users.create_index("email", unique=True, name="email_unique")
            client.webchat.users.insert_one(USER)
            client.webchat.rooms.insert_one(ROOM)
            client.other.things.insert_one({"not": "webchat"})
        yield uri
    finally:
        subprocess.run(["kill", str(pid)], check=False)


def data(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_DB", "STACK_DIR")}
    return subprocess.run([DATA, *args], env={**environment, **env}, capture_output=True, text=True, timeout=60)


def test_prints_every_collection_with_its_indexes_and_documents_as_stored(database):
    result = data("--uri", database)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "=== webchat.rooms (1 document)" in out and "=== webchat.users (1 document)" in out
    assert "other" not in out and "things" not in out, "only the webchat database"
    assert f'"password_hash": "{HASH}"' in out, "the hash exactly as stored"
    assert f'"_id": {{"$oid": "{USER_ID}"}}' in out
    assert '"created_at": {"$date": "2026-11-25T16:29:33.123Z"}' in out
    assert '"title": "Комната «Чай»"' in out, "readable: Cyrillic as it is, not \\u escapes"
    assert re.search(r'^\{"v": 2, "key": \{"email": 1\}, "name": "[^"]+", "unique": true\}$', out, re.M), out
    assert "validator: none" in out


def test_json_gives_back_the_stored_documents(database):
    result = data("--uri", database, "--json")

    assert result.returncode == 0, result.stderr
    listing = json_util.loads(result.stdout, json_options=json_util.JSONOptions(tz_aware=True))
    assert listing["database"] == "webchat"
    by_name = {entry["collection"]: entry for entry in listing["collections"]}
    assert by_name["users"]["documents"] == [USER]
    assert by_name["rooms"]["documents"] == [ROOM]
    assert any(index["key"] == {"email": 1} and index.get("unique") for index in by_name["users"]["indexes"])


def test_names_limit_and_database_choose_what_is_printed(database):
    only_users = data("--uri", database, "users")
    other = data("--uri", database, "--limit", "0", MONGODB_DB="other")

    assert "webchat.users" in only_users.stdout and "webchat.rooms" not in only_users.stdout
    assert "=== other.things (1 document)" in other.stdout


def test_an_unknown_collection_or_no_database_is_a_clear_error(database, tmp_path):
    unknown = data("--uri", database, "messages")
    nothing = data(STACK_DIR=str(tmp_path / "no-stack"))
    unreachable = data("--uri", "mongodb://webchat:secret-password@127.0.0.1:9/webchat", "--timeout", "0.5")

    assert unknown.returncode == 1 and "no collection messages in webchat (it has: rooms, users)" in unknown.stderr
    assert nothing.returncode == 2 and "scripts/stack up" in nothing.stderr
    assert unreachable.returncode == 1 and "no MongoDB answers" in unreachable.stderr
    assert "secret-password" not in unreachable.stderr


def test_without_a_uri_it_reads_the_native_stacks_database(database, tmp_path):
    # What `scripts/stack up` leaves in its folder: the settings and the stand-in's port.
    stack = tmp_path / "stack"
    (stack / "mongo").mkdir(parents=True)
    (stack / "stack.env").write_text("HTTP_PORT=8080\nMONGODB_DB=webchat\n")
    (stack / "mongo" / "port").write_text(database.rsplit(":", 1)[1] + "\n")

    result = data("users", STACK_DIR=str(stack))

    assert result.returncode == 0, result.stderr
    assert "anna@example.test" in result.stdout


# --- the Compose line ---------------------------------------------------------------------------

FAKE_DOCKER = """#!/bin/bash
# docker compose exec db <command...>: runs the command as the db container would, with its
# root credentials in the environment.
[ "$1 $2 $3" = "compose exec db" ] || { echo "unexpected: docker $*" >&2; exit 64; }
shift 3
MONGO_INITDB_ROOT_USERNAME=root MONGO_INITDB_ROOT_PASSWORD='root pass' exec "$@"
"""

# mongosh with a `db` holding the documents above: the objects and methods of mongosh's API that
# the line uses (getCollectionInfos, getCollection, getIndexes, find/sort/toArray, EJSON, print).
FAKE_MONGOSH = r"""
const vm = require('vm');
const args = process.argv.slice(2);
const after = (flag) => args[args.indexOf(flag) + 1];
if (after('-u') !== 'root' || after('-p') !== 'root pass' || after('--authenticationDatabase') !== 'admin') {
  console.error('not signed in as root: ' + JSON.stringify(args));
  process.exit(64);
}
const dbName = args.find((a, i) => !a.startsWith('-') && !args[i - 1].startsWith('-'));
const collections = JSON.parse(process.env.FAKE_COLLECTIONS);
const db = {
  getName: () => dbName,
  getCollectionInfos: () => Object.entries(collections).map(([name, c]) => ({ name, type: 'collection', options: c.options })),
  getCollection: (name) => ({
    getIndexes: () => collections[name].indexes,
    find: () => ({ sort: () => ({ toArray: () => collections[name].documents }) }),
  }),
};
const EJSON = { stringify: (value, replacer, space, options) => JSON.stringify({ value, options }, replacer, space) };
vm.runInNewContext(after('--eval'), { db, EJSON, print: (text) => console.log(text) });
"""


def compose_data_line() -> str:
    running = (ROOT / "docs" / "running.md").read_text()
    section = running.split("## Looking at the data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    [line] = [block for block in blocks if "--eval" in block]
    return line


def test_the_compose_line_prints_each_collection_with_validator_indexes_and_documents(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "mongosh").write_text(f"#!/bin/sh\nexec node {tmp_path / 'mongosh.js'} \"$@\"\n")
    (tmp_path / "mongosh.js").write_text(FAKE_MONGOSH)
    for name in ("docker", "mongosh"):
        (bin_dir / name).chmod(0o755)
    collections = {
        "users": {"options": {"validator": {"$jsonSchema": {"title": "A registered account"}}}, "indexes": [{"name": "email_unique"}], "documents": [{"email": "anna@example.test", "password_hash": HASH}]},
        "system.views": {"options": {}, "indexes": [], "documents": []},
    }

    result = subprocess.run(
        ["bash", "-c", compose_data_line()],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_COLLECTIONS": json.dumps(collections)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    header, printed = result.stdout.split("\n", 1)
    assert header == "=== webchat.users"
    shown = json.loads(printed)
    assert shown["options"] == {"relaxed": True}
    assert shown["value"] == {
        "validator": collections["users"]["options"]["validator"],
        "indexes": [{"name": "email_unique"}],
        "documents": collections["users"]["documents"],
    }
