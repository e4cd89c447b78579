"""db/init/webchat.js: what it asks MongoDB to do, from db/schema.json.

No MongoDB server runs here, so the script runs under node with a `db` that records its commands
(mongosh_recorder.js); the commands are then checked against schema.json and the least-privilege
rule. A real server runs the same script in the Compose `db` image.
"""

import json
import os
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "db" / "init" / "webchat.js"
SCHEMA = json.loads((ROOT / "db" / "schema.json").read_text())
RECORDER = ROOT / "tests" / "system" / "static" / "mongosh_recorder.js"
APP_ENV = {"MONGO_APP_USERNAME": "webchat", "MONGO_APP_PASSWORD": "app-password", "WEBCHAT_SCHEMA": str(ROOT / "db" / "schema.json")}


def run_init(collections=(), users=(), env=APP_ENV) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", RECORDER, SCRIPT, ",".join(collections), ",".join(users)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
    )


def commands(collections=(), users=()) -> list[dict]:
    result = run_init(collections, users)
    assert result.returncode == 0, result.stderr
    recorded = json.loads(result.stdout)
    assert {entry["db"] for entry in recorded} == {SCHEMA["database"]}, "everything happens in the webchat database"
    return [entry["command"] for entry in recorded]


def test_a_fresh_database_gets_each_collection_with_its_validator_and_indexes():
    recorded = commands()

    for name, spec in SCHEMA["collections"].items():
        create = next(c for c in recorded if c.get("create") == name)
        assert create["validator"] == spec["validator"]
        assert (create["validationLevel"], create["validationAction"]) == ("strict", "error")
        indexes = next(c for c in recorded if c.get("createIndexes") == name)
        assert indexes["indexes"] == spec["indexes"]


def test_the_website_user_gets_read_write_on_webchat_only_and_comes_last():
    recorded = commands()

    user = recorded[-1]
    assert user["createUser"] == "webchat"
    assert user["pwd"] == "app-password"
    assert user["roles"] == [{"role": "readWrite", "db": "webchat"}]


def test_running_it_again_updates_instead_of_failing():
    recorded = commands(collections=list(SCHEMA["collections"]), users=["webchat"])

    assert not any("create" in c or "createUser" in c for c in recorded)
    assert {c["collMod"] for c in recorded if "collMod" in c} == set(SCHEMA["collections"])
    assert recorded[-1]["updateUser"] == "webchat"
    assert recorded[-1]["roles"] == [{"role": "readWrite", "db": "webchat"}]


@pytest.mark.parametrize("missing", ["MONGO_APP_USERNAME", "MONGO_APP_PASSWORD"])
def test_it_refuses_to_run_without_the_website_user_settings(missing):
    env = {k: v for k, v in APP_ENV.items() if k != missing}
    result = run_init(env=env)
    assert result.returncode != 0
    assert "MONGO_APP_USERNAME and MONGO_APP_PASSWORD must be set" in result.stderr
