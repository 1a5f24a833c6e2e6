"""save --referrers stores signatures, SBOMs and attestations in the archive's OCI layout;
push restores them (fallback tag and cosign tags on the real registry, the referrers API
through the front); docker load and ctr import ignore them."""

from __future__ import annotations

import io
import json
import secrets
import tarfile
from pathlib import Path

import pytest

import imgmirror
from imgmirror.errors import ArchiveError, ReferrerError
from tests.support.docker import Loaded
from tests.support.referrer_world import (
    REPO,
    World,
    check_signature,
    fallback,
    manifest_at,
    seed_world,
    tags_at,
)
from tests.support.referrers_front import ReferrersFront
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.tools import run_cli

SUBJECT = "dev.imgmirror.referrer.subject"


def _index(path: Path) -> dict[str, object]:
    with tarfile.open(path) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        doc: dict[str, object] = json.load(member)
    return doc


def _check_fallback_indexes(dst: Registry, world: World) -> None:
    image_index = json.loads(manifest_at(dst, fallback(world.image.digest)))
    assert {m["digest"] for m in image_index["manifests"]} == {world.sbom.digest, world.att.digest}
    sbom_index = json.loads(manifest_at(dst, fallback(world.sbom.digest)))
    assert [m["digest"] for m in sbom_index["manifests"]] == [world.sbom_sig.digest]


@pytest.mark.parametrize("name", ["signed.tar", "signed.tar.zst"])
def test_save_then_push_restores_them_by_fallback_and_cosign_tags(
    registry_factory: RegistryFactory, tmp_path: Path, name: str
) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=True)
    out = tmp_path / name
    saved = imgmirror.save([src.ref(REPO, "3.9")], out, referrers=True, platforms="linux/amd64")
    assert set(saved.referrers) == world.referrers
    if name.endswith(".tar"):
        entries = _index(out)["manifests"]
        assert isinstance(entries, list)
        image, pinned, *referrers = entries
        assert image["digest"] == pinned["digest"] == world.image.digest  # tag, digest name
        assert {e["digest"] for e in referrers} == world.referrers
        for entry in referrers:  # unnamed, so loaders leave them alone
            assert set(entry["annotations"]) <= {SUBJECT, "dev.imgmirror.referrer.tag"}
            assert entry["artifactType"]
    pushed = imgmirror.push(out, dst.ref(REPO, "3.9"))
    assert [(i.name, i.digest) for i in pushed.images] == [
        (dst.ref(REPO, "3.9"), world.image.digest)
    ]
    assert pushed.referrers is not None
    assert {str(r.digest) for r in pushed.referrers.copied} == world.referrers
    check_signature(dst, world, world.image.digest)
    _check_fallback_indexes(dst, world)
    for artifact in (world.sbom, world.att, world.sbom_sig):
        assert manifest_at(dst, artifact.digest) == artifact.manifest


