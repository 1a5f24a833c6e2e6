"""sync as the nightly job: --check (exit 0/2/1, HEADs only, nothing written), --report
(against the shipped JSON Schema) and --metrics (Prometheus' own parser), the operator's
output (moved old -> new, unchanged counted, file order, file:line, a heartbeat when piped),
--timeout; all against two real registries with token auth."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imgmirror.syncing.report import report_schema
from tests.support.accesslog import log_offset, requests_since
from tests.support.images import make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import seed
from tests.support.tools import run_cli

pytestmark = [pytest.mark.registry]

PUSHER = ("pusher", "pushpass")
CREDS = ("--dest-creds", "pusher:pushpass")


@pytest.fixture
def ends(registry_factory: RegistryFactory) -> tuple[Registry, Registry]:
    return (
        registry_factory(auth="token", name="src"),
        registry_factory(auth="token", name="dst", anonymous_pull=False),
    )


def put(registry: Registry, repo: str, tag: str, marker: str = "") -> str:
    return seed(registry, repo, tag, make_image(marker=marker or f"{repo}:{tag}"), creds=PUSHER)


def valid(path: Path) -> dict[str, object]:
    document = json.loads(path.read_text())
    jsonschema.Draft202012Validator(
        report_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    return dict(document)


def metrics(path: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


def sync_file(tmp_path: Path, src: Registry, dst: Registry, names: list[str]) -> Path:
    path = tmp_path / "mirror.yaml"
    lines = "".join(f"  - {src.host}/{name}\n" for name in names)
    path.write_text(f"defaults: {{to: {dst.host}/m}}\nimages:\n{lines}")
    return path


def test_check_in_sync_drift_and_failure(ends, tmp_path):
    src, dst = ends
    for repo in ("a", "b", "c"):
        put(src, repo, "1")
    path = sync_file(tmp_path, src, dst, ["a:1", "b:1", "c:1"])
    assert run_cli("sync", str(path), *CREDS).returncode == 0
    moved_to = put(src, "b", "1", marker="rebuilt")
    put(src, "d", "1")
    path = sync_file(tmp_path, src, dst, ["a:1", "b:1", "c:1", "d:1"])
    marks = (log_offset(src), log_offset(dst))
    report = tmp_path / "check.json"

    drift = run_cli("sync", str(path), *CREDS, "--check", "--report", str(report))

    assert drift.returncode == 2, drift.stderr
    lines = drift.stdout.splitlines()
    old_b = next(i for i in valid(report)["images"] if i["source"].endswith("/b:1"))  # type: ignore[attr-defined]
    assert lines[0] == (
        f"would move {src.host}/b:1 -> {dst.host}/m/b:1 {old_b['old_digest']} -> {moved_to}"
    )
    assert lines[1].startswith(f"would copy {src.host}/d:1 -> {dst.host}/m/d:1 sha256:")
    assert lines[2].startswith("sync --check: out of sync: 1 missing, 1 moved at the destination;")
    seen = requests_since(src, marks[0]) + requests_since(dst, marks[1])
    assert {(q.method, q.kind) for q in seen} <= {("HEAD", "manifests"), ("GET", "ping")}
    document = valid(report)
    assert (document["mode"], document["in_sync"], document["ok"]) == ("check", False, True)
    assert run_cli("sync", str(path), *CREDS).returncode == 0
    again = run_cli("sync", str(path), *CREDS, "--check")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("sync --check: in sync; 4 in sync, 0 failed")
    path.write_text(path.read_text() + f"  - {src.host}/gone:1\n")
    failing = run_cli("sync", str(path), *CREDS, "--check")
    assert failing.returncode == 1
    assert f"missing   {src.host}/gone:1 -> {dst.host}/m/gone:1: " in failing.stdout
    assert f"({path}:7)" in failing.stderr


def test_reports_and_metrics_of_every_run_the_noop_costing_nothing_more(ends, tmp_path):
    src, dst = ends
    names = [f"app:{i}" for i in range(6)]
    for name in names:
        put(src, *name.split(":"))
    path = sync_file(tmp_path, src, dst, names)
    out = tmp_path / "out"
    out.mkdir()
    report, prom = out / "r.json", out / "sync.prom"
    outputs = ("--report", str(report), "--metrics", str(prom), "--shard", "0/1")

    first = run_cli("sync", str(path), *CREDS, *outputs)
    assert first.returncode == 0, first.stderr
    document = valid(report)
    assert [i["state"] for i in document["images"]] == ["copied"] * 6  # type: ignore[attr-defined]
    assert all(i["requests"] > 2 and i["bytes"] > 0 for i in document["images"])  # type: ignore[attr-defined]
    assert document["shard"] == "0/1"
    marks = (log_offset(src), log_offset(dst))
    bare = run_cli("sync", str(path), *CREDS)
    plain = Counter(
        (q.method, q.kind) for q in requests_since(src, marks[0]) + requests_since(dst, marks[1])
    )
    marks = (log_offset(src), log_offset(dst))

    noop = run_cli("sync", str(path), *CREDS, *outputs)

    assert bare.returncode == noop.returncode == 0
    with_outputs = Counter(
        (q.method, q.kind) for q in requests_since(src, marks[0]) + requests_since(dst, marks[1])
    )
    assert with_outputs == plain  # writing the report and metrics asks no registry anything
    assert plain[("HEAD", "manifests")] == 12
    document = valid(report)
    assert document["totals"]["states"]["unchanged"] == 6  # type: ignore[index]
    per_image = [i["requests"] for i in document["images"]]  # type: ignore[attr-defined]
    assert sum(per_image) == 12 + 2  # a HEAD at each end, and each registry's /v2/ once
    assert document["totals"]["requests"] == sum(with_outputs.values())  # type: ignore[index]
    got = metrics(prom)
    shard = ("shard", "0/1")
    assert got[("imgmirror_sync_images", frozenset({shard, ("state", "unchanged")}))] == 6
    assert got[("imgmirror_sync_success", frozenset({shard}))] == 1
    assert got[("imgmirror_sync_requests", frozenset({shard, ("registry", dst.host)}))] == 6 + 1
    assert sorted(os.listdir(out)) == ["r.json", "sync.prom"]  # no temporary file left


def test_failures_are_reported_too_and_the_last_success_is_kept(ends, tmp_path):
    src, dst = ends
    put(src, "a", "1")
    path = sync_file(tmp_path, src, dst, ["a:1"])
    prom, report = tmp_path / "sync.prom", tmp_path / "r.json"
    assert run_cli("sync", str(path), *CREDS, "--metrics", str(prom)).returncode == 0
    success = metrics(prom)[("imgmirror_sync_last_success_timestamp_seconds",
                             frozenset({("shard", "all")}))]  # fmt: skip
    path = sync_file(tmp_path, src, dst, ["a:1", "nope:1"])

    failed = run_cli("sync", str(path), *CREDS, "--metrics", str(prom), "--report", str(report))

    assert failed.returncode == 1
    got = metrics(prom)
    assert got[("imgmirror_sync_success", frozenset({("shard", "all")}))] == 0
    assert got[("imgmirror_sync_last_success_timestamp_seconds",
                frozenset({("shard", "all")}))] == success  # fmt: skip
    states = [(i["state"], i["error"] is not None) for i in valid(report)["images"]]  # type: ignore[attr-defined]
    assert states == [("unchanged", False), ("missing-at-source", True)]


def test_operator_output_moved_unchanged_order_origin_heartbeat(ends, tmp_path):
    src, dst = ends
    for repo in ("big", "small", "same", "moving"):
        put(src, repo, "1")
    names = ["big:1", "small:1", "same:1", "moving:1"]
    path = sync_file(tmp_path, src, dst, names)
    assert run_cli("sync", str(path), *CREDS).returncode == 0
    old = put(src, "moving", "1")  # same content: digest unchanged so far
    new = put(src, "moving", "1", marker="moved")
    put(src, "big", "1", marker="big again")
    env = {**os.environ, "IMGMIRROR_PROGRESS_INTERVAL": "0.01"}

    done = run_cli("sync", str(path), *CREDS, "--jobs", "4", "--timeout", "20", env=env)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == [f"{src.host}/big:1",
                                                        f"{src.host}/moving:1"]  # fmt: skip
    moved = f"moved     {src.host}/moving:1 -> {dst.host}/m/moving:1 {old} -> {new} ("
    assert lines[1].startswith(moved)

    assert lines[-1].startswith("sync: 0 copied, 2 moved, 2 unchanged, 0 failed;")
    assert "imgmirror: sync: " in done.stderr  # the heartbeat, piped
    verbose = run_cli("sync", str(path), *CREDS, "-v")
    assert [line.split()[0] for line in verbose.stdout.splitlines()[:-1]] == ["unchanged"] * 4
    assert [line.split()[1] for line in verbose.stdout.splitlines()[:-1]] == [
        f"{src.host}/{name}" for name in names
    ]  # file order
    helped = run_cli("sync", "--help", env={**os.environ, "COLUMNS": "200"})
    assert "One JSON object per image on stdout (in file order" in helped.stdout
    assert "--timeout" in helped.stdout
