"""The job's image, built for real: a Debian base made with mmdebstrap, imported with podman,
and imgmirror's ``Containerfile`` built on it with buildah, all in a private container store.

No registry base image is reachable here, so :func:`debian_base` makes one from Debian
packages (``mmdebstrap --variant=minbase``, debootstrap's faster successor, with python3 and
its venv module; the packages come from the Debian mirror this machine's apt uses and are
kept in a cache directory across runs), and :func:`build_image` builds the Containerfile
with ``--network none``: the build installs imgmirror from its source and its dependencies
from a wheel folder in the context (:func:`build_context`), so it needs nothing from outside
once the wheels are there.

:class:`Store` runs ``podman`` and ``buildah`` against a storage root of its own (never the
machine's ``/var/lib/containers``), so parallel sessions and other tests do not share images.
``podman run`` needs explicit ``--ulimit`` values in this sandbox (runc may not raise a limit
to podman's defaults); :data:`RUN_LIMITS` holds them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .tools import require_root, require_tool

__all__ = [
    "BASE_PACKAGES",
    "BASE_TAG",
    "RUN_LIMITS",
    "ContainerError",
    "Store",
    "build_context",
    "build_image",
    "debian_base",
    "debian_mirror",
]

ROOT = Path(__file__).resolve().parents[2]
#: What the base holds on top of minbase: what the Containerfile's two stages need.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: The name the base is imported under.
BASE_TAG = "localhost/imgmirror-test-base:bookworm"
#: Limits runc can set here (podman's default nofile/nproc are above the sandbox's hard limits).
RUN_LIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
BUILD_TIMEOUT = 600
#: mmdebstrap's packages, kept across runs (``IMGMIRROR_TEST_CACHE`` moves it).
CACHE = Path(os.environ.get("IMGMIRROR_TEST_CACHE") or Path.home() / ".cache" / "imgmirror-tests")


class ContainerError(AssertionError):
    """podman, buildah or mmdebstrap failed (an AssertionError: a test failure)."""


def _run(argv: Sequence[str], *, timeout: float = BUILD_TIMEOUT, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        list(argv), input=stdin, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-4000:] or done.stdout.decode(errors="replace")
        raise ContainerError(f"{' '.join(argv[:4])} … failed ({done.returncode}):\n{tail}")
    return done.stdout.decode(errors="replace")


@dataclass(frozen=True)
class Store:
    """A private containers/storage: ``podman``/``buildah`` with ``--root``/``--runroot`` here."""

    root: Path
    driver: str = "overlay"

    @classmethod
    def at(cls, root: Path) -> Store:
        """A store under ``root``: overlay, or vfs where ``root`` is itself on overlayfs."""
        kind = subprocess.run(["stat", "-f", "-c", "%T", str(root)], capture_output=True,
                              text=True, check=False).stdout.strip()  # fmt: skip
        return cls(root, "vfs" if kind == "overlayfs" else "overlay")

    def _flags(self) -> list[str]:
        return [
            "--root", str(self.root / "storage"), "--runroot", str(self.root / "run"),
            "--storage-driver", self.driver,
        ]  # fmt: skip

    def podman(self, *args: str, timeout: float = BUILD_TIMEOUT, stdin: bytes | None = None) -> str:
        return _run([require_tool("podman"), *self._flags(), *args], timeout=timeout, stdin=stdin)

    def buildah(self, *args: str, timeout: float = BUILD_TIMEOUT) -> str:
        return _run([require_tool("buildah"), *self._flags(), *args], timeout=timeout)

    def run(self, image: str, *args: str, network: str = "none", extra: Sequence[str] = ()) -> str:
        """``podman run --rm`` of ``image`` with ``args`` (stdout); fails on a non-zero exit."""
        return self.podman(
            "run", "--rm", "--network", network, *RUN_LIMITS, *extra, image, *args, timeout=120
        )

    def run_status(
        self, image: str, *args: str, network: str = "none", extra: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        argv = [require_tool("podman"), *self._flags(), "run", "--rm", "--network", network,
                *RUN_LIMITS, *extra, image, *args]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    def reset(self) -> None:
        """Remove every container and image of this store (its mounts included)."""
        for tool in ("buildah", "podman"):
            path = shutil.which(tool)
            if path:
                args = ["rm", "--all"] if tool == "buildah" else ["system", "reset", "--force"]
                subprocess.run([path, *self._flags(), *args], capture_output=True, timeout=120,
                               check=False)  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


_URIS = re.compile(r"^URIs:\s*(\S+)", re.M)
_DEB_LINE = re.compile(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", re.M)


def debian_mirror(apt: Path = Path("/etc/apt")) -> str | None:
    """The Debian archive this machine's apt uses (the first main archive source), or None
    (mmdebstrap's default then)."""
    texts = [p.read_text() for p in sorted((apt / "sources.list.d").glob("*.sources"))]
    for text in texts:
        for uri in _URIS.findall(text):
            if not uri.rstrip("/").endswith("-security"):
                return str(uri)
    listing = apt / "sources.list"
    if listing.exists():
        for uri, suite in _DEB_LINE.findall(listing.read_text()):
            if "security" not in suite:
                return str(uri)
    return None


def debian_base(store: Store, work: Path, name: str = BASE_TAG) -> str:
    """A Debian bookworm minbase with python3, imported into ``store`` as ``name``.

    mmdebstrap (debootstrap's faster successor) writes the root file system as a tarball;
    dpkg runs with unsafe I/O (nothing here must survive a power cut) and leaves out
    documentation, manual pages and translations. The downloaded packages are kept in
    ``CACHE`` and used again by the next run.
    """
    require_root("mmdebstrap")
    tool = require_tool("mmdebstrap")
    cache = CACHE / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    archive = work / "rootfs.tar"
    argv = [
        tool, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
        "--dpkgopt=force-unsafe-io",
        *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")),
        "--skip=download/empty",
        "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives",
        f"--setup-hook=sync-in {cache} /var/cache/apt/archives",
        f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
        "bookworm", str(archive),
    ]  # fmt: skip
    mirror = debian_mirror()
    _run([*argv, mirror] if mirror else argv)
    store.podman("import", str(archive), name)
    archive.unlink()
    return name


def build_context(directory: Path) -> Path:
    """The files the Containerfile's build reads: the tracked package sources, the
    Containerfile and its ignore file, and ``wheels/`` (the dependencies and the build
    backend, so the build runs with ``--network none``)."""
    tracked = _run(["git", "-C", str(ROOT), "ls-files", "-z", "--", "pyproject.toml",
                    "README.md", "src", "Containerfile", ".dockerignore"])  # fmt: skip
    for name in filter(None, tracked.split("\0")):
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    wheels = directory / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
          "hatchling", str(directory)])  # fmt: skip
    for own in wheels.glob("imgmirror-*.whl"):
        own.unlink()  # the build installs imgmirror from src/, not from a wheel
    return directory


def build_image(store: Store, context: Path, base: str, tag: str, version: str) -> str:
    """``buildah bud`` of the Containerfile on ``base``, offline; returns ``tag``."""
    store.buildah(
        "bud", "--network", "none", "--layers=false",
        "--build-arg", f"BASE={base}", "--build-arg", "PIP_NO_INDEX=1",
        "--build-arg", "PIP_FIND_LINKS=/src/wheels", "--build-arg", f"VERSION={version}",
        "-f", str(context / "Containerfile"), "-t", tag, str(context),
    )  # fmt: skip
    return tag