def test_round_trip_through_the_referrers_api(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    source = ReferrersFront(registry_factory(name="api-src"), page_size=1)
    destination = ReferrersFront(registry_factory(name="api-dst"))
    try:
        world = seed_world(source.as_registry(), fallback_tags=False)
        out = tmp_path / "signed.tar.gz"
        done = run_cli("save", source.ref(REPO, "3.9"), "-o", str(out), "--referrers",
                       "--platform", "linux/amd64")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "referrers: 4 saved, 0 left behind" in done.stdout
        done = run_cli("push", str(out), destination.ref(REPO, "3.9"), "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["referrers"]["fallback_tags"] == []  # the registry indexed them
        assert {r["digest"] for r in result["referrers"]["copied"]} == world.referrers
        listed = destination.referrers[(REPO, world.image.digest)]
        assert {e["digest"] for e in listed} == {world.sbom.digest, world.att.digest}
        assert tags_at(destination.upstream) == {"3.9", world.sig_tag}
        check_signature(destination.as_registry(), world, world.image.digest)
    finally:
        source.stop()
        destination.stop()


def test_docker_load_and_ctr_import_ignore_the_referrers(
    anon_registry: Registry,
    loaded: Loaded,
    tmp_path: Path,
) -> None:
    world = seed_world(anon_registry, fallback_tags=True)
    name = f"imgmirror-test/signed-{secrets.token_hex(4)}:v1"
    out = tmp_path / "signed.tar"
    imgmirror.save([f"{anon_registry.ref(REPO, '3.9')}={name}"], out, referrers=True,
                   platforms="linux/amd64")  # fmt: skip
    assert loaded.load(out, name) == [f"Loaded image: {name}"]
    before = set(loaded.engine.ctr_images())
    loaded.ctr_import(out, f"docker.io/{name}")
    assert loaded.ctr_digest(f"docker.io/{name}") == world.image.digest
    new = set(loaded.engine.ctr_images()) - before  # other tests may share the engine
    assert f"docker.io/{name}" in new
    hexes = [digest.split(":")[1] for digest in world.referrers]
    assert not [n for n in new if any(h in n for h in hexes)]  # no image made of a referrer


def test_filter_and_without_referrers(registry_factory: RegistryFactory, tmp_path: Path) -> None:
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    world = seed_world(src, fallback_tags=True)
    out = tmp_path / "signed.tar"
    imgmirror.save([src.ref(REPO, "3.9")], out, referrers=True, platforms="linux/amd64")
    listed = run_cli("inspect", str(out), "--referrers")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{out}: 1 image\n")
    from_registry = run_cli("inspect", src.ref(REPO, "3.9"), "--referrers").stdout.splitlines()
    tree = from_registry[from_registry.index("  referrers:") :]
    assert listed.stdout.splitlines()[-len(tree) :] == tree  # the same tree as at the source
    digests = run_cli("digest", str(out)).stdout.split()
    assert digests[0] == world.image.digest
    assert len(digests) == 2  # one image: the referrers are not images
    pushed = imgmirror.push(out, dst.ref(REPO, "3.9"), referrers="sig")
    assert pushed.referrers is not None
    assert [str(r.digest) for r in pushed.referrers.copied] == [world.sig.digest]
    assert tags_at(dst) == {"3.9", world.sig_tag}
    plain = tmp_path / "plain.tar"
    saved = imgmirror.save([src.ref(REPO, "3.9")], plain, platforms="linux/amd64")
    assert saved.referrers == ()
    assert len(_index(plain)["manifests"]) == 2  # type: ignore[arg-type]  # tag, digest name
    other = registry_factory(name="other")
    result = imgmirror.push(plain, other.ref(REPO, "3.9"))
    assert result.referrers is None
    assert tags_at(other) == {"3.9"}
    with pytest.raises(ArchiveError, match="legacy format cannot hold referrers"):
        imgmirror.save([src.ref(REPO, "3.9")], tmp_path / "l.tar", format="legacy", referrers=True)


def _without(archive: Path, digest: str, out: Path) -> None:
    """A copy of ``archive`` without the blob ``digest``."""
    with tarfile.open(archive) as tar, tarfile.open(out, "w") as new:
        for member in tar.getmembers():
            if member.name == f"blobs/sha256/{digest.split(':')[1]}":
                continue
            data = tar.extractfile(member) if member.isfile() else None
            new.addfile(member, io.BytesIO(data.read()) if data else None)


@pytest.fixture
def broken(registry_factory: RegistryFactory, tmp_path: Path) -> tuple[World, Path]:
    src = registry_factory(name="src")
    world = seed_world(src, fallback_tags=True)
    out = tmp_path / "signed.tar"
    imgmirror.save([src.ref(REPO, "3.9")], out, referrers=True, platforms="linux/amd64")
    _without(out, world.att.layers[0].digest, tmp_path / "broken.tar")
    return world, tmp_path / "broken.tar"


def test_referrer_blob_missing_from_the_archive(
    broken: tuple[World, Path], registry_factory: RegistryFactory
) -> None:
    world, archive = broken
    dst = registry_factory(name="dst")
    with pytest.raises(ArchiveError, match=f"referrer {world.att.digest} .* is incomplete"):
        imgmirror.push(archive, dst.ref(REPO, "3.9"))
    done = run_cli("push", str(archive), dst.ref(REPO, "3.9"))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"imgmirror: error: referrer {world.att.digest}")
    assert "nothing was pushed" in line
    assert tags_at(dst) == set()
    with RegistryClient(dst) as client:
        assert not client.manifest_exists(REPO, world.sig.digest)
    done = run_cli("push", str(archive), dst.ref(REPO, "3.9"), "--referrers-optional", "--json")
    assert done.returncode == 0, done.stderr
    assert f"imgmirror: warning: referrer {world.att.digest}" in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {r["digest"] for r in result["referrers"]["copied"]} == world.referrers - {
        world.att.digest
    }
    index = json.loads(manifest_at(dst, fallback(world.image.digest)))
    assert [m["digest"] for m in index["manifests"]] == [world.sbom.digest]
    check_signature(dst, world, world.image.digest)


def test_save_with_a_referrer_blob_missing_at_the_source(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    src = registry_factory(name="src")
    world = seed_world(src, fallback_tags=True)
    layer = world.att.layers[0].digest
    with RegistryClient(src) as client:
        client._check(client.request("DELETE", f"/v2/{REPO}/blobs/{layer}", push=True), 202)
    out = tmp_path / "signed.tar"
    with pytest.raises(ReferrerError, match=f"referrer {world.att.digest}.*was not saved"):
        imgmirror.save([src.ref(REPO, "3.9")], out, referrers=True, platforms="linux/amd64")
    assert not out.exists()
    saved = imgmirror.save([src.ref(REPO, "3.9")], out, referrers=True, referrers_optional=True,
                           platforms="linux/amd64")  # fmt: skip
    assert set(saved.referrers) == world.referrers - {world.att.digest}
    (failure,) = saved.referrers_failed
    assert layer in failure
