"""No Docker engine runs here: check that docker-compose.yml holds together on paper."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from ayoconnect.settings import AyoconnectSettings

ROOT = Path(__file__).resolve().parents[2]
KARTU_SERVICES = {"worker", "gateway", "sandbox"}
LONG_RUNNING = {"postgresql", "temporal", "temporal-ui", "worker", "gateway", "sandbox"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else (prefix + name).upper())
    return names


def _known_env() -> set[str]:
    from gateway.settings import GatewaySettings
    from sandbox.settings import SandboxSettings
    from worker import WorkerSettings

    known: set[str] = set()
    for settings in (AyoconnectSettings, GatewaySettings, SandboxSettings, WorkerSettings):
        known |= _env_names(settings)
    return known


def test_services_are_all_there(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert {"postgresql", "temporal", "temporal-admin-tools", "temporal-ui"} <= services
    assert services >= KARTU_SERVICES
    assert compose["services"]["sandbox"]["profiles"] == ["sandbox"]


def test_images_have_pinned_tags(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.match(r"^\d+(\.\d+)*", tag), f"{name}: tag {tag!r} is not a version"


def test_kartu_services_build_from_the_one_dockerfile(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    images = {compose["services"][s]["image"] for s in KARTU_SERVICES}
    assert len(images) == 1
    for service in KARTU_SERVICES:
        assert compose["services"][service]["build"] == "."
    for package in ("ayoconnect", "sandbox", "activities", "workflows", "starter", "gateway"):
        assert f"COPY {package} ./{package}" in dockerfile
        assert (ROOT / package).is_dir()
    assert "COPY worker.py" in dockerfile and (ROOT / "worker.py").is_file()


def test_depends_on_names_real_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = compose["services"][name].get("healthcheck")
        assert check and check["test"], f"{name} has no healthcheck"


def test_ports_are_the_documented_ones(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "7233:7233" in services["temporal"]["ports"]
    assert "8233:8080" in services["temporal-ui"]["ports"]
    assert "8080:8080" in services["gateway"]["ports"]
    assert "8090:8090" in services["sandbox"]["ports"]


def test_environment_names_are_read_by_the_code(compose: dict[str, Any]) -> None:
    known = _known_env()
    for name in KARTU_SERVICES:
        env = compose["services"][name]["environment"]
        unknown = {key for key in env if key not in known}
        assert not unknown, f"{name} sets variables no Kartu setting reads: {sorted(unknown)}"
    worker_env = compose["services"]["worker"]["environment"]
    assert {"TEMPORAL_ADDRESS", "AYOCONNECT_BASE_URL", "AYOCONNECT_CLIENT_SECRET"} <= set(
        worker_env
    )


def test_search_attributes_registered_match_the_workflows(compose: dict[str, Any]) -> None:
    from workflows.search_attributes import ALL_KEYS

    command = " ".join(compose["services"]["temporal-admin-tools"]["command"])
    registered = dict(re.findall(r"--name (\w+) --type (\w+)", command))
    expected = {key.name: kind for key, kind in _attribute_types(ALL_KEYS).items()}
    assert registered == expected


def _attribute_types(keys: Any) -> dict[Any, str]:
    names = {
        "KEYWORD": "Keyword",
        "INT": "Int",
        "DATETIME": "Datetime",
        "TEXT": "Text",
        "BOOL": "Bool",
        "FLOAT": "Double",
        "KEYWORD_LIST": "KeywordList",
    }
    return {
        key: names[key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")] for key in keys
    }
