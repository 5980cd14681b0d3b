"""WorkerSettings loads the Temporal connection with temporalio.envconfig: a TOML profile, the
standard TEMPORAL_* variables over it, Kartu's old TLS names as aliases, clear errors.

(tests/deploy/test_compose.py connects the worker, the gateway and `kartu` with a profile.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from worker import WorkerSettings

PROFILES = """
[profile.default]
address = "default.internal:7233"
namespace = "kartu-default"

[profile.prod]
address = "prod.tmprl.cloud:7233"
namespace = "kartu.acct"
api_key = "profile-api-key-123"

[profile.prod.grpc_meta]
x-team = "payments"

[profile.mtls]
address = "mtls.internal:7233"
namespace = "kartu"

[profile.mtls.tls]
client_cert_path = "{dir}/profile-cert.pem"
client_key_path = "{dir}/profile-key.pem"
server_name = "temporal.internal"
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No TEMPORAL_* from the machine, and no default temporal.toml of the person running this."""
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    return monkeypatch


@pytest.fixture
def config(env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("profile-cert", "profile-key", "cert", "key", "ca"):
        (tmp_path / f"{name}.pem").write_bytes(f"PEM {name}".encode())
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES.replace("{dir}", str(tmp_path)))
    env.setenv("TEMPORAL_CONFIG_FILE", str(path))
    return path


def test_nothing_set_is_the_local_dev_server(env: pytest.MonkeyPatch) -> None:
    settings = WorkerSettings()
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "localhost:7233",
        "default",
    )
    assert settings.tls_config() is False
    assert settings.connect_options()["api_key"] is None


def test_the_default_profile_of_the_file(config: Path) -> None:
    settings = WorkerSettings()
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "default.internal:7233",
        "kartu-default",
    )


def test_the_default_file_in_the_home_config_folder(env: pytest.MonkeyPatch) -> None:
    folder = Path(os.environ["XDG_CONFIG_HOME"]) / "temporalio"
    folder.mkdir(parents=True)
    (folder / "temporal.toml").write_text('[profile.default]\naddress = "home.internal:7233"\n')
    assert WorkerSettings().temporal_address == "home.internal:7233"


def test_temporal_profile_picks_a_profile(config: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("TEMPORAL_PROFILE", "prod")
    settings = WorkerSettings()
    options = settings.connect_options()
    assert options["target_host"] == "prod.tmprl.cloud:7233"
    assert options["namespace"] == "kartu.acct"
    assert options["api_key"] == "profile-api-key-123"
    assert options["tls"] is True  # an API key turns TLS on
    assert options["rpc_metadata"] == {"x-team": "payments"}
    # The key came from a file: still never in a repr.
    assert "profile-api-key-123" not in repr(settings)


def test_environment_over_the_profile_and_arguments_over_both(
    config: Path, env: pytest.MonkeyPatch
) -> None:
    env.setenv("TEMPORAL_PROFILE", "prod")
    env.setenv("TEMPORAL_NAMESPACE", "from-env")
    env.setenv("TEMPORAL_API_KEY", "env-api-key")
    settings = WorkerSettings()
    assert settings.temporal_address == "prod.tmprl.cloud:7233"  # not overridden: the file's
    assert settings.temporal_namespace == "from-env"
    assert settings.connect_options()["api_key"] == "env-api-key"

    env.setenv("TEMPORAL_ADDRESS", "env.internal:7233")
    given = WorkerSettings(TEMPORAL_ADDRESS="given.internal:7233", TEMPORAL_PROFILE="mtls")
    assert given.temporal_address == "given.internal:7233"
    assert given.temporal_namespace == "from-env"  # the environment, over profile mtls


def test_the_profile_and_file_can_be_given_as_arguments(config: Path, env: pytest.MonkeyPatch):
    env.delenv("TEMPORAL_CONFIG_FILE")
    settings = WorkerSettings(TEMPORAL_CONFIG_FILE=str(config), TEMPORAL_PROFILE="prod")
    assert settings.temporal_address == "prod.tmprl.cloud:7233"


def test_tls_from_the_profile_and_the_standard_variables(
    config: Path, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("TEMPORAL_PROFILE", "mtls")
    tls = WorkerSettings().tls_config()
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (b"PEM profile-cert", b"PEM profile-key")
    assert tls.domain == "temporal.internal"

    env.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "cert.pem"))
    env.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "key.pem"))
    env.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(tmp_path / "ca.pem"))
    tls = WorkerSettings().tls_config()
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert) == (
        b"PEM cert",
        b"PEM key",
        b"PEM ca",
    )

    env.setenv("TEMPORAL_TLS", "false")
    assert WorkerSettings().tls_config() is False


def test_tls_switch_alone(env: pytest.MonkeyPatch) -> None:
    env.setenv("TEMPORAL_TLS", "true")
    assert WorkerSettings().tls_config() is True
    env.setenv("TEMPORAL_TLS", "0")
    env.setenv("TEMPORAL_API_KEY", "k-123")
    assert WorkerSettings().tls_config() is False  # switched off explicitly, key or not


def test_old_tls_names_are_aliases(config: Path, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("TEMPORAL_PROFILE", "mtls")
    env.setenv("TEMPORAL_TLS_CERT", str(tmp_path / "cert.pem"))
    env.setenv("TEMPORAL_TLS_KEY", str(tmp_path / "key.pem"))
    env.setenv("TEMPORAL_TLS_CA", str(tmp_path / "ca.pem"))
    tls = WorkerSettings().tls_config()
    assert isinstance(tls, TLSConfig)
    # Environment variables, so over the profile's files, like the standard names.
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert) == (
        b"PEM cert",
        b"PEM key",
        b"PEM ca",
    )
    assert tls.domain == "temporal.internal"  # the rest of the profile stays

    env.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "cert.pem"))
    with pytest.raises(ValidationError, match=r"TEMPORAL_TLS_CERT is an alias of .* not both"):
        WorkerSettings()


def test_empty_variables_count_as_unset(config: Path, env: pytest.MonkeyPatch) -> None:
    # compose's ${VAR:-} passes empty strings
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_TLS_CERT"):
        env.setenv(name, "")
    env.setenv("TEMPORAL_TLS", "")
    settings = WorkerSettings()
    assert settings.temporal_address == "default.internal:7233"
    assert settings.tls_config() is False


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"TEMPORAL_PROFILE": "staging"}, r"profile 'staging' \(config file .*temporal.toml\)"),
        ({"TEMPORAL_CONFIG_FILE": "/nowhere/temporal.toml"}, "TEMPORAL_CONFIG_FILE: no file at"),
        ({"TEMPORAL_TLS": "maybe"}, "TEMPORAL_TLS must be true or false, not 'maybe'"),
        ({"TEMPORAL_TLS_CERT": "{dir}/cert.pem"}, "needs its key: set both"),
        ({"TEMPORAL_TLS_CLIENT_KEY_PATH": "{dir}/key.pem"}, "needs its key: set both"),
        (
            {"TEMPORAL_TLS_CERT": "{dir}/none.pem", "TEMPORAL_TLS_KEY": "{dir}/key.pem"},
            r"TLS client certificate: cannot read .*none.pem: No such file",
        ),
        (
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "/a.pem", "TEMPORAL_TLS_CLIENT_CERT_DATA": "PEM"},
            "Cannot specify both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_CERT_DATA",
        ),
    ],
)
def test_bad_settings_fail_naming_what_is_wrong(
    config: Path, env: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        env.setenv(name, value.replace("{dir}", str(tmp_path)))
    with pytest.raises(ValidationError, match=message):
        WorkerSettings()


def test_a_broken_file_names_its_line(config: Path, env: pytest.MonkeyPatch) -> None:
    config.write_text('[profile.default]\naddress = "a:1"\napi_key = "secret-in-file\n')
    with pytest.raises(ValidationError, match="line 3, column 26; invalid basic string") as failure:
        WorkerSettings()
    # The parser quotes the broken line; an API key on it must not reach a log.
    assert "secret-in-file" not in str(failure.value)


def test_errors_never_show_the_api_key(config: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("TEMPORAL_API_KEY", "very-secret-key-value")
    env.setenv("TEMPORAL_PROFILE", "staging")
    with pytest.raises(ValidationError) as failure:
        WorkerSettings()
    assert "very-secret-key-value" not in str(failure.value)
