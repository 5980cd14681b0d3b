"""The Temporal dev server (`temporal server start-dev`) as a managed child process.

Used by tests (a real server on loopback ports) and by the local stack launcher. The server keeps
its state in a SQLite file with WAL (about three times faster here than the default journal) and
reads its transfer queue faster than the default 20 reads/s, which otherwise makes every
workflow task wait up to ~50 ms once the server is warm.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from .binaries import temporal_cli
from .supervisor import die_with_parent

FAST_DYNAMIC_CONFIG: dict[str, str] = {
    "history.transferProcessorMaxPollRPS": "1000",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class DevServer:
    """A `temporal server start-dev` child process on loopback."""

    db_path: Path | None = None
    port: int = 0
    ui_port: int = 0
    headless: bool = True
    host: str = "127.0.0.1"
    namespace: str = "default"
    search_attributes: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    # Where the UI asks to decode payloads (the gateway's codec server), so it shows them plain.
    ui_codec_endpoint: str | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.headless else f"http://{self.host}:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warn",
        ]
        if self.headless:
            cmd.append("--headless")
        else:
            # No network here nor on many build hosts: the UI must not fetch its newsfeed.
            cmd += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.ui_codec_endpoint:
                cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.db_path is not None:
            # WAL, and fsync only at checkpoints: a crash of the process loses nothing, a power
            # cut may lose the last transactions (a local stack's trade; the README says so).
            cmd += ["--db-filename", str(self.db_path)]
            cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        if self.namespace != "default":
            cmd += ["--namespace", self.namespace]
        for key, value in FAST_DYNAMIC_CONFIG.items():
            cmd += ["--dynamic-config-value", f"{key}={value}"]
        for name, kind in self.search_attributes.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        return cmd

    def start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("dev server already running")
        if not self.port:
            self.port = free_port(self.host)
        if not self.headless and not self.ui_port:
            self.ui_port = free_port(self.host)
        if self.db_path is not None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            # Own process group: a Ctrl-C meant for the launcher must not kill the server first.
            self._process = subprocess.Popen(  # noqa: S603
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=server_environment(os.environ),
                preexec_fn=die_with_parent,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

    async def wait_ready(self, timeout: float = 60.0) -> Client:
        """Connect once the frontend answers; raise if the process died or time ran out."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited early ({self.log_hint()})")
            try:
                # connect() asks the server for its system info, so success means it answers.
                return await Client.connect(self.address, namespace=self.namespace)
            except Exception as exc:  # the server is still starting: any failure means "not yet"
                last_error = exc
                await asyncio.sleep(0.2)
        raise TimeoutError(f"temporal dev server not ready after {timeout:.0f} s: {last_error}")

    def log_hint(self) -> str:
        return f"see {self.log_path}" if self.log_path else "run with a log_path to see why"

    def stop(self, timeout: float = 15.0) -> None:
        proc = self._process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def kill(self) -> None:
        """Crash the server (SIGKILL), as a power cut would."""
        proc = self._process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The dev server's environment: Kartu's ``OTEL_*`` settings are for Kartu's processes;
    the server reads them too and refuses any exporter but ``otlp`` (and would trace itself)."""
    return {k: v for k, v in environ.items() if not k.startswith("OTEL_")}
