"""The Dockerfiles: hadolint-clean, small non-root runtime images, the pinned Rust toolchain."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT

VENV_BIN = Path(sys.executable).parent
DOCKERFILES = ["website", "chat", "db", "nginx"]
RUST_SERVICES = ["website", "chat"]


def stages(service: str) -> list[str]:
    """The Dockerfile split into its build stages, each starting with its FROM line."""
    text = (ROOT / service / "Dockerfile").read_text()
    return re.split(r"^(?=FROM )", text, flags=re.M)[1:]


@pytest.mark.parametrize("service", DOCKERFILES)
def test_dockerfile_passes_hadolint(service):
    result = subprocess.run(
        [VENV_BIN / "hadolint", "--no-color", ROOT / service / "Dockerfile"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\n")
    result = subprocess.run([VENV_BIN / "hadolint", "--no-color", bad], capture_output=True, text=True)
    assert result.returncode != 0


@pytest.mark.parametrize("service", RUST_SERVICES)
def test_rust_images_build_with_the_pinned_toolchain(service):
    channel = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    first = stages(service)[0]
    assert first.startswith(f"FROM rust:{channel}-bookworm "), "the image's toolchain must be the pinned one"
    text = (ROOT / service / "Dockerfile").read_text()
    # Copying rust-toolchain.toml in would make rustup fetch the components it lists.
    assert "rust-toolchain" not in re.sub(r"^#.*$", "", text, flags=re.M)


@pytest.mark.parametrize("service", RUST_SERVICES)
def test_rust_images_cache_dependencies_with_cargo_chef(service):
    text = (ROOT / service / "Dockerfile").read_text()
    assert "cargo chef prepare" in text
    cook = text.index("cargo chef cook")
    # The sources come in only after the dependencies are built, so editing them keeps that layer.
    assert cook < text.index("COPY website ./website", cook)
    assert f"cargo build --release --locked --bin {service}" in text


@pytest.mark.parametrize("service", RUST_SERVICES)
def test_rust_images_copy_every_workspace_member_in_both_build_stages(service):
    # Cargo refuses to build a workspace with a member missing, so each stage that runs cargo
    # needs them all, not only the service's own crate.
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    for stage in stages(service)[1:3]:
        for member in members:
            assert f"COPY {member} ./{member}" in stage, f"{service}: {member} missing in {stage.splitlines()[0]}"


@pytest.mark.parametrize("service", RUST_SERVICES)
def test_rust_services_run_from_a_small_image_as_a_non_root_user(service):
    runtime = stages(service)[-1]
    assert runtime.startswith("FROM gcr.io/distroless/cc-debian12:nonroot")
    user = re.search(r"^USER (\S+)", runtime, re.M).group(1)
    assert user.split(":")[0] not in {"0", "root"}
    assert re.search(rf"^COPY --from=builder /app/target/release/{service} ", runtime, re.M)
    assert f'"/usr/local/bin/{service}", "healthcheck"' in runtime


def test_the_database_image_carries_the_one_schema_and_its_init_script():
    text = (ROOT / "db" / "Dockerfile").read_text()
    assert re.search(r"^FROM mongo:\d+\.\d+$", text, re.M), "the MongoDB major version is pinned"
    assert "COPY schema.json /opt/webchat/schema.json" in text
    assert "COPY init/webchat.js /docker-entrypoint-initdb.d/" in text


def test_the_app_user_may_read_and_write_the_webchat_database_only():
    script = (ROOT / "db" / "init" / "webchat.js").read_text()
    assert "const roles = [{ role: 'readWrite', db: schema.database }];" in script
    granted = set(re.findall(r"role: '(\w+)'", script))
    assert granted == {"readWrite"}, "no admin role of any kind for the website's user"


def test_build_context_leaves_out_build_output_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ["target/", ".venv/", "dump/", ".stack/", ".git/"]:
        assert entry in ignored
