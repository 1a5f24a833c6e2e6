"""The fault proxy itself: replayable decisions, each fault kind as a client meets it, TLS
ended by the proxy, and faults for one client only."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.support.certs import TestPKI
from tests.support.faultproxy import FAULT_KINDS, FaultPlan, FaultProxy
from tests.support.faultrun import proxy_for
from tests.support.registry import Registry
from tests.support.seed import RegistryClient


def test_decisions_depend_only_on_the_seed_and_the_request() -> None:
    keys = [("GET /v2/a/blobs/sha256:1", n) for n in range(200)]
    first = [FaultPlan(seed=5, rate=0.3).decide(k, n) for k, n in keys]
    again = [FaultPlan(seed=5, rate=0.3).decide(k, n) for k, n in keys]
    other = [FaultPlan(seed=6, rate=0.3).decide(k, n) for k, n in keys]
    assert first == again
    assert first != other
    assert 30 < sum(d is not None for d in first) < 90
    assert {d[0] for d in first if d} == set(FAULT_KINDS)


def _proxy(registry: Registry, kind: str) -> FaultProxy:
    return FaultProxy(("127.0.0.1", registry.port), FaultPlan(seed=1, rate=1.0, kinds=(kind,)))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_status_faults_answer_like_a_registry(anon_registry: Registry, method: str) -> None:
    with _proxy(anon_registry, "429-retry-after") as proxy, httpx.Client() as client:
        for _ in range(2):  # the connection stays usable
            response = client.request(method, f"http://{proxy.host}/v2/")
            assert response.status_code == 429
            assert response.headers["retry-after"] == "1"
            assert (b"TOOMANYREQUESTS" in response.content) == (method == "GET")
        assert [f.kind for f in proxy.injected] == ["429-retry-after"] * 2


@pytest.mark.parametrize("kind", ["reset-response", "truncate", "reset-request"])
def test_broken_replies_break_the_client(anon_registry: Registry, kind: str) -> None:
    with _proxy(anon_registry, kind) as proxy, httpx.Client() as client:
        with pytest.raises(httpx.TransportError):
            client.get(f"http://{proxy.host}/v2/nothing/manifests/latest")
        assert [f.kind for f in proxy.injected] == [kind]


@pytest.mark.parametrize("kind", ["stall", "drip"])
def test_slow_replies_arrive_whole(anon_registry: Registry, kind: str) -> None:
    with _proxy(anon_registry, kind) as proxy, httpx.Client() as client:
        response = client.get(f"http://{proxy.host}/v2/nothing/manifests/latest")
        assert response.status_code == 404
        assert b"MANIFEST_UNKNOWN" in response.content or b"NAME_UNKNOWN" in response.content
        assert [f.kind for f in proxy.injected] == [kind]


def test_a_flip_changes_one_byte_of_a_blob_and_nothing_else(anon_registry: Registry) -> None:
    data = os.urandom(4096)
    with RegistryClient(anon_registry) as seeder:
        digest = seeder.push_blob("flip/blob", data)
    with _proxy(anon_registry, "flip") as proxy, httpx.Client() as client:
        flipped = client.get(f"http://{proxy.host}/v2/flip/blob/blobs/{digest}").content
        listed = client.get(f"http://{proxy.host}/v2/flip/blob/tags/list")  # not by digest
    assert len(flipped) == len(data)
    assert sum(a != b for a, b in zip(flipped, data, strict=True)) == 1
    assert listed.status_code == 404  # relayed as the registry answered
    assert [f.kind for f in proxy.injected] == ["flip"]


def test_a_tls_proxy_ends_tls_and_faults_inside_it(
    tls_registry: Registry, test_pki: TestPKI
) -> None:
    plan = FaultPlan(seed=1, rate=1.0, kinds=("503",), agent="imgmirror/")
    proxy = proxy_for(tls_registry, plan, test_pki)
    try:
        with httpx.Client(verify=tls_registry.ssl_context()) as client:
            ours = client.get(f"https://{proxy.host}/v2/", headers={"User-Agent": "imgmirror/1"})
            theirs = client.get(f"https://{proxy.host}/v2/")  # another client: no fault
        with httpx.Client() as plain:
            refused = plain.get(f"http://{proxy.host}/v2/")
    finally:
        proxy.stop()
    assert (ours.status_code, theirs.status_code) == (503, 200)
    assert refused.status_code == 400  # plain HTTP to a TLS port, as Go's server answers
    assert [f.kind for f in proxy.injected] == ["503"]
