"""Kartu's pydantic models build their schemas at first use (``defer_build``), and the worker
builds them all before it polls (``workflows.models.complete_models``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from ayoconnect.models import CreateChargeResponse, PaymentCallback, ResponseModel, WireModel
from workflows.models import KartuModel, PaymentInput, PaymentState, complete_models

ROOT = Path(__file__).resolve().parents[2]


def every_model() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    pending: list[type[BaseModel]] = [KartuModel, WireModel, ResponseModel]
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


def test_importing_the_client_builds_no_schema() -> None:
    # A fresh interpreter: the test process has used these models already.
    probe = (
        "import starter.client, ayoconnect.models as wire, workflows.models as kartu\n"
        "print(wire.CreateChargeResponse.__pydantic_complete__,"
        " kartu.PaymentState.__pydantic_complete__)"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "False"]


def test_complete_models_leaves_none_deferred() -> None:
    import worker  # noqa: F401 - every module whose models a workflow or activity carries

    complete_models()
    models = every_model()
    assert {CreateChargeResponse, PaymentCallback, PaymentInput, PaymentState} <= set(models)
    assert [m.__name__ for m in models if not m.__pydantic_complete__] == []
    assert complete_models() == 0
