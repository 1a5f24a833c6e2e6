"""sync under verification policies: per entry and in defaults, refusals in the report and
the exit status, and the decision cache that keeps a no-op nightly run as cheap as one
without a policy (request counts from the registries' access logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import imgmirror
from tests.support.accesslog import log_offset, requests_since
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.tools import run_cli
from tests.support.verify_world import assert_nothing_written, sig_tag, signed_image, write_key

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


def sync_file(path: Path, src: Registry, dst: Registry, body: str) -> Path:
    path.write_text(
        f"defaults:\n  to: {dst.host}/mirror/\n  verify:\n    keys: [cosign.pub]\n"
        f"images:\n{body.format(src=src.host)}"
    )
    return path


def test_entries_and_defaults_decide_per_image(registry_factory: RegistryFactory, tmp_path):
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    key = ec.generate_private_key(ec.SECP256R1())
    write_key(tmp_path, key)
    signed_image(src, "team/good", key, "good")
    bad = signed_image(src, "team/bad", None, "bad")
    signed_image(src, "team/free", None, "free")
    spec = sync_file(
        tmp_path / "sync.yaml", src, dst,
        "  - {src}/team/good:1.0\n  - {src}/team/bad:1.0\n"
        "  - image: {src}/team/free:1.0\n    verify: false\n",
    )  # fmt: skip
    report = imgmirror.sync(spec)
    actions = {r.source.split("/", 1)[1]: r.action for r in report.results}
    assert actions == {
        "team/good:1.0": "copied",
        "team/bad:1.0": "refused",
        "team/free:1.0": "copied",
    }
    # failed counts every result that fails the run, a refusal included; refused only those
    assert (report.refused, report.failed, report.ok) == (1, 1, False)
    good = next(r for r in report.results if "good" in r.source)
    assert good.verification is not None
    assert good.verification["accepted"] is True
    assert good.verification["signatures"][0]["by"].startswith(f"key {tmp_path}/cosign.pub")
    refused = next(r for r in report.results if "bad" in r.source)
    assert refused.error is not None
    assert "no valid signature of the image by an allowed signer" in refused.error
    assert_nothing_written(dst, "mirror/team/bad", bad)
    with RegistryClient(dst) as client:  # the signature travelled with the accepted image
        digest = good.digest
        assert digest is not None
        assert client.manifest_exists("mirror/team/good", sig_tag(digest))
    # the command line: exit 3 (refused, nothing else failed), one line per refusal
    cli = run_cli("sync", str(spec), "--json")
    assert cli.returncode == 3, cli.stderr
    lines = [json.loads(line) for line in cli.stdout.splitlines()]
    assert lines[-1]["refused"] == 1
    by_source = {line["source"]: line for line in lines[:-1]}
    assert by_source[f"{src.host}/team/bad:1.0"]["action"] == "refused"
    assert by_source[f"{src.host}/team/good:1.0"]["verification"]["accepted"] is True
    assert "verification" not in by_source[f"{src.host}/team/free:1.0"]
    assert [line for line in cli.stderr.splitlines() if "refused" in line] == [
        f"imgmirror: error: {src.host}/team/bad:1.0: {refused.error} ({refused.origin})"
    ]
    text = run_cli("sync", str(spec))
    assert "1 refused" in text.stdout.splitlines()[-1]
    assert f"refused   {src.host}/team/bad:1.0 -> " in text.stdout


def _counts(src: Registry, dst: Registry, run) -> tuple[int, int]:
    before = log_offset(src), log_offset(dst)
    run()
    return len(requests_since(src, before[0])), len(requests_since(dst, before[1]))


def test_a_no_op_nightly_sync_costs_no_more_with_the_cache(
    registry_factory: RegistryFactory, tmp_path
):
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    key = ec.generate_private_key(ec.SECP256R1())
    write_key(tmp_path, key)
    names = [f"team/app{i}" for i in range(4)]
    for name in names:
        signed_image(src, name, key, name)
    body = "".join(f"  - {{src}}/{name}:1.0\n" for name in names)
    spec = sync_file(tmp_path / "sync.yaml", src, dst, body)
    plain = tmp_path / "plain.yaml"
    plain.write_text(spec.read_text().replace("  verify:\n    keys: [cosign.pub]\n", ""))
    cache = tmp_path / "state" / "verify-cache.json"
    first = imgmirror.sync(spec, verify_cache=str(cache))
    assert first.copied == len(names)
    assert cache.exists()
    baseline = _counts(src, dst, lambda: imgmirror.sync(plain))
    cached = _counts(src, dst, lambda: imgmirror.sync(spec, verify_cache=str(cache)))
    # at most one extra request per image; in fact none: the decision is in the cache
    assert cached == baseline
    report = imgmirror.sync(spec, verify_cache=str(cache))
    assert {r.action for r in report.results} == {"unchanged"}
    assert all(r.verification and r.verification["cached"] for r in report.results)
    # without the cache every unchanged image is verified again (signatures read)
    uncached = _counts(src, dst, lambda: imgmirror.sync(spec))
    assert uncached[0] > baseline[0] + len(names)
    # a changed policy (a second key) is a new policy: the cache does not answer for it
    other = ec.generate_private_key(ec.SECP256R1())
    spec.write_text(spec.read_text().replace("keys: [cosign.pub]", "keys: [cosign.pub, other.pub]"))
    write_key(tmp_path, other, "other.pub")
    changed = _counts(src, dst, lambda: imgmirror.sync(spec, verify_cache=str(cache)))
    assert changed[0] > baseline[0] + len(names)
    after = _counts(src, dst, lambda: imgmirror.sync(spec, verify_cache=str(cache)))
    assert after[0] <= baseline[0] + len(names)
