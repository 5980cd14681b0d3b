"""Session fixtures shared by every suite that needs a real Kartu stack, and how pytest-xdist
spreads the suites over its test processes.

- ``local_stacks``: the product's ``starter.stack.LocalStack`` (what ``kartu up`` runs: every
  part a child process) started on demand, once per name and test process, on ports of this
  process's own band (``stack_support``), all stopped when the session ends. A suite's conftest
  asks for its own: ``kartu_up`` (CLI suite), ``secure_up`` (security suite).
- ``inprocess_stack``: the gateway and starter suites' stack (their ``stack``), the same
  ``LocalStack`` for Temporal but its Python parts inside the test process, so tests can look
  into them (``kartu_stack.py``).

Under xdist (``make test``: ``--dist loadgroup``) the tests that share a stack are one group
(``STACK_PATHS``): one test process runs them all, so each stack starts once in the whole run;
every other module goes, whole, wherever a process is free.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported where used: a unit-test run stays light
    from starter.stack import LocalStack
    from tests.kartu_stack import Stack

# Where the tests that share a session stack live -> their xdist group: one test process runs
# each group, so each stack starts once in the whole run. By path, as the xdist controller
# (which collects nothing) must tell the group from a test id alone; ``STACK_FIXTURES`` checks
# at collection that no test uses a stack outside its group's paths.
STACK_PATHS = {
    "tests/gateway/": "stack-inprocess",
    "tests/starter/": "stack-inprocess",
    # The CLI suite on three stacks side by side (test_cli_up.py starts its own ``kartu up``s;
    # the reconcile test needs a window no other test's payments fall in).
    "tests/cli/test_cli_demo.py": "stack-cli-2",
    "tests/cli/test_cli_reconcile.py": "stack-cli-2",
    "tests/cli/test_cli_up.py": "stack-cli-3",
    "tests/cli/": "stack-cli",
    "tests/security/": "stack-security",
    "tests/telemetry/": "stack-telemetry",
    # The time-skipping harness (server, sandbox, gateway, worker) of the integration suite.
    "tests/integration/test_lifecycles_real.py": "integration-harness",
    "tests/integration/test_long_outage.py": "integration-harness",
}
STACK_FIXTURES: dict[str, tuple[str, ...]] = {
    "inprocess_stack": ("stack-inprocess",),
    "kartu_up": ("stack-cli", "stack-cli-2", "stack-cli-3"),
    "secure_up": ("stack-security",),
    "metrics_stack": ("stack-telemetry",),
    "harness": ("integration-harness",),
}
# The longest groups, longest first: a test process takes the next group in collection order
# (``--no-loadscope-reorder``), so these start at once, side by side, and the many short
# modules fill in around them. Measured on the 2-core CI machine.
LONGEST_FIRST = (
    "tests/chaos/test_chaos_small.py",
    "stack-cli",
    "stack-security",
    "stack-cli-2",
    "integration-harness",
    "stack-cli-3",
    "stack-telemetry",
    "tests/deploy/test_compose.py",
    "stack-inprocess",
    "tests/integration/test_crash.py",
)


def xdist_group(nodeid: str) -> str:
    """The group of a test: its stack's, else its module (whose fixtures, a sandbox or a time-
    skipping worker and the payments it leaves open, are then set up once, as without xdist)."""
    path = nodeid.split("::")[0]
    return next((g for prefix, g in STACK_PATHS.items() if path.startswith(prefix)), path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` by ``xdist_group``: xdist's own reads ``xdist_group`` marks through
    node ids, which pytest 9.2 no longer lets a plugin rewrite."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class StackGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return StackGroups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    counts = Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, count in counts.items() if count > 1)
    if shared:  # xdist keys its work by node id: all but one of them would never run
        raise pytest.UsageError(f"tests share a node id, give them their own: {shared[:3]}")
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, groups in STACK_FIXTURES.items():
            if fixture in used and xdist_group(item.nodeid) not in groups:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the session stack {fixture!r} outside its paths: add "
                    f"the test's path to STACK_PATHS ({groups!r}) in tests/conftest.py"
                )
    if hasattr(config, "workerinput"):  # an xdist test process: the longest groups first
        rank = {group: index for index, group in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(xdist_group(item.nodeid), len(rank)))


class LocalStacks:
    """Named ``LocalStack``s of this test process, each started at its first ``start``."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._stacks: dict[str, LocalStack] = {}
        self._lock = asyncio.Lock()

    async def start(
        self, name: str, environ: dict[str, str] | None = None, **config: Any
    ) -> LocalStack:
        """The stack ``name``: started in a fresh data directory with ``stack_config(**config)``
        and ``environ`` (default ``stack_environ()``) the first time, the same one after."""
        from starter.stack import LocalStack, StackError
        from tests.stack_support import log_tails, stack_config, stack_environ, track

        async with self._lock:
            if name not in self._stacks:
                data_dir = self._tmp.mktemp(f"kartu-{name}") / "data"
                local = track(
                    LocalStack(stack_config(data_dir, **config), environ or stack_environ())
                )
                try:
                    await local.start()
                except StackError as exc:
                    tails = log_tails(local)
                    await asyncio.to_thread(local.stop)
                    raise RuntimeError(f"stack {name} did not start: {exc}\n{tails}") from None
                except BaseException:
                    await asyncio.to_thread(local.stop)
                    raise
                self._stacks[name] = local
            return self._stacks[name]

    async def stop(self, name: str) -> None:
        local = self._stacks.pop(name, None)
        if local is not None:
            await asyncio.to_thread(local.stop)

    async def stop_all(self) -> None:
        for name in reversed(list(self._stacks)):
            await self.stop(name)


@pytest.fixture(scope="session")
async def local_stacks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStacks]:
    stacks = LocalStacks(tmp_path_factory)
    try:
        yield stacks
    finally:
        await stacks.stop_all()


@pytest.fixture(scope="session")
async def inprocess_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    from tests.kartu_stack import start_stack

    started = await start_stack(tmp_path_factory.mktemp("kartu-stack") / "data")
    try:
        yield started
    finally:
        await started.stop()
