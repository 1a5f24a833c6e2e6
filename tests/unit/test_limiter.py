"""The per-registry limiter: AIMD concurrency, the shared pause, the pull quota (pure, a fake
clock), and a connection consulting it (a mock transport answering 429 with Retry-After)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from imgmirror.errors import QuotaExhausted
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.limiter import RateLimitPolicy, RegistryLimiter, counts_as_pull
from imgmirror.transport.meter import RequestTally, metering
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import RetryPolicy

MANIFEST = "https://r.io/v2/app/manifests/1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_limit_halves_concurrency_once_per_episode_and_it_grows_back():
    clock = Clock()
    limiter = RegistryLimiter("r.io", RateLimitPolicy(max_concurrency=16), clock=clock)
    limiter.observe(429, {}, 2.0)
    assert limiter.limit == 8
    limiter.observe(429, {}, 2.0)  # the same storm, answers still arriving: no second cut
    assert limiter.limit == 8
    clock.now += 3
    limiter.observe(429, {}, None)
    assert limiter.limit == 4
    for _ in range(10):  # about one more per round of `limit` answers
        limiter.observe(200, {}, None)
    assert limiter.limit == 6
    for _ in range(500):
        limiter.observe(200, {}, None)
    assert limiter.limit == 16  # never above the ceiling
    stats = limiter.stats()
    assert (stats.rate_limited, stats.lowest_concurrency) == (3, 4)


def test_a_503_counts_only_with_retry_after():
    limiter = RegistryLimiter("r.io", RateLimitPolicy(max_concurrency=8))
    limiter.observe(503, {}, None)
    assert limiter.limit == 8
    limiter.observe(503, {}, 1.0)
    assert limiter.limit == 4


def test_every_request_waits_out_the_pause_and_the_wait_is_counted():
    limiter = RegistryLimiter("r.io", RateLimitPolicy(max_concurrency=4))
    limiter.observe(429, {}, 0.3)
    started = time.monotonic()
    with limiter.slot("HEAD", MANIFEST) as waited:
        pass
    assert time.monotonic() - started >= 0.25
    assert waited >= 0.25
    assert limiter.stats().paused_seconds >= 0.25


def test_at_most_limit_requests_at_once():
    limiter = RegistryLimiter("r.io", RateLimitPolicy(max_concurrency=2))
    inside, most, lock = 0, 0, threading.Lock()

    def one() -> None:
        nonlocal inside, most
        with limiter.slot("GET", "https://r.io/v2/app/blobs/x"):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= most <= 2
    assert limiter.stats().requests == 8


def test_only_manifest_gets_count_against_the_quota():
    assert counts_as_pull("GET", MANIFEST)
    assert not counts_as_pull("HEAD", MANIFEST)
    assert not counts_as_pull("GET", "https://r.io/v2/app/blobs/sha256:0")


def test_the_quota_stops_the_run_when_told_to():
    limiter = RegistryLimiter("docker.io", RateLimitPolicy(on_quota="stop", reserve=1))
    limiter.observe(200, {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "2;w=21600"},
                    None)  # fmt: skip
    with limiter.slot("GET", MANIFEST):
        pass  # 2 left: one may go, leaving the reserve
    with limiter.slot("HEAD", MANIFEST):
        pass  # a HEAD is not a pull
    used_up = r"docker.io: the pull quota is used up: 1 of 100"
    with pytest.raises(QuotaExhausted, match=used_up), limiter.slot("GET", MANIFEST):
        pass
    assert limiter.stats().quota_remaining == 1
    assert limiter.stats().quota_limit == 100


def test_the_quota_paces_pulls_when_waiting():
    limiter = RegistryLimiter("docker.io", RateLimitPolicy(on_quota="wait"))
    limiter.observe(200, {"ratelimit-limit": "20;w=2", "ratelimit-remaining": "0;w=2"}, None)
    started = time.monotonic()
    for _ in range(2):  # one pull per window/limit = 0.1 s
        with limiter.slot("GET", MANIFEST):
            pass
    assert time.monotonic() - started >= 0.18
    limiter.observe(200, {"ratelimit-limit": "20;w=2", "ratelimit-remaining": "19;w=2"}, None)
    limiter.clock = Clock()  # a clock that stands still: any wait would never end
    with limiter.slot("GET", MANIFEST) as waited:
        pass
    assert waited == 0  # the quota came back: no more pacing


def test_a_connection_counts_backs_off_and_retries_through_its_limiter():
    answers = iter([429, 429, 200])
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        if request.url.path == "/v2/":
            return httpx.Response(200)
        status = next(answers)
        headers = {"Retry-After": "0"} if status == 429 else {"Docker-Content-Digest": "x"}
        return httpx.Response(status, headers=headers)

    limiter = RegistryLimiter("r.io", RateLimitPolicy(max_concurrency=8, pause=0.0))
    options = ClientOptions(retry=RetryPolicy(attempts=5, backoff=0.01))
    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = RegistryClient("r.io", options=options, http=http, limiter=limiter)
    tally = RequestTally()
    with metering(tally):
        response = client.request("HEAD", MANIFEST, scopes=[])
    assert response.status_code == 200
    assert (tally.requests, tally.rate_limited) == (3, 2)
    assert limiter.stats().rate_limited == 2
    assert limiter.limit == 2  # Retry-After: 0 ends each episode at once: halved twice
