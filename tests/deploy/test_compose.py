"""docker-compose.yml, the Dockerfile and the lock, checked without a Docker engine.

The static checks read the files. The run checks start every Kartu service with its exact
command and environment from the compose file (compose_run.py says what is translated), as the
image's non-root uid, against a Temporal dev server set up by the compose file's own namespace
job, and wait for the compose health check to pass. A missing variable and an unwritable data dir
fail, as they would in Docker.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from pydantic_settings import BaseSettings
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from ayoconnect.settings import (
    LOCAL_CLIENT_ID,
    LOCAL_CLIENT_SECRET,
    LOCAL_MERCHANT_CODE,
    AyoconnectSettings,
)
from starter.devserver import DevServer
from tests.deploy import compose_run
from tests.deploy.compose_run import ROOT, ComposeError, Host, Running, ServiceRun
from tests.stack_support import free_port

# Values for .env.example's empty (secret) entries, and the local fake Ayoconnect.
TEST_VALUES = {
    "POSTGRES_PASSWORD": "test-postgres-password",
    "KARTU_CODEC_KEYS": "test1:" + base64.b64encode(bytes(range(32))).decode(),
    "KARTU_GATEWAY_API_KEY": "test-gateway-api-key-0123456789",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
    "AYOCONNECT_BASE_URL": "http://sandbox:8090",
    "AYOCONNECT_CLIENT_ID": LOCAL_CLIENT_ID,
    "AYOCONNECT_CLIENT_SECRET": LOCAL_CLIENT_SECRET,
    "AYOCONNECT_MERCHANT_CODE": LOCAL_MERCHANT_CODE,
}
# Empty in .env.example on purpose: off unless set.
OPTIONAL_EMPTY = {"TEMPORAL_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT"}
KARTU_SERVICES = {"worker", "gateway", "codec", "sandbox"}
ONE_SHOT = {"temporal-schema", "temporal-namespace", "reconciliation-schedule"}


def dot_env() -> dict[str, str]:
    """.env.example filled in as an operator would."""
    values = compose_run.read_env_file(ROOT / ".env.example")
    for name, value in values.items():
        if not value and name not in OPTIONAL_EMPTY:
            assert name in TEST_VALUES, f".env.example leaves {name} empty: add a test value"
    return {**values, **TEST_VALUES}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return compose_run.load_compose(dot_env())


# --- static checks -----------------------------------------------------------------------------


def test_every_required_variable_is_in_env_example_and_fails_when_missing() -> None:
    required = compose_run.required_variables()
    assert {"KARTU_CODEC_KEYS", "KARTU_GATEWAY_API_KEY", "AYOCONNECT_CLIENT_SECRET"} <= required
    example = compose_run.read_env_file(ROOT / ".env.example")
    assert required <= set(example), f"not in .env.example: {required - set(example)}"
    env = dot_env()
    for name in sorted(required):
        for missing in ({k: v for k, v in env.items() if k != name}, {**env, name: ""}):
            with pytest.raises(ComposeError, match=f"required variable {name} is missing"):
                compose_run.load_compose(missing)


def test_kartu_settings_come_from_env(compose: dict[str, Any]) -> None:
    """Every secret and credential a Kartu service needs is `${VAR:?}`, not a default."""
    text = (ROOT / "docker-compose.yml").read_text()
    for name in (
        "KARTU_CODEC_KEYS",
        "KARTU_GATEWAY_API_KEY",
        "AYOCONNECT_BASE_URL",
        "AYOCONNECT_CLIENT_ID",
        "AYOCONNECT_CLIENT_SECRET",
        "AYOCONNECT_MERCHANT_CODE",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert re.search(rf"\$\{{{name}:\?", text), f"{name} is not required with ${{{name}:?}}"
        assert not re.search(rf"\$\{{{name}:?-", text), f"{name} has a default"
    for service in ("worker", "gateway", "codec"):
        assert compose["services"][service]["environment"]["KARTU_CODEC_KEYS"]


def test_temporal_follows_the_current_compose_pattern(compose: dict[str, Any]) -> None:
    services = compose["services"]
    everything = (ROOT / "docker-compose.yml").read_text() + "".join(
        p.read_text() for p in (ROOT / "deploy" / "temporal").glob("*.sh")
    )
    assert "auto-setup" not in everything and "tctl" not in everything
    images = {name: service.get("image", "") for name, service in services.items()}
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["postgresql"].startswith("postgres:")
    for job in ("temporal-schema", "temporal-namespace"):
        assert images[job].startswith("temporalio/admin-tools:")
    # The server and its admin tools are one release.
    assert images["temporal"].split(":")[1] == images["temporal-schema"].split(":")[1]
    schema = (ROOT / "deploy/temporal/setup-postgres.sh").read_text()
    assert "temporal-sql-tool" in schema and "update-schema" in schema
    namespace = (ROOT / "deploy/temporal/create-namespace.sh").read_text()
    assert "temporal operator namespace create" in namespace
    assert "temporal operator search-attribute create" in namespace
    # Kartu starts once the namespace job has finished, the server once the schema has.
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("worker", "gateway", "reconciliation-schedule"):
        assert services[name]["depends_on"]["temporal-namespace"]["condition"] == (
            "service_completed_successfully"
        )


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        _, _, tag = image.rpartition(":")
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?", tag), f"{name}: {image!r} is not pinned"


def test_health_checks_restart_policies_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"].startswith("on-failure"), name
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_published_ports_are_the_documented_ones(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8080:8080"]
    assert "127.0.0.1:8233:8080" in services["temporal-ui"]["ports"]
    assert "127.0.0.1:7233:7233" in services["temporal"]["ports"]
    assert "127.0.0.1:8081:8081" in services["codec"]["ports"]
    assert "127.0.0.1:8090:8090" in services["sandbox"]["ports"]
    assert services["sandbox"]["profiles"] == ["sandbox"]
    ui = services["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081/codec"
    cors = json.loads(services["codec"]["environment"]["KARTU_CODEC_SERVER_CORS_ORIGINS"])
    assert cors == ["http://localhost:8233"]


def _env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, model_field in settings.model_fields.items():
        alias = model_field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else (prefix + name).upper())
    return names


def test_kartu_environment_names_are_read_by_the_code(compose: dict[str, Any]) -> None:
    from gateway.codec_server import CodecServerSettings
    from gateway.settings import GatewaySettings
    from sandbox.settings import SandboxSettings
    from starter.codec import CodecSettings
    from telemetry.metrics import WorkerMetricsSettings
    from worker import WorkerSettings

    known: set[str] = set()
    for settings in (
        AyoconnectSettings,
        CodecServerSettings,
        CodecSettings,
        GatewaySettings,
        SandboxSettings,
        WorkerMetricsSettings,
        WorkerSettings,
    ):
        known |= _env_names(settings)
    for name in [*KARTU_SERVICES, "reconciliation-schedule"]:
        env = compose["services"][name]["environment"]
        # OTEL_* are the OpenTelemetry SDK's own (telemetry/tracing.py).
        unknown = {key for key in env if key not in known and not key.startswith("OTEL_")}
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


def test_search_attributes_of_the_namespace_job_are_kartus() -> None:
    from starter.stack import search_attribute_kinds

    script = (ROOT / "deploy/temporal/create-namespace.sh").read_text()
    listed = re.search(r'ATTRIBUTES="([^"]*)"', script)
    assert listed
    assert dict(pair.split("=") for pair in listed[1].split()) == search_attribute_kinds()


def test_dockerfile_multi_stage_non_root_locked(compose: dict[str, Any]) -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"(?m)^FROM ", text)) >= 2
    image = compose_run.read_dockerfile()
    assert image.user.split(":")[0] not in ("", "root", "0")
    assert f"--uid {compose_run.KARTU_UID}" in text
    assert "install -d -o kartu -g kartu" in text and "/data" in text
    assert "--require-hashes" in text and "requirements.lock" in text
    # The image's own health check is the worker's (its default command).
    assert image.healthcheck == ["CMD", *compose["services"]["worker"]["healthcheck"]["test"][1:]]
    assert re.search(r'(?m)^CMD \["python", "-m", "worker"\]', text)
    # Every package pyproject.toml ships is copied into the build.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}" in text, f"Dockerfile does not copy {package}"
    for module in pyproject["tool"]["setuptools"]["py-modules"]:
        assert re.search(rf"(?m)^COPY .*\b{module}\.py\b", text)
    assert (ROOT / ".dockerignore").is_file()


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    """Regenerate with the command at the top of requirements.lock after changing
    pyproject.toml's dependencies."""
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m["name"].lower().replace("_", "-"): m["version"]
        for m in re.finditer(r"(?m)^(?P<name>[A-Za-z0-9_.-]+)==(?P<version>\S+)", lock)
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = pyproject["build-system"]["requires"]
    for spec in [*pyproject["project"]["dependencies"], *build]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is not in requirements.lock: regenerate it"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"requirements.lock pins {name}=={pinned[name]}, pyproject asks {requirement}"
        )
    entries = re.split(r"(?m)^(?=[A-Za-z0-9_.-]+==)", lock)[1:]
    assert all("--hash=sha256:" in entry for entry in entries)


