"""Run one command the way a user would and measure it: wall time and peak RSS.

Every timed command runs under ``/usr/bin/time -f "%M"`` (GNU time: the peak resident set size
of the command in KiB, written to a side file), while the wall time is taken here around the
whole process, start-up included. Failures raise :class:`CommandFailed` with the command's
stderr, so a broken run never turns into a number.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FLOOR_IMPORTS",
    "CommandFailed",
    "Run",
    "Samples",
    "imgmirror_argv",
    "imgmirror_has_command",
    "remove_skopeo_cache",
    "run_timed",
    "skopeo_argv",
    "startup_floor",
    "user_env",
]

GNU_TIME = "/usr/bin/time"
COMMAND_TIMEOUT = 600.0

#: Where skopeo (containers/image) keeps the blob-info cache that lets it mount blobs it has
#: seen elsewhere; removed before cold rounds so that neither tool can skip an upload.
SKOPEO_CACHES = (
    Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),
    Path.home() / ".local/share/containers/cache/blob-info-cache-v1.boltdb",
)


class CommandFailed(RuntimeError):
    """A benchmarked command exited non-zero."""


@dataclass(frozen=True)
class Run:
    """One finished command."""

    seconds: float
    peak_rss_kib: int
    stdout: str


@dataclass
class Samples:
    """The runs of one tool in one scenario."""

    runs: list[Run] = field(default_factory=list)

    def add(self, run: Run) -> Run:
        self.runs.append(run)
        return run

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_rss_mib(self) -> float:
        return max(r.peak_rss_kib for r in self.runs) / 1024

    def __bool__(self) -> bool:
        return bool(self.runs)


def run_timed(argv: Sequence[str], *, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to completion under GNU time; wall seconds, peak RSS and stdout."""
    if not Path(GNU_TIME).exists():
        raise CommandFailed(f"{GNU_TIME} is missing: apt-get install time")
    fd, rss_file = tempfile.mkstemp(prefix="imgmirror-bench-rss-")
    os.close(fd)
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", rss_file, *argv],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env=env if env is not None else user_env(),
            check=False,
        )
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise CommandFailed(
                f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.strip()[-3000:]}"
            )
        rss_text = Path(rss_file).read_text().strip().splitlines()
        peak = int(rss_text[-1]) if rss_text else 0
        return Run(seconds, peak, proc.stdout)
    finally:
        os.unlink(rss_file)


def user_env() -> dict[str, str]:
    """The environment of a user's shell: bytecode caching on (as after ``pip install``).

    ``PYTHONDONTWRITEBYTECODE`` (set in some CI and sandbox shells) would make every run
    compile imgmirror from source, which no installed copy does.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: What every imgmirror command starts with and no Python program on the design card's
#: libraries can skip: the interpreter and the imports of typer, httpx (with its httpcore
#: transport), attrs and PyYAML, nothing of imgmirror.
FLOOR_IMPORTS = "import typer, httpx, attrs, yaml, httpcore._sync.connection_pool"


def startup_floor(runs: int = 5) -> float:
    """Median wall seconds of a fresh interpreter that only imports the design card's
    libraries: how fast this machine starts Python right now (it varies with the host)."""
    return statistics.median(
        run_timed([sys.executable, "-c", FLOOR_IMPORTS]).seconds for _ in range(runs)
    )


def imgmirror_argv(*args: str) -> list[str]:
    """The imgmirror CLI as a user starts it, in a fresh interpreter."""
    return [sys.executable, "-m", "imgmirror", *args]


def skopeo_argv(policy: Path, *args: str) -> list[str]:
    """skopeo with a permissive signature policy (so /etc/containers does not matter)."""
    exe = shutil.which("skopeo")
    if exe is None:
        raise CommandFailed("skopeo is missing: apt-get install skopeo")
    return [exe, "--policy", str(policy), *args]


def remove_skopeo_cache() -> None:
    """Forget every blob location skopeo learnt in earlier runs."""
    for path in SKOPEO_CACHES:
        path.unlink(missing_ok=True)


def imgmirror_has_command(name: str) -> bool:
    """Whether this checkout's CLI has subcommand ``name`` (save and push arrive later)."""
    proc = subprocess.run(
        imgmirror_argv(name, "--help"), capture_output=True, text=True, check=False, env=user_env()
    )
    return proc.returncode == 0
