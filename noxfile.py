"""Developer tasks: ``nox -s tests``, ``demo``, ``lint``, ``mypy``, ``docs``, ``bench``, ``soak``
(the documentation site)."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["lint", "mypy", "docs", "tests"]
nox.options.reuse_existing_virtualenvs = True

# Debian packages the integration tests and the demo drive for real.
SYSTEM_PACKAGES = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "dockerd": "docker.io",
    "gcc": "gcc",
    "time": "time",  # /usr/bin/time -f %M: peak RSS in the benchmarks and the fault suite
    "curl": "curl",  # the raw curl | curl baseline
    # the job's image: built with buildah on a Debian base made with mmdebstrap, run with podman
    "buildah": "buildah",
    "mmdebstrap": "mmdebstrap",
    "podman": "podman",
}


def ensure_system_packages(session: nox.Session, *tools: str) -> None:
    """Install missing Debian packages when running as root; otherwise say how."""
    missing = [SYSTEM_PACKAGES[t] for t in tools if shutil.which(t) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        session.error(f"missing tools; run: sudo apt-get install -y {' '.join(missing)}")
    session.run("apt-get", "update", "-qq", external=True)
    session.run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *missing,
        external=True,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, against real registries, skopeo and a Docker engine."""
    ensure_system_packages(
        session, "docker-registry", "skopeo", "dockerd", "gcc", "time", "buildah", "mmdebstrap",
        "podman",
    )  # fmt: skip
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The long fault soak (200+ faults over copy, save, push and sync, TLS and token auth,
    byte flips, SIGTERM) and the bigger sync race stress test: several minutes."""
    ensure_system_packages(session, "docker-registry", "skopeo", "time")
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "soak", "-s", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Mirror a pause image from a token-auth registry into a credentialed one."""
    ensure_system_packages(session, "docker-registry", "gcc")
    session.install("-e", ".[test]")
    session.run("python", "-m", "tests.demo")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def mypy(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site with the API reference, in strict mode (broken links fail)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    """Time imgmirror against skopeo on local registries (docs/benchmarks.md) and, as root,
    50 ms away over TLS in a network namespace, copies and syncs (docs/benchmarks-latency.md)."""
    ensure_system_packages(session, "docker-registry", "skopeo", "time", "curl")
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
    session.run("python", "-m", "benchmarks.syncbench")  # the sync section, after the rest
    session.run("python", "-m", "benchmarks.syncjob")  # reports on a no-op, a 429 storm
    session.run("python", "-m", "benchmarks.librss")  # RSS across 40 library copies
    session.run("python", "-m", "benchmarks.findimages")  # recall over published manifests
    if os.geteuid() == 0:  # the latency lab needs a network namespace
        session.run("python", "-m", "benchmarks.latency")
        session.run("python", "-m", "benchmarks.synclatency")
    else:
        session.warn("not root: skipping the latency scenario (python -m benchmarks.latency)")
