"""A Docker engine for tests: reuse a running dockerd, or start one (root only) and stop it.

The started daemon uses ``--storage-driver=vfs --iptables=false --bridge=none`` so it works
inside containers/VMs without overlayfs or netfilter; containers must run with
``--network none`` (or ``--net=host``). The docker CLI negotiates the API version with older
daemons by itself (v28 client -> 20.10 daemon uses API 1.41), so ``DOCKER_API_VERSION`` is not
needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .registry import tail
from .tools import missing, require_tool, stop_process

__all__ = ["CONTAINERD_SOCKET", "DOCKER_SOCKET", "DockerEngine", "DockerError", "Loaded"]

DOCKER_SOCKET = Path("/var/run/docker.sock")
CONTAINERD_SOCKET = Path("/var/run/docker/containerd/containerd.sock")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class DockerError(AssertionError):
    def __init__(self, argv: Sequence[str], proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.strip()}\n"
            f"{proc.stdout.strip()}".rstrip()
        )
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


def _ping(socket_path: Path, timeout: float = 2.0) -> bool:
    """True if a Docker engine answers ``GET /_ping`` on ``socket_path``.

    A raw socket, closed on every path: httpx's UDS transport leaks the socket when the
    connection is refused, which happens while a freshly started dockerd is coming up.
    """
    if not socket_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64)
    except OSError:
        return False
    return status_line.split(b" ")[1:2] == [b"200"]


class DockerEngine:
    """Handle on a Docker engine (and the containerd it runs)."""

    def __init__(
        self,
        work_dir: Path,
        *,
        socket_path: Path = DOCKER_SOCKET,
        containerd_socket: Path = CONTAINERD_SOCKET,
    ) -> None:
        self.work_dir = work_dir
        self.socket_path = socket_path
        self.containerd_socket = containerd_socket
        self.log_path = work_dir / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False
        """True if this handle started dockerd (and so will stop it)."""
        self._log_file: IO[bytes] | None = None
        self.config_dir = work_dir / "docker-config"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config.json").write_text("{}")

    # -- lifecycle -------------------------------------------------------------------------

    def ensure_running(self) -> DockerEngine:
        """Use a daemon that answers on the socket, else start one (needs root)."""
        require_tool("docker")
        if _ping(self.socket_path):
            return self
        dockerd = require_tool("dockerd")
        if os.geteuid() != 0:
            missing("no Docker engine is running and starting dockerd needs root")
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [dockerd, "--storage-driver=vfs", "--iptables=false", "--bridge=none"],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started = True
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"dockerd exited with {code}; log tail:\n{self.log_tail()}")
            if _ping(self.socket_path, timeout=1.0):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer within {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop dockerd if (and only if) this handle started it. Idempotent."""
        proc, self.process = self.process, None
        stop_process(proc, STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines) if self.started else "<dockerd not started by tests>"

    # -- commands ----------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = f"unix://{self.socket_path}"
        env["DOCKER_CONFIG"] = str(self.config_dir)
        env.pop("DOCKER_CONTEXT", None)
        return env

    def _run(
        self, argv: list[str], *, check: bool, input: bytes | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        result = subprocess.CompletedProcess(
            argv,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        if check and proc.returncode != 0:
            raise DockerError(argv, result)
        return result

    def docker(
        self, *args: str, check: bool = True, input: bytes | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine (isolated empty ``DOCKER_CONFIG``)."""
        return self._run([require_tool("docker"), *args], check=check, input=input, timeout=timeout)

    def ctr(
        self,
        *args: str,
        namespace: str = "k8s.io",
        check: bool = True,
        input: bytes | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``ctr --address <dockerd's containerd> -n k8s.io ARGS``."""
        return self._run(
            [
                require_tool("ctr"),
                "--address",
                str(self.containerd_socket),
                "-n",
                namespace,
                *args,
            ],
            check=check,
            input=input,
            timeout=timeout,
        )

    # -- conveniences ----------------------------------------------------------------------

    def load(self, archive: Path) -> list[str]:
        """``docker load -i ARCHIVE``; returns the ``Loaded image...`` lines."""
        out = self.docker("load", "-i", str(archive)).stdout
        return [line for line in out.splitlines() if line.startswith("Loaded image")]

    def image_ids(self, *refs: str) -> dict[str, str]:
        """``{ref: image id}`` via ``docker image inspect``."""
        return {
            ref: self.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
            for ref in refs
        }

    def remove_images(self, *refs: str) -> None:
        for ref in refs:
            self.docker("image", "rm", "-f", ref, check=False)

    def run_detached(self, image: str, *args: str, name: str | None = None) -> str:
        """``docker run -d --network none [--name NAME] IMAGE ARGS``; returns the container id."""
        argv = ["run", "-d", "--network", "none"]
        if name:
            argv += ["--name", name]
        return self.docker(*argv, image, *args).stdout.strip()

    def is_running(self, container: str) -> bool:
        result = self.docker("inspect", "-f", "{{.State.Running}}", container, check=False)
        return result.returncode == 0 and result.stdout.strip() == "true"

    def remove_container(self, container: str) -> None:
        self.docker("rm", "-f", container, check=False)

    def ctr_import(self, archive: Path, *extra: str) -> str:
        """``ctr -n k8s.io images import [EXTRA] ARCHIVE``; returns stdout."""
        return self.ctr("images", "import", *extra, str(archive)).stdout

    def ctr_images(self) -> list[str]:
        return self.ctr("images", "ls", "-q").stdout.split()


class Loaded:
    """Names loaded into docker / containerd during a test, removed at teardown."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self.docker: list[str] = []
        self.ctr: list[str] = []
        self.containers: list[str] = []

    def load(self, archive: Path, *names: str) -> list[str]:
        self.docker += names
        return self.engine.load(archive)

    def run(self, name: str) -> None:
        """``docker run -d`` the pause binary and check it stays up."""
        container = self.engine.run_detached(name)
        self.containers.append(container)
        assert self.engine.is_running(container)

    def ctr_import(self, archive: Path, *names: str) -> str:
        self.ctr += names
        return self.engine.ctr_import(archive)

    def ctr_digest(self, name: str) -> str:
        """The target digest ``ctr images ls`` shows for ``name``."""
        out = self.engine.ctr("images", "ls", f"name=={name}").stdout.splitlines()
        assert len(out) == 2, out
        return next(f for f in out[1].split() if f.startswith("sha256:"))

    def cleanup(self) -> None:
        for container in self.containers:
            self.engine.remove_container(container)
        self.engine.remove_images(*self.docker)
        for name in self.ctr:
            self.engine.ctr("images", "rm", name, check=False)
