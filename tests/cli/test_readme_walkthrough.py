"""The README's "Five minutes with Kartu" block, run as it is written (bash, ``set -euo
pipefail``) against the session's ``kartu up``: every command must work, every id it uses it
creates itself, the customer id and card token carried by ``--json | jq``, and ``temporal
workflow show --codec-endpoint`` must show the payment's payloads decrypted.

The only changes are where things are: the gateway's port (the README's ``localhost:8080``) and
``.kartu``, a link to the stack's data directory in the directory the block runs in. The other
addresses come from the environment, as they would after ``make up`` (TEMPORAL_ADDRESS for
``kartu`` and ``temporal``, KARTU_SANDBOX_URL).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cli_stack import ROOT, Up


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Five minutes with Kartu", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_walkthrough_uses_no_placeholder() -> None:
    block = walkthrough()
    assert "<" not in block.replace("<(", ""), "a placeholder the reader must fill in"
    assert "--json | jq" in block and "--codec-endpoint" in block


def test_readme_walkthrough_runs_against_kartu_up(kartu_up: Up, tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / ".kartu").symlink_to(kartu_up.data_dir)
    script = walkthrough().replace("http://localhost:8080", kartu_up.ready["gateway"])
    env = dict(kartu_up.env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(  # noqa: S603 - the README's own commands
        [bash, "--norc", "--noprofile", "-c", "set -euxo pipefail\n" + script],
        env=env,
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def status(payment: str) -> str:
        state = kartu_up.kartu("status", payment, "--json").json()
        return str(state["status"])

    assert status("order_1001") == "REFUNDED"
    assert status("order_1002") == "CAPTURED"
    assert status("order_1003") == "CAPTURED"  # the temporal CLI's capture signal
    # Decrypted by the gateway's codec endpoint: the start input reads in clear.
    assert '"payment_id":"order_1003"' in done.stdout.replace(" ", ""), done.stdout[-3000:]
    cards = json.loads(kartu_up.kartu("registration", "reg_budi_1", "--json").out)
    assert cards["status"] == "REGISTERED"
