"""The fault proxy itself: replayable decisions, and each fault kind as a client meets it."""

from __future__ import annotations

import httpx
import pytest

from tests.support.faultproxy import FAULT_KINDS, FaultPlan, FaultProxy
from tests.support.registry import Registry


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
