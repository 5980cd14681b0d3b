"""The README's REST example ("The same over REST"), run as it is written (bash, curl, jq)
against this suite's gateway. Only where the gateway listens and where its key is kept change,
and the order id, fresh for each run; ``$customer`` and ``$token`` are a registered card's, as
the walk-through before it leaves them."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from tests.kartu_stack import API_KEY, Stack, new_key

ROOT = Path(__file__).resolve().parents[2]


def rest_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("The same over REST", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


async def test_the_readme_rest_example_runs(stack: Stack):
    card = await stack.registered_card()
    order = new_key("order")
    script = (
        rest_block()
        .replace("http://localhost:8080", stack.gateway_url)
        .replace("$(cat .kartu/gateway-api-key)", API_KEY)
        .replace("order_2001", order)
    )
    bash = shutil.which("bash")
    assert bash is not None
    env = {"PATH": os.environ["PATH"], "customer": card.customer_id, "token": card.card_token}
    # In a thread: the gateway answers on this test's event loop.
    done = await asyncio.to_thread(
        subprocess.run,
        [bash, "--norc", "--noprofile", "-c", "set -euo pipefail\n" + script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "HTTP/1.1 201 Created" in out, out
    assert f"location: /payments/{order}" in out.lower(), out
    assert '"PAID"\n' in out, out  # jq .status (curl's bodies end without a newline)
    assert '"payments":[' in out and f'"payment_id":"{order}"' in out, out
    assert out.rstrip().endswith("}") and '"status":"REFUNDED"' in out, out
