"""The suite's own port rule (tests/stack_support.py): a port a test hands to a server it starts
comes from the test process's band, below the kernel's ephemeral range.

A CI run failed on this: the compose test took its codec port from ``bind(0)`` (an ephemeral
port), and before the codec bound it another listener of the run had it ("address already in
use"); the dev server's own HTTP and metrics ports, for one, are ephemeral ports it picks itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.stack_support import _BAND_SIZE, _BAND_START, free_ports, worker_number

TESTS = Path(__file__).resolve().parents[1]
EPHEMERAL_FIRST = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_ports_come_from_this_process_band_below_the_ephemeral_range() -> None:
    # Every band (20 of them: test processes wrap around) ends below the ephemeral range.
    assert _BAND_START + 20 * _BAND_SIZE <= EPHEMERAL_FIRST
    ports = free_ports(20)
    start = _BAND_START + (worker_number() % 20) * _BAND_SIZE
    assert len(set(ports)) == 20
    assert all(start <= port < start + _BAND_SIZE for port in ports)


def test_no_test_hands_a_kernel_chosen_port_to_a_server() -> None:
    patterns = [
        # starter's free_port is bind(0): a kernel-chosen port (one line or parenthesised)
        r"from starter\.(?:devserver|stack) import (?:\([^)]*|[^\n]*)\bfree_port\b",
        # a helper binding port 0 and returning the number, the socket closed behind it
        r"bind\(\([^)]*,\s*0\)\)\s*\n\s*return[^\n]*getsockname",
        # a dev server left to pick its own port
        r"\bDevServer\((?![^)]*\bport=)",
    ]
    offenders = [
        (str(path.relative_to(TESTS)), pattern)
        for path in TESTS.rglob("*.py")
        if path != Path(__file__).resolve()
        for pattern in patterns
        if re.search(pattern, path.read_text())
    ]
    assert offenders == []
