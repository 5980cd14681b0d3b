"""Run docker-compose.yml's services without Docker: their exact command and environment, as a
non-root user, in a working directory they do not own, against local stand-ins.

What is translated, and only that (a container would see the same values under other names):
- ``${VAR}`` interpolation, done as compose does it (``:?`` / ``?`` fail, ``:-`` / ``-``
  defaults, ``$$``), from a mapping that stands for ``.env``;
- the image's ``ENV`` (the Dockerfile's last stage) under the service's environment, with PATH
  pointing at this checkout's venv, and PYTHONPATH at the checkout (the image installs Kartu; here
  it is an editable install that may predate a new package);
- paths inside the container: each volume's target (and the image's ``/data`` and WORKDIR) is a
  local directory; a bind-mounted config folder is copied there with compose's host names
  rewritten;
- the network: ``service:port`` becomes the local address of that service's stand-in, and a
  port a service listens on (its ``ports``/``expose``) becomes a free local port.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.stack_support import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The image's kartu user (Dockerfile); used when the tests run as root, as they do here.
KARTU_UID = KARTU_GID = 10001


class ComposeError(Exception):
    """What ``docker compose`` would refuse (a missing required variable)."""


# --- compose's interpolation -------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """One string, as compose's interpolation does it."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset_or_empty:
            raise ComposeError(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and unset_or_empty:
            return arg
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    return node


def load_compose(env: Mapping[str, str], path: Path = ROOT / "docker-compose.yml") -> dict:
    return interpolated(yaml.safe_load(path.read_text()), env)


def read_env_file(path: Path) -> dict[str, str]:
    """A .env file as compose reads it (KEY=VALUE, # comments, optional quotes)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def required_variables(path: Path = ROOT / "docker-compose.yml") -> set[str]:
    """The ``${VAR:?}`` / ``${VAR?}`` names in the file's values (comments are not read)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", node))
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)

    walk(yaml.safe_load(path.read_text()))
    return found


# --- the image ---------------------------------------------------------------------------------


@dataclass
class Image:
    env: dict[str, str]
    workdir: str
    user: str
    healthcheck: list[str]


def read_dockerfile(path: Path = ROOT / "Dockerfile") -> Image:
    """The last stage's ENV, WORKDIR, USER and HEALTHCHECK (the runtime image)."""
    text = path.read_text().replace("\\\n", " ")
    last_stage = re.split(r"(?m)^FROM ", text)[-1]
    env: dict[str, str] = {}
    workdir, user, healthcheck = "/", "root", []
    for line in last_stage.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = interpolate(value, env)
        elif instruction == "WORKDIR":
            workdir = rest.strip()
        elif instruction == "USER":
            user = rest.strip()
        elif instruction == "HEALTHCHECK":
            healthcheck = ["CMD", *yaml.safe_load(rest.split(" CMD ", 1)[1])]
    return Image(env, workdir, user, healthcheck)


# --- running a service -------------------------------------------------------------------------


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    run: ServiceRun

    def output(self) -> str:
        """The end of what it printed (stdout and stderr) so far."""
        return self.run.log_path.read_text(errors="replace")[-3000:]


@dataclass
class ServiceRun:
    """One service's command, environment, user and directories, translated to this machine."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    healthcheck: list[str] | None
    log_path: Path
    ports: dict[int, int] = field(default_factory=dict)
    data_dirs: dict[str, Path] = field(default_factory=dict)

    def start(self) -> Running:
        with open(self.log_path, "wb") as log:
            process = subprocess.Popen(  # noqa: S603
                as_kartu_user(self.argv),
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return Running(self.name, process, self)

    def check_health(self, timeout: float = 10.0) -> bool:
        """The compose health check command, run as the service would run it."""
        assert self.healthcheck, f"{self.name} has no health check"
        kind, *argv = self.healthcheck
        if kind == "CMD-SHELL":
            argv = ["/bin/sh", "-c", argv[0]]
        argv = [local_executable(argv[0]), *argv[1:]]
        done = subprocess.run(  # noqa: S603
            as_kartu_user(argv), env=self.env, cwd=self.cwd, capture_output=True, timeout=timeout
        )
        return done.returncode == 0


def as_kartu_user(argv: list[str]) -> list[str]:
    """``argv`` run as the image's uid when the tests run as root (as here); as another user,
    as that user (directories are then made unwritable by their mode alone).

    The interpreter here may sit under /root (mode 0700), which that uid could not even read:
    it keeps CAP_DAC_READ_SEARCH (read files, search directories) and no other capability, so
    every write is checked as for an ordinary uid 10001."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop root in these tests"
    return [
        setpriv,
        f"--reuid={KARTU_UID}",
        f"--regid={KARTU_GID}",
        "--clear-groups",
        "--no-new-privs",
        "--bounding-set=-all,+dac_read_search",
        "--inh-caps=-all,+dac_read_search",
        "--ambient-caps=+dac_read_search",
        "--",
        *argv,
    ]


def local_executable(name: str) -> str:
    if name in ("python", "python3"):
        return sys.executable
    return shutil.which(name, path=f"{VENV_BIN}:{os.environ.get('PATH', '')}") or name


