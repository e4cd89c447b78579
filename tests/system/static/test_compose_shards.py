"""docker-compose.shards.yml: the override that spreads the chat's rooms over two Redis.

No Docker engine here to run `docker compose config`, so the override is checked against the Compose
specification's schema, then merged with docker-compose.yml by Compose's rules for the keys it uses
(mappings merge key by key, `extends` copies the named service under the override's own keys).
"""

import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

BASE = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "docker-compose.shards.yml"
COMMAND = (
    "docker compose -f docker-compose.yml -f docker-compose.shards.yml --profile scale up --build "
    "--scale chat=3 --scale website=2"
)


def merge(base: dict, override: dict) -> dict:
    """Compose's merge for mappings: the override's keys win, nested mappings merge."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def services() -> dict:
    base = yaml.safe_load(BASE.read_text())["services"]
    override = yaml.safe_load(OVERRIDE.read_text())["services"]
    merged = merge(base, override)
    for name, service in merged.items():
        if "extends" in service:
            extends = service.pop("extends")
            assert (OVERRIDE.parent / extends["file"]).resolve() == BASE.resolve(), name
            merged[name] = merge(base[extends["service"]], service)
    return merged


def test_the_override_follows_the_compose_specification():
    result = subprocess.run(
        [Path(sys.executable).parent / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", OVERRIDE],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_second_redis_is_the_first_one_again_within_the_scale_profile():
    merged = services()
    first, second = merged["redis"], merged["redis-2"]
    assert second == first, "same image, command, healthcheck, profile and network"
    assert second["profiles"] == ["scale"] and second["networks"] == ["edge"]
    assert "ports" not in second and "volumes" not in second


def test_every_chat_replica_gets_both_redis_in_one_order_and_waits_for_them():
    chat = services()["chat"]
    urls = chat["environment"]["REDIS_URL"].split(",")
    assert urls == ["redis://redis:6379", "redis://redis-2:6379"]
    assert chat["depends_on"] == {
        name: {"condition": "service_healthy", "required": False} for name in ("redis", "redis-2")
    }
    # The override changes nothing else of chat's.
    base_chat = yaml.safe_load(BASE.read_text())["services"]["chat"]
    assert {k: v for k, v in chat["environment"].items() if k != "REDIS_URL"} == {
        k: v for k, v in base_chat["environment"].items() if k != "REDIS_URL"
    }


def test_the_override_is_documented_with_its_command():
    docs = (ROOT / "docs" / "running.md").read_text()
    assert COMMAND in docs
    assert COMMAND in OVERRIDE.read_text()
