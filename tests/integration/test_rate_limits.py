"""Rate limits: a real registry behind the fault proxy acting as a throttled public registry
(a token bucket answering 429 with Retry-After, Docker Hub's pull quota and headers).

The stress test (hot path: transport and sync scheduling): images sharing layers, 8 jobs, the
scenario repeated (a first sync, tags moved, a no-op), every round finishing with every image
and no failure while the proxy refused dozens of requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import imgmirror.api.sync
from tests.support.faultproxy import FaultPlan, FaultProxy
from tests.support.images import Image, make_image, make_layer
from tests.support.ratelimit import RegistryLimits
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient as Seeder
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

NO_FAULTS = FaultPlan(seed=0, rate=0.0)
SHARED = make_layer({"etc/shared": b"a layer every image has\n" * 2000})


def image(n: int, round_: int) -> Image:
    own = make_layer({"etc/own": f"image {n} round {round_}\n".encode()})
    return make_image([SHARED, own], marker=f"{n}-{round_}")


def seed_round(src: Registry, count: int, round_: int) -> dict[str, str]:
    digests = {}
    with Seeder(src) as client:
        for n in range(count):
            digests[f"app{n % 4}:{n}"] = client.push_image(f"app{n % 4}", image(n, round_), str(n))
    return digests


def write(tmp_path: Path, host: str, dst: Registry, names: list[str]) -> Path:
    path = tmp_path / "mirror.yaml"
    entries = "".join(f"  - {host}/{name}\n" for name in names)
    path.write_text(f"defaults: {{to: {dst.host}/m}}\nimages:\n{entries}")
    return path


def test_a_429_storm_slows_the_whole_run_and_every_image_arrives(
    registry_factory: RegistryFactory, tmp_path
):
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    limits = RegistryLimits(rate=30.0, burst=6, retry_after=1)
    with FaultProxy(("127.0.0.1", src.port), NO_FAULTS, limits) as proxy:
        names = list(seed_round(src, 12, 0))
        path = write(tmp_path, proxy.host, dst, names)
        for round_ in range(3):  # copied, then every tag moved, then a no-op
            if round_ == 1:
                expected = seed_round(src, 12, 1)
            refused_before = limits.refused["throttled"]

            report = imgmirror.api.sync.sync(path, jobs=8)

            assert report.ok, [r.error for r in report.results if r.error]
            states = {r.action for r in report.results}
            assert states == ({"copied"}, {"moved"}, {"unchanged"})[round_]
            assert len(report.results) == 12
            stats = report.registries[proxy.host]
            assert stats.rate_limited == limits.refused["throttled"] - refused_before
            if round_ < 2:
                assert stats.rate_limited > 0  # the storm happened
                assert stats.lowest_concurrency < 16  # and the run slowed down for it
                assert stats.paused_seconds > 0
    for name, digest in expected.items():
        assert skopeo_digest(f"{dst.host}/m/{name}", dst) == digest


def test_docker_hub_quota_stop_or_wait_and_the_noop_costs_no_pull(
    registry_factory: RegistryFactory, tmp_path
):
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    limits = RegistryLimits(quota=6, window=2)
    with FaultProxy(("127.0.0.1", src.port), NO_FAULTS, limits) as proxy:
        names = list(seed_round(src, 8, 0))
        path = write(tmp_path, proxy.host, dst, names)
        report = tmp_path / "report.json"

        stopped = run_cli("sync", str(path), "--jobs", "1", "--on-quota", "stop",
                          "--report", str(report))  # fmt: skip

        assert stopped.returncode == 1
        assert f"{proxy.host}: the pull quota is used up: 0 of 6 pulls left" in stopped.stderr
        assert "Traceback" not in stopped.stderr
        document = json.loads(report.read_text())
        assert document["registries"][proxy.host]["quota_limit"] == 6
        done = [i for i in document["images"] if i["state"] == "copied"]
        assert 0 < len(done) < 8  # what fitted in the quota arrived; the run then stopped
        assert limits.refused["quota"] == 0  # it stopped before the registry had to refuse

        waited = run_cli("sync", str(path), "--jobs", "4", "--json")

        assert waited.returncode == 0, waited.stderr
        summary = json.loads(waited.stdout.splitlines()[-1])
        assert summary["failed"] == 0
        assert summary["copied"] + summary["unchanged"] == 8
        pulls = limits.pulls
        noop = run_cli("sync", str(path), "--json")
        assert noop.returncode == 0, noop.stderr
        assert json.loads(noop.stdout.splitlines()[-1])["unchanged"] == 8
        assert limits.pulls == pulls  # HEADs only: Docker Hub would count nothing
