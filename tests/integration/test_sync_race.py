"""The sync race stress test (issue 17): images sharing blobs and manifests, mirrored cold
with 8 jobs into the real distribution registry, again and again.

Distribution rewrites a repository's link to a blob on every mount or upload into it, and a
manifest's link on every ``PUT`` of it, even when the link is there; its filesystem driver
truncates the file and writes it again, so a manifest ``PUT`` reading the link at that moment
is refused (``400 DIGEST_INVALID ... MANIFEST_BLOB_UNKNOWN``). A run that writes what another
image of the same run is pushing a manifest over fails for nothing: the blob engine must not
write into a repository it has seen holding the blob (registry/blobs.py), and the manifest
ledger must not rewrite a child while an index listing it goes in (registry/manifests.py).

Three scenarios, each repeated into a fresh destination prefix:

- a sync of the shared world (tests/support/sharedworld.py: repositories on common bases,
  aliased tags, multi-platform indexes, signatures carried; ``all-tags``, ``semver``,
  ``tags-regex`` and ``tags`` entries, and a second repository for the same images);
- one :class:`~imgmirror.session.Session` shared by many threads copying all of it at once;
- a cold sync of many tags of one multi-platform index.

Every round must succeed, every destination tag must hold the source digest with all its
children and blobs (through the registry API), and the last round is read back with skopeo.
``-m soak`` runs each with more rounds and tags.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import imgmirror
from imgmirror.errors import ImgmirrorError
from imgmirror.session import Session
from imgmirror.syncing.report import SyncReport
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.sharedworld import SharedWorld, seed_shared_world, single_image_tags
from tests.support.tools import skopeo_copy, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

JOBS = 8


@dataclass(frozen=True)
class Scale:
    sync_rounds: int
    session_rounds: int
    threads: int
    tags: int
    tag_rounds: int


DEFAULT = Scale(sync_rounds=6, session_rounds=4, threads=16, tags=120, tag_rounds=3)
SOAK = Scale(sync_rounds=25, session_rounds=12, threads=32, tags=500, tag_rounds=4)


@dataclass
class Ends:
    source: Registry
    dest: Registry
    world: SharedWorld


@pytest.fixture
def ends(registry_factory: RegistryFactory) -> Ends:
    source = registry_factory(name="src", log_level="warn")
    dest = registry_factory(name="dst", log_level="warn")
    return Ends(source, dest, seed_shared_world(source, signed=True))


def holds(registry: Registry, expected: dict[str, str]) -> None:
    """Every ``repo:tag`` holds its digest, with every child manifest and blob."""
    with RegistryClient(registry) as client:
        for ref, digest in sorted(expected.items()):
            repo, tag = ref.rsplit(":", 1)
            assert client.assert_complete(repo, tag) == digest, f"{ref}: digest differs"


def read_back(registry: Registry, expected: dict[str, str], tmp_path: Path) -> None:
    """skopeo reads each destination tag's digest, and copies one index whole."""
    for ref, digest in sorted(expected.items()):
        assert skopeo_digest(f"{registry.host}/{ref}", registry) == digest, ref
    index = next(ref for ref in sorted(expected) if "/multi:" in ref)
    skopeo_copy(f"{registry.host}/{index}", f"dir:{tmp_path / 'index'}", src_registry=registry)


def failures(report: SyncReport) -> list[str]:
    return [f"{r.destination}: {r.error}" for r in report.results if r.action == "failed"]


def run_syncs(ends: Ends, tmp_path: Path, rounds: int) -> None:
    failed: dict[int, list[str]] = {}
    expected: dict[str, str] = {}
    for n in range(rounds):
        path = tmp_path / f"sync-{n}.yaml"
        expected = ends.world.sync_file(path, f"{ends.dest.host}/s{n}", referrers=True)
        report = imgmirror.sync(path, jobs=JOBS)
        if failures(report):
            failed[n] = failures(report)
            continue
        # a cosign tag an all-tags entry selects may land first as the referrer of its image
        carried = (".sig", ".att", ".sbom")
        assert all(
            r.action == "copied" or (r.action == "unchanged" and r.destination.endswith(carried))
            for r in report.results
        ), [(r.destination, r.action) for r in report.results if r.action != "copied"]
        holds(ends.dest, expected)
    assert not failed, f"{len(failed)} of {rounds} syncs failed: {failed}"
    read_back(ends.dest, expected, tmp_path)


def test_syncs_of_images_sharing_blobs_never_race(ends: Ends, tmp_path: Path) -> None:
    run_syncs(ends, tmp_path, DEFAULT.sync_rounds)


def copy_everything(ends: Ends, prefix: str, threads: int) -> tuple[dict[str, str], list[str]]:
    """Every tag of the world, and again into ``again/``, copied at once through one
    session from ``threads`` threads; returns what must be there and the failures."""
    expected: dict[str, str] = {}
    for name, tags in ends.world.tags.items():
        for tag, digest in tags.items():
            for where in (name, f"again/{name}"):
                expected[f"{prefix}/{where}:{tag}"] = digest
    src = ends.source.host

    def copy(ref: str) -> str | None:
        repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
        source = f"{src}/{ends.world.source_repo(repo.removeprefix('again/'))}:{tag}"
        try:
            session.copy(source, f"{ends.dest.host}/{ref}", referrers=True)
        except ImgmirrorError as exc:
            return f"{ref}: {exc}"
        return None

    with Session(jobs=JOBS) as session, ThreadPoolExecutor(threads) as pool:
        failed = [f for f in pool.map(copy, sorted(expected)) if f is not None]
    return expected, failed


def run_shared_sessions(ends: Ends, scale: Scale) -> None:
    failed: dict[int, list[str]] = {}
    for n in range(scale.session_rounds):
        expected, errors = copy_everything(ends, f"t{n}", scale.threads)
        if errors:
            failed[n] = errors
            continue
        holds(ends.dest, expected)
    assert not failed, f"{len(failed)} of {scale.session_rounds} rounds failed: {failed}"


def test_one_session_shared_by_many_threads_never_races(ends: Ends) -> None:
    run_shared_sessions(ends, DEFAULT)


def run_many_tags(registry_factory: RegistryFactory, tmp_path: Path, scale: Scale) -> None:
    source = registry_factory(name="src", log_level="warn")
    dest = registry_factory(name="dst", log_level="warn")
    digest = single_image_tags(source, "one/index", scale.tags)
    failed: dict[int, int] = {}
    for n in range(scale.tag_rounds):
        path = tmp_path / f"tags-{n}.yaml"
        path.write_text(
            f"defaults:\n  to: {dest.host}/c{n}/\n"
            f"images:\n  - repository: {source.host}/one/index\n    all-tags: true\n"
        )
        report = imgmirror.sync(path, jobs=JOBS)
        assert len(report.results) == scale.tags
        if failures(report):
            failed[n] = len(failures(report))
            continue
        holds(dest, {f"c{n}/one/index:t{i}": digest for i in range(scale.tags)})
    assert not failed, f"images failed per round (of {scale.tags}): {failed}"
    last = f"{dest.host}/c{scale.tag_rounds - 1}/one/index"
    assert skopeo_digest(f"{last}:t{scale.tags - 1}", dest) == digest


def test_a_cold_sync_of_many_tags_of_one_index_never_races(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    run_many_tags(registry_factory, tmp_path, DEFAULT)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_soak_sync_races(ends: Ends, registry_factory: RegistryFactory, tmp_path: Path) -> None:
    run_syncs(ends, tmp_path, SOAK.sync_rounds)
    run_shared_sessions(ends, SOAK)
    run_many_tags(registry_factory, tmp_path, SOAK)
