"""scripts/data on the running stack: what the website stored for a person who registered and
created a room through nginx, found from the stack's own state (STACK_DIR), as a developer runs it."""

import os
import subprocess
import uuid
from pathlib import Path

from bson import json_util

from conftest import PASSWORD, Visitor, unique_email

DATA = Path(__file__).resolve().parents[3] / "scripts" / "data"


def scripts_data(*args: str) -> subprocess.CompletedProcess:
    # Only STACK_DIR says where to look, as for `scripts/data` after `scripts/stack up`.
    environment = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "MONGODB_DB")}
    return subprocess.run([DATA, *args], env=environment, capture_output=True, text=True, timeout=60)


def test_shows_the_account_and_room_the_website_stored(base_url):
    person, email = Visitor(base_url), unique_email()
    assert person.register(email, PASSWORD).status_code == 303
    title = f"Data listing {uuid.uuid4().hex[:8]}"
    room_id = person.create_room(title)

    text = scripts_data()
    listing = scripts_data("--json")

    assert text.returncode == 0, text.stderr
    assert "=== webchat.users (" in text.stdout and "=== webchat.rooms (" in text.stdout
    collections = {entry["collection"]: entry for entry in json_util.loads(listing.stdout)["collections"]}
    [user] = [doc for doc in collections["users"]["documents"] if doc["email"] == email]
    [room] = [doc for doc in collections["rooms"]["documents"] if doc["title"] == title]
    assert user["password_hash"].startswith("$argon2id$"), "the stored hash, not the password"
    assert PASSWORD not in listing.stdout
    assert f'"password_hash": "{user["password_hash"]}"' in text.stdout
    assert str(room["_id"]) == room_id
    assert (room["owner_id"], room["owner_email"]) == (user["_id"], email)
    assert any(index.get("unique") and index["key"] == {"email": 1} for index in collections["users"]["indexes"])