def wait_healthy(running: Running, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(
                f"{running.name} exited ({running.process.returncode}) before it was healthy:\n"
                f"{running.output()}"
            )
        if running.run.check_health():
            return
        # Each check is a new interpreter: on two cores, asking too often slows the services.
        time.sleep(0.5)
    raise AssertionError(f"{running.name} not healthy after {timeout:.0f} s:\n{running.output()}")


def wait_exit(running: Running, timeout: float = 20.0) -> int:
    try:
        return running.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{running.name} still runs: {running.output()}") from None


def stop_all(processes: list[Running]) -> None:
    """SIGTERM to all (graceful, as ``docker compose down``), then wait; SIGKILL stragglers."""
    alive = [each for each in processes if each.process.poll() is None]
    for each in alive:
        os.killpg(each.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for each in alive:
        try:
            each.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(each.process.pid, signal.SIGKILL)
            each.process.wait(timeout=5)


class Host:
    """The stand-in for one compose project: directories, ports and service addresses."""

    def __init__(self, compose: dict, image: Image, base: Path) -> None:
        self.compose = compose
        self.image = image
        self.base = base
        base.chmod(0o755)  # the service's user must reach its directories inside
        # service name -> "host:port" of its stand-in, by container port
        self.addresses: dict[tuple[str, int], str] = {}
        self.ports: dict[str, dict[int, int]] = {}
        for name, service in compose["services"].items():
            listened = [_container_port(p) for p in service.get("ports", [])]
            listened += [int(p) for p in service.get("expose", [])]
            self.ports[name] = {port: free_port() for port in listened}
            for port, local in self.ports[name].items():
                self.addresses[(name, port)] = f"127.0.0.1:{local}"
        # The image's working directory: root's (here: not the service user's), read-only.
        self.workdir = self.directory("workdir", writable=False)

    def point(self, service: str, port: int, address: str) -> None:
        """``service:port`` is served at ``address`` (a stand-in started by the test)."""
        self.addresses[(service, port)] = address

    def directory(self, name: str, *, writable: bool) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        path.chmod(0o700 if writable else 0o555)
        if writable and os.geteuid() == 0:
            os.chown(path, KARTU_UID, KARTU_GID)
        return path

    def rewrite(self, value: str, listen: Mapping[int, int]) -> str:
        """Compose host names to local addresses; a port this service listens on to its own."""
        for (service, port), address in self.addresses.items():
            value = re.sub(rf"\b{re.escape(service)}:{port}\b", address, value)
        if value.isdigit() and int(value) in listen:
            return str(listen[int(value)])
        return value

    def service(
        self,
        name: str,
        *,
        environment: Mapping[str, str] | None = None,
        data_writable: bool = True,
    ) -> ServiceRun:
        service = self.compose["services"][name]
        listen = self.ports[name]
        paths: dict[str, Path] = {}
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            if source.startswith((".", "/")):
                paths[target] = self.copied_config(ROOT / source, listen)
            else:
                paths[target] = self.directory(source, writable=data_writable)
        kartu = service.get("image") == self.compose["services"]["worker"]["image"]
        if kartu:
            if "/data" not in paths:  # the image's own dir: read-only without a volume
                paths["/data"] = self.directory("image-data", writable=False)
            paths[self.image.workdir] = self.workdir
            env = {k: v for k, v in self.image.env.items() if k != "PATH"}
        else:  # another image (admin-tools): its user's home, nothing of Kartu's image
            env = {"HOME": str(self.directory("home", writable=False))}
        given = service.get("environment", {}) if environment is None else environment
        env.update({k: str(v) for k, v in given.items()})
        env = {k: self.rewrite(_mapped(v, paths), listen) for k, v in env.items()}
        env["PATH"] = f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
        env["PYTHONPATH"] = str(ROOT)

        command = [_mapped(arg, paths) for arg in _as_list(service.get("command"))]
        entrypoint = _as_list(service.get("entrypoint"))
        argv = [*entrypoint, *command]
        argv[0] = local_executable(argv[0])
        check = service.get("healthcheck", {}).get("test")
        log_fd, log_path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=self.base)
        os.close(log_fd)
        return ServiceRun(name, argv, env, self.workdir, check, Path(log_path), listen, paths)

    def copied_config(self, source: Path, listen: Mapping[int, int]) -> Path:
        """A bind-mounted config folder: copied, with compose host names made local."""
        target = Path(tempfile.mkdtemp(prefix="config-", dir=self.base))
        shutil.copytree(source, target, dirs_exist_ok=True)
        for path in [target, *target.rglob("*")]:
            if path.is_file():
                path.write_text(self.rewrite(path.read_text(), listen))
                path.chmod(0o644)
            else:
                path.chmod(0o755)
        return target


def _container_port(spec: str | int) -> int:
    return int(str(spec).rsplit(":", 1)[-1].split("/")[0])


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else list(value)


def _mapped(value: str, paths: Mapping[str, Path]) -> str:
    for target, local in sorted(paths.items(), key=lambda item: -len(item[0])):
        if value == target or value.startswith(target + "/"):
            return str(local) + value[len(target) :]
    return value


def kartu_services(compose: dict) -> Iterator[str]:
    kartu_image = compose["services"]["worker"]["image"]
    for name, service in compose["services"].items():
        if service.get("image") == kartu_image:
            yield name
