"""sync carries referrers: the ``referrers:`` key per entry and in ``defaults:``, and the
``--referrers`` option, against the real registry (fallback and cosign tags)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import imgmirror.api.sync
from imgmirror.errors import InvalidSyncFile
from tests.support.referrer_world import (
    REPO,
    check_signature,
    fallback,
    manifest_at,
    seed_world,
    tags_at,
)
from tests.support.registry import RegistryFactory
from tests.support.tools import run_cli

pytestmark = [pytest.mark.registry]


def test_referrers_key_per_entry_and_in_defaults(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=True)
    path = tmp_path / "sync.yaml"
    path.write_text(
        f"defaults:\n  to: {dst.host}/m/\n  referrers: sig\n"
        f"images:\n"
        f"  - {src.ref(REPO, '3.9')}\n"
        f"  - image: {src.ref(REPO, '3.9')}\n    to: {dst.host}/full/pause:3.9\n"
        f"    referrers: [sbom, att]\n"
        f"  - image: {src.ref(REPO, '3.9')}\n    to: {dst.host}/none/pause:3.9\n"
        f"    referrers: false\n"
    )
    report = imgmirror.api.sync.sync(path)
    assert report.failed == 0, report.results
    check_signature(dst, world, world.image.digest, repo="m/mirror/pause")
    assert fallback(world.image.digest) not in tags_at(dst, "m/mirror/pause")  # no sbom, att
    full = json.loads(manifest_at(dst, fallback(world.image.digest), "full/pause"))
    assert {m["digest"] for m in full["manifests"]} == {world.sbom.digest, world.att.digest}
    assert tags_at(dst, "full/pause") == {"3.9", fallback(world.image.digest)}  # no signature
    assert tags_at(dst, "none/pause") == {"3.9"}
    # --referrers replaces defaults.referrers; an entry's own key still wins
    again = run_cli("sync", str(path), "--referrers", "--json")
    assert again.returncode == 0, again.stderr
    assert fallback(world.sbom.digest) in tags_at(dst, "m/mirror/pause")  # sbom and its sig
    assert world.sig_tag not in tags_at(dst, "full/pause")
    assert tags_at(dst, "none/pause") == {"3.9"}


def test_unknown_referrer_type_refused_before_anything_is_contacted(tmp_path: Path) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(
        "defaults: {to: 127.0.0.1:9/m/}\nimages:\n  - image: 127.0.0.1:9/a:1\n"
        "    referrers: [sig, signatures]\n"
    )
    with pytest.raises(InvalidSyncFile, match=r"sync.yaml:4: referrers: unknown artifact type"):
        imgmirror.api.sync.sync(path)
    done = run_cli("sync", str(path))
    assert done.returncode == 1
    assert done.stderr.startswith(f"imgmirror: error: {path}:4: referrers: unknown artifact type")
    assert "Traceback" not in done.stderr
    done = run_cli("sync", str(path), "--referrers=sbm")
    assert done.returncode == 1
    assert "unknown artifact type 'sbm'" in done.stderr
