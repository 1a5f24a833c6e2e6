"""Shared fixtures: test PKI, real registries (+ token server), test images, Docker engine.

Everything listens on loopback only and is stopped at teardown. See ``tests/support/``.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.support.certs import TestPKI, make_pki
from tests.support.docker import DockerEngine, Loaded
from tests.support.images import build_pause_binary
from tests.support.nodelab import NodeLab, node_lab
from tests.support.registry import Registry, RegistryFactory
from tests.support.tokenserver import TokenServer
from tests.support.tools import require_tool

REGISTRY_FIXTURES = frozenset(
    {
        "registry_factory",
        "anon_registry",
        "token_registry",
        "basic_registry",
        "relative_registry",
        "tls_registry",
        "mtls_registry",
    }
)
DOCKER_FIXTURES = frozenset({"docker_engine"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag tests by the fixtures they use, so ``-m "not docker"`` etc. work."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & REGISTRY_FIXTURES:
            item.add_marker(pytest.mark.registry)
        if names & DOCKER_FIXTURES:
            item.add_marker(pytest.mark.docker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the log tails of the registries/dockerd the test used."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        registries: list[Registry] = []
        for value in funcargs.values():
            if isinstance(value, Registry):
                registries.append(value)
            elif isinstance(value, RegistryFactory):
                registries.extend(value.registries)
            elif isinstance(value, DockerEngine) and value.started:
                report.sections.append(("dockerd log (tail)", value.log_tail()))
        seen: set[int] = set()
        for registry in registries:
            if id(registry) in seen:
                continue
            seen.add(id(registry))
            report.sections.append((f"{registry.describe()} log (tail)", registry.log_tail()))
    return report


# -- PKI and registries ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    """CA, server cert (127.0.0.1, ::1, localhost), client cert, token-signing keys."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def registry_factory(tmp_path: Path, test_pki: TestPKI) -> Iterator[RegistryFactory]:
    """``registry_factory(auth=None|"htpasswd"|"token", tls=..., tls_client_ca=...,
    relativeurls=..., users=..., anonymous_pull=..., token_expires_in=..., ...) -> Registry``.

    Every registry (and token server) it started is stopped at teardown.
    """
    factory = RegistryFactory(tmp_path / "registries", test_pki)
    try:
        yield factory
    finally:
        factory.stop_all()


# A registry starts in ~30 ms here, so the convenience registries are function-scoped: every
# test gets empty storage and a fresh token-request log.


@pytest.fixture
def anon_registry(registry_factory: RegistryFactory) -> Registry:
    """Plain HTTP, no auth: anyone can push and pull."""
    return registry_factory(name="anon")


@pytest.fixture
def token_registry(registry_factory: RegistryFactory) -> Registry:
    """Plain HTTP, Bearer token auth: anonymous pull; push needs ``pusher:pushpass``.

    The token server is ``token_registry.token_server``.
    """
    return registry_factory(name="token", auth="token", anonymous_pull=True)


@pytest.fixture
def token_server(token_registry: Registry) -> TokenServer:
    """The token server of :func:`token_registry`."""
    assert token_registry.token_server is not None
    return token_registry.token_server


@pytest.fixture
def basic_registry(registry_factory: RegistryFactory) -> Registry:
    """HTTPS (test CA, ``basic_registry.ca_file``) with htpasswd: everything needs
    ``alice:secret``."""
    return registry_factory(name="basic", auth="htpasswd", tls=True)


@pytest.fixture
def relative_registry(registry_factory: RegistryFactory) -> Registry:
    """Plain HTTP, anonymous, ``http.relativeurls: true`` (relative ``Location`` headers)."""
    return registry_factory(name="relative", relativeurls=True)


@pytest.fixture
def tls_registry(registry_factory: RegistryFactory) -> Registry:
    """HTTPS with the test CA, anonymous."""
    return registry_factory(name="tls", tls=True)


@pytest.fixture
def mtls_registry(registry_factory: RegistryFactory) -> Registry:
    """HTTPS requiring a client certificate signed by the test CA, anonymous."""
    return registry_factory(name="mtls", tls_client_ca=True)


_REPO_CHARS = re.compile(r"[^a-z0-9]+")


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A valid repository path derived from the test name (``test/<name>``)."""
    name = _REPO_CHARS.sub("-", request.node.name.lower()).strip("-")[:80].strip("-")
    return f"test/{name or 'repo'}"


# -- images ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pause_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static ``pause`` binary for the host (compiled once per session with gcc)."""
    require_tool("gcc")
    return build_pause_binary(tmp_path_factory.mktemp("pause"))


# -- docker ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A Docker engine: the running one if ``/var/run/docker.sock`` answers, else a
    ``dockerd --storage-driver=vfs --iptables=false --bridge=none`` started (as root) for the
    session and stopped at its end. Helpers: ``.docker(*args)``, ``.ctr(*args)`` (namespace
    k8s.io on dockerd's containerd), ``.load(path)``, ``.run_detached(image)``..."""
    engine = DockerEngine(tmp_path_factory.mktemp("docker"))
    try:
        engine.ensure_running()
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def loaded(docker_engine: DockerEngine) -> Iterator[Loaded]:
    state = Loaded(docker_engine)
    try:
        yield state
    finally:
        state.cleanup()


# -- a node's network --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nodelab() -> Iterator[NodeLab]:
    """A network namespace where registry.k8s.io:443, registry.corp:5000 (htpasswd) and
    plain.corp:5002 (HTTP) are real registries under those names, and containerd can run
    (``nodelab.containerd(...)``); see ``tests/support/nodelab.py``. Removed at the end."""
    with node_lab() as lab:
        yield lab