# --- the services, run -------------------------------------------------------------------------


class Stack:
    def __init__(self, host: Host, devserver: DevServer) -> None:
        self.host = host
        self.devserver = devserver
        self.running: dict[str, Running] = {}
        # Started beside the others (two cores: start everything, then wait), checked below.
        self.failing: dict[str, Running] = {}
        self.jobs: dict[str, Running] = {}


@pytest.fixture(scope="module")
def stack(compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("compose")
    devserver = DevServer(port=free_port(), log_path=base / "temporal.log")
    devserver.start()
    host = Host(compose, compose_run.read_dockerfile(), base)
    host.point("temporal", 7233, devserver.address)
    stack = Stack(host, devserver)
    try:
        # Services that need no Temporal start while it starts.
        for name in ("sandbox", "codec"):
            stack.running[name] = host.service(name).start()
        asyncio.run(devserver.wait_ready())
        job = host.service("temporal-namespace").start()
        # The same job on a namespace the dev server lacks ("default" it has): the create path.
        job_env = dict(compose["services"]["temporal-namespace"]["environment"])
        fresh_env = {**job_env, "TEMPORAL_NAMESPACE": "n2"}
        stack.jobs["fresh"] = host.service("temporal-namespace", environment=fresh_env).start()
        for name in ("worker", "gateway"):
            stack.running[name] = host.service(name).start()
        no_keys = dict(compose["services"]["worker"]["environment"])
        del no_keys["KARTU_CODEC_KEYS"]
        stack.failing["no codec keys"] = host.service("worker", environment=no_keys).start()
        stack.failing["unwritable data"] = host.service("worker", data_writable=False).start()
        assert compose_run.wait_exit(job, timeout=60) == 0, job.output()
        # Again, as a restarted compose project runs it: nothing left to do.
        stack.jobs["again"] = host.service("temporal-namespace").start()
        stack.jobs["schedule"] = host.service("reconciliation-schedule").start()
        for each in stack.running.values():
            compose_run.wait_healthy(each)
        yield stack
    finally:
        compose_run.stop_all(
            [*stack.running.values(), *stack.failing.values(), *stack.jobs.values()]
        )
        devserver.stop()


def test_every_kartu_service_becomes_healthy(stack: Stack, compose: dict[str, Any]) -> None:
    assert set(compose_run.kartu_services(compose)) == {*KARTU_SERVICES, "reconciliation-schedule"}
    assert set(stack.running) == KARTU_SERVICES
    for name, each in stack.running.items():
        assert each.process.poll() is None, f"{name} stopped"
        assert each.run.check_health(), f"{name} is no longer healthy"
    # The image's health check (the worker's) passes for the worker too.
    worker = stack.running["worker"].run
    image_check = ServiceRun(
        "worker-image-check",
        [],
        worker.env,
        worker.cwd,
        compose_run.read_dockerfile().healthcheck,
        worker.log_path,
    )
    assert image_check.check_health()


def test_the_namespace_job_registers_kartus_search_attributes(stack: Stack) -> None:
    from starter.stack import search_attribute_kinds

    async def listed() -> dict[str, int]:
        client = await Client.connect(stack.devserver.address)
        answer = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        return dict(answer.custom_attributes)

    kinds = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime"}
    found = {name: kinds.get(kind) for name, kind in asyncio.run(listed()).items()}
    expected = search_attribute_kinds()
    assert {name: found.get(name) for name in expected} == expected
    again, fresh = stack.jobs["again"], stack.jobs["fresh"]
    assert compose_run.wait_exit(again, timeout=60) == 0, again.output()
    assert "created" not in again.output()
    assert compose_run.wait_exit(fresh, timeout=60) == 0, fresh.output()
    assert "namespace n2 created (retention 30d)" in fresh.output()
    assert fresh.output().count("(Keyword) created") == 4


def test_a_temporal_profile_connects_worker_gateway_and_kartu(stack: Stack) -> None:
    """TEMPORAL_PROFILE + TEMPORAL_CONFIG_FILE only: no TEMPORAL_ADDRESS anywhere."""
    gateway = stack.running["gateway"].run
    for name in ("worker", "gateway"):
        env = stack.running[name].run.env
        assert env["TEMPORAL_PROFILE"] == "compose" and "TEMPORAL_ADDRESS" not in env
        assert Path(env["TEMPORAL_CONFIG_FILE"]).read_text().count(stack.devserver.address) == 1
    # worker and gateway: healthy above (the worker polls, /healthz reached Temporal). kartu:
    done = subprocess.run(  # noqa: S603
        compose_run.as_kartu_user([compose_run.local_executable("kartu"), "--json", "payments"]),
        env=gateway.env,
        cwd=gateway.cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_schedule_job_creates_the_reconciliation_schedule(stack: Stack) -> None:
    job = stack.jobs["schedule"]
    assert compose_run.wait_exit(job, timeout=60) == 0, job.output()

    async def described() -> str:
        client = await Client.connect(stack.devserver.address)
        schedule = await client.get_schedule_handle("kartu-reconciliation").describe()
        return schedule.id

    assert asyncio.run(described()) == "kartu-reconciliation"


def test_the_codec_service_serves_the_ui(stack: Stack, compose: dict[str, Any]) -> None:
    run = stack.running["codec"].run
    url = f"http://127.0.0.1:{run.env['KARTU_CODEC_SERVER_PORT']}/codec"
    origin = json.loads(run.env["KARTU_CODEC_SERVER_CORS_ORIGINS"])[0]
    plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IjEyMyI="}]}
    with httpx.Client(headers={"Origin": origin}, timeout=10) as http:
        preflight = http.options(
            f"{url}/decode",
            headers={
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        encoded = http.post(f"{url}/encode", json=plain).json()
        assert encoded != plain
        assert http.post(f"{url}/decode", json=encoded).json() == plain


def test_a_missing_codec_key_keeps_the_worker_down(stack: Stack) -> None:
    """What the compose file used to do: no KARTU_CODEC_KEYS. The worker must not invent a key
    (no other worker could read what it wrote), must say which settings it lacks, and must not
    report healthy."""
    worker = stack.failing["no codec keys"]
    assert compose_run.wait_exit(worker) != 0
    assert not worker.run.check_health()
    assert "no payload codec keys: set KARTU_CODEC_KEYS or KARTU_CODEC_KEYS_FILE" in worker.output()


def test_an_unwritable_data_dir_stops_the_worker_at_start(stack: Stack) -> None:
    worker = stack.failing["unwritable data"]
    assert compose_run.wait_exit(worker) == 1
    assert "KARTU_WORKER_LIVENESS_FILE /" in worker.output()
    assert "cannot write it (Permission denied)" in worker.output()
    assert not worker.run.check_health()


def test_yaml_anchors_resolve_to_plain_mappings() -> None:
    """Compose merges `<<:` keys as YAML does: the loaded file has no anchors left over."""
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in KARTU_SERVICES:
        assert "<<" not in raw["services"][name]["environment"]
        assert raw["services"][name]["read_only"] is True
