"""docker-compose.yml: valid against the Compose specification, and shaped as the project needs.

The test environment has no Docker engine to run `docker compose config` or the stack, so the
file is checked statically: against the Compose specification's JSON schema, and for what the
deployment relies on — one published port (nginx), MongoDB's data in ./dump, the website never
connecting as root, health-ordered start-up, one shared JWT secret, and every setting documented
in .env.example.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent
SERVICES = {"website", "chat", "db", "nginx"}
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def validate_against_compose_spec(path: Path) -> subprocess.CompletedProcess:
    # check-jsonschema ships the Compose specification's schema as its builtin vendor.compose-spec.
    return subprocess.run(
        [VENV_BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path],
        capture_output=True,
        text=True,
    )


def test_compose_file_follows_the_compose_specification():
    result = validate_against_compose_spec(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_an_invalid_compose_file(tmp_path):
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["nginx"]["publish_everything"] = True
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))

    result = validate_against_compose_spec(path)

    assert result.returncode != 0, "an unknown service key must fail validation"


def test_the_four_services_are_each_built_from_their_own_dockerfile(compose):
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        build = service["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        assert dockerfile.resolve() == (ROOT / name / "Dockerfile").resolve(), name


def test_only_nginx_publishes_a_port_and_only_one(compose):
    publishing = {name for name, service in compose["services"].items() if service.get("ports")}
    assert publishing == {"nginx"}
    assert compose["services"]["nginx"]["ports"] == ["${HTTP_BIND:-127.0.0.1}:${HTTP_PORT:-8080}:80"]


def test_mongodb_keeps_its_data_in_the_dump_folder(compose):
    volumes = compose["services"]["db"]["volumes"]
    assert "./dump:/data/db" in volumes
    assert (ROOT / "dump" / ".keep").exists(), "dump/ is in git through its keep file"


def test_the_website_connects_as_the_app_user_of_the_webchat_database(compose):
    uri = compose["services"]["website"]["environment"]["MONGODB_URI"]
    assert uri.startswith("mongodb://${MONGO_APP_USERNAME:-webchat}:${MONGO_APP_PASSWORD:-")
    assert "@db:27017/webchat?authSource=webchat" in uri
    assert "ROOT" not in uri


def test_services_start_in_order_of_health_and_restart_by_themselves(compose):
    services = compose["services"]
    assert services["website"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["nginx"]["depends_on"] == {
        "website": {"condition": "service_healthy"},
        "chat": {"condition": "service_healthy"},
    }
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_image_has_a_healthcheck(service):
    dockerfile = (ROOT / service / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\bCMD\b", dockerfile, re.M | re.S), f"{service}/Dockerfile has no HEALTHCHECK"


def test_the_database_is_not_reachable_from_nginx(compose):
    services = compose["services"]
    assert compose["networks"]["data"].get("internal") is True
    assert "data" not in services["nginx"]["networks"]
    assert set(services["db"]["networks"]) == {"data"}


def test_website_and_chat_share_one_jwt_secret_of_at_least_32_bytes(compose):
    website = compose["services"]["website"]["environment"]["JWT_SECRET"]
    chat = compose["services"]["chat"]["environment"]["JWT_SECRET"]
    assert website == chat
    default = INTERPOLATION.fullmatch(website).group(2)
    assert len(default.encode()) >= 32


def strings_in(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)
    elif isinstance(node, str):
        yield node


def test_every_setting_of_the_compose_file_is_documented_in_env_example(compose):
    used = {m.group(1) for text in strings_in(compose) for m in INTERPOLATION.finditer(text)}
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    assert used == documented


def test_env_file_with_secrets_is_kept_out_of_git_and_images():
    assert "/.env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
