"""Pure unit tests of the gateway's pieces: settings rule, signature cache, log redaction."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ayoconnect import AyoconnectSettings, callback_signature
from gateway import GatewayConfigError, GatewaySettings, create_app
from gateway.app import redact_path
from gateway.callbacks import SignatureVerifier

ROOT = Path(__file__).resolve().parents[2]


def settings(**values: object) -> GatewaySettings:
    return GatewaySettings.model_validate(values)


def test_no_api_key_refuses_to_start():
    with pytest.raises(GatewayConfigError, match="KARTU_GATEWAY_API_KEY"):
        settings().require_secure()
    with pytest.raises(GatewayConfigError, match="loopback"):
        settings(insecure_dev=True, host="0.0.0.0").require_secure()  # noqa: S104
    settings(insecure_dev=True, host="127.0.0.1").require_secure()
    settings(insecure_dev=True, host="::1").require_secure()
    settings(api_key="k" * 16, host="0.0.0.0").require_secure()  # noqa: S104
    with pytest.raises(ValueError, match="at least 16"):
        settings(api_key="short")
    assert settings(api_key="").api_key is None


def test_create_app_applies_the_rule():
    with pytest.raises(GatewayConfigError):
        create_app(lambda: None, settings())  # type: ignore[arg-type,return-value]


def run_gateway(cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m gateway`` without any gateway or codec setting of this environment."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KARTU_GATEWAY_", "KARTU_CODEC_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_python_m_gateway_refuses_without_api_key(tmp_path: Path):
    done = run_gateway(tmp_path, KARTU_CODEC_DISABLED="1")
    assert done.returncode == 2
    assert "KARTU_GATEWAY_API_KEY" in done.stderr


def test_python_m_gateway_refuses_without_codec_keys(tmp_path: Path):
    # Run where no `kartu up` left a key file: one line naming the settings, no traceback.
    done = run_gateway(tmp_path, KARTU_GATEWAY_API_KEY="k" * 32)
    assert done.returncode == 2
    assert done.stderr.startswith("kartu gateway: no payload codec keys: set KARTU_CODEC_KEYS")
    assert "Traceback" not in done.stderr and not (tmp_path / ".kartu").exists()


def test_card_tokens_are_redacted_from_logged_paths():
    token = "Q" * 40
    assert redact_path(f"/cards/{token}") == "/cards/<redacted>"
    assert redact_path("/cards/registrations/r1") == "/cards/registrations/r1"
    assert redact_path("/cards/registrations") == "/cards/registrations"
    assert redact_path("/payments/p1") == "/payments/p1"


async def test_signature_verifier_checks_each_header_once():
    ayo = AyoconnectSettings(client_secret="s3cret-for-units", merchant_code="KRT009")
    verifier = SignatureVerifier(ayo, max_cached=2)
    good = callback_signature("s3cret-for-units", "KRT009", rounds=4)
    bad = callback_signature("other", "KRT009", rounds=4)
    results = await asyncio.gather(*(verifier.verify(good) for _ in range(5)))
    assert results == [True] * 5 and verifier.checks == 1
    assert await verifier.verify(bad) is False
    assert await verifier.verify(bad) is False
    assert verifier.checks == 2
    assert await verifier.verify(None) is False and await verifier.verify("") is False
    assert await verifier.verify("$" * 500) is False
    assert verifier.checks == 2
    # A flood of forged headers does not evict the genuine one.
    for n in range(5):
        await verifier.verify(callback_signature(f"forged{n}", "KRT009", rounds=4))
    before = verifier.checks
    assert await verifier.verify(good) is True and verifier.checks == before
