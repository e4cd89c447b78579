"""docker-compose.yml: valid against the Compose specification, and shaped as the project needs.

The test environment has no Docker engine to run `docker compose config` or the stack, so the
file is checked statically: against the Compose specification's JSON schema, and for what the
deployment relies on — one published port (nginx), MongoDB's data in ./dump, the website never
connecting as root, health-ordered start-up, one shared JWT secret, every setting documented
in .env.example, and the `scale` profile: Redis for the chat replicas, only when asked for.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent
SERVICES = {"website", "chat", "db", "nginx"}  # the assignment's four: `docker compose up`
SCALE_PROFILE = {"redis"}  # added by `docker compose --profile scale up`
MONITORING_PROFILE = {"prometheus", "grafana", "nginx-exporter"}  # `--profile monitoring`
MONITORING = ROOT / "monitoring"
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


def enabled_services(compose: dict, *profiles: str) -> set[str]:
    """The services Compose starts with these profiles active: those without profiles, and those
    with one of them (the Compose specification's rule)."""
    return {
        name for name, service in compose["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def test_the_default_is_the_assignments_four_services_and_the_scale_profile_adds_redis(compose):
    assert enabled_services(compose) == SERVICES
    assert enabled_services(compose, "scale") == SERVICES | SCALE_PROFILE
    assert compose["services"]["redis"]["profiles"] == ["scale"]
    assert enabled_services(compose, "monitoring") == SERVICES | MONITORING_PROFILE
    assert enabled_services(compose, "scale", "monitoring") == SERVICES | SCALE_PROFILE | MONITORING_PROFILE


def test_the_four_services_are_each_built_from_their_own_dockerfile(compose):
    for name in SERVICES:
        service = compose["services"][name]
        build = service["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        assert dockerfile.resolve() == (ROOT / name / "Dockerfile").resolve(), name


def test_only_nginx_publishes_a_port_and_only_one(compose):
    publishing = {name for name, service in compose["services"].items() if service.get("ports")}
    assert publishing & enabled_services(compose) == {"nginx"}
    assert compose["services"]["nginx"]["ports"] == ["${HTTP_BIND:-127.0.0.1}:${HTTP_PORT:-8080}:80"]


def test_the_monitoring_profile_publishes_prometheus_and_grafana_on_this_machine_only(compose):
    publishing = {name: service["ports"] for name, service in compose["services"].items() if service.get("ports")}
    assert publishing.keys() - {"nginx"} == {"prometheus", "grafana"}
    assert publishing["prometheus"] == ["127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"]
    assert publishing["grafana"] == ["127.0.0.1:${GRAFANA_PORT:-3000}:3000"]
    for name in MONITORING_PROFILE:
        service = compose["services"][name]
        assert service["profiles"] == ["monitoring"], name
        assert service["networks"] == ["edge"], name
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", service["image"]), f"{name}: pin the image's version"


def test_prometheus_finds_every_replica_by_dns_on_the_ports_the_services_serve_metrics(compose):
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    environment = {name: compose["services"][name]["environment"] for name in ("website", "chat")}
    for job, variable in (("website", "WEBSITE_METRICS_ADDR"), ("chat", "CHAT_METRICS_ADDR")):
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [job] and sd["type"] == "A", job
        assert environment[job][variable] == f"0.0.0.0:{sd['port']}", job
        assert "static_configs" not in jobs[job], "--scale needs no edit"
    (exporter,) = jobs["nginx"]["dns_sd_configs"]
    assert exporter["names"] == ["nginx-exporter"]
    nginx_status = compose["services"]["nginx"]["environment"]["NGINX_STATUS_LISTEN"]
    assert compose["services"]["nginx-exporter"]["command"] == [f"--nginx.scrape-uri=http://nginx:{nginx_status}/stub_status"]
    # The configuration and the rules it names are the repository's files.
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["prometheus"]["volumes"] if volume.startswith("./"))
    assert mounts["./monitoring/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    for rules in config["rule_files"]:
        assert rules in mounts.values() and (ROOT / next(k for k, v in mounts.items() if v == rules)).is_file()


def test_grafana_gets_its_data_source_and_dashboards_from_the_repository(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if volume.startswith("./"))
    provisioning = ROOT / "monitoring" / "grafana" / "provisioning"
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "webchat.yml").read_text())["providers"]
    assert mounts["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    dashboards = list((MONITORING / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        targets = [t for p in dashboard["panels"] for t in p.get("targets", [])]
        assert targets, path.name
        for target in targets:
            assert target["datasource"]["uid"] == source["uid"]
            # Each query is named for what it shows, not A, B, C.
            assert re.fullmatch(r"[a-z][a-z0-9_]{5,}", target["refId"]), target["refId"]
        assert len({t["refId"] for t in targets}) == len(targets), "query names are unique"


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
    # Redis first when the profile brings it; `required: false` lets chat start without it (a
    # required dependency on a service of an inactive profile makes the whole project invalid).
    assert services["chat"]["depends_on"] == {"redis": {"condition": "service_healthy", "required": False}}
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_image_has_a_healthcheck(service):
    dockerfile = (ROOT / service / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\bCMD\b", dockerfile, re.M | re.S), f"{service}/Dockerfile has no HEALTHCHECK"


def test_redis_is_the_official_redis_7_image_with_a_healthcheck_inside_the_edge_network(compose):
    redis = compose["services"]["redis"]
    assert redis["image"] == "redis:7-alpine"
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert redis["networks"] == ["edge"]
    assert "ports" not in redis and "expose" not in redis
    # Fan-out and presence only: nothing is written to disk.
    assert "volumes" not in redis
    assert redis["command"][redis["command"].index("--save") + 1] == ""


def test_redis_url_reaches_chat_empty_unless_it_is_set_for_the_scale_profile(compose):
    chat = compose["services"]["chat"]["environment"]
    assert chat["REDIS_URL"] == "${REDIS_URL:-}"
    assert not any("REDIS_URL" in str(service.get("environment", {})) for name, service in compose["services"].items() if name != "chat")
    # The value the docs tell you to set: the redis service on its default port.
    docs = (ROOT / "docs" / "running.md").read_text()
    assert "REDIS_URL=redis://redis:6379 docker compose --profile scale up --build --scale chat=3 --scale website=2" in docs
    assert "COMPOSE_PROFILES=scale" in (ROOT / ".env.example").read_text()


def test_website_and_chat_can_be_scaled(compose):
    # `--scale` refuses a service with a fixed container name or a published port.
    for name in ("website", "chat"):
        service = compose["services"][name]
        assert "container_name" not in service and "ports" not in service, name
    # nginx reaches them by service name, which Docker's DNS answers with every replica.
    nginx = compose["services"]["nginx"]["environment"]
    assert nginx["WEBSITE_UPSTREAM"] == "website:8000" and nginx["CHAT_UPSTREAM"] == "chat:9000"
    assert nginx["NGINX_RESOLVER"] == "127.0.0.11"
    assert nginx["NGINX_UPSTREAMS"].startswith("#"), "no upstream group under Compose"


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
