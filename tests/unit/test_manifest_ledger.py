"""ManifestLedger: one PUT per manifest by digest, and no PUT of a manifest while an index
listing it goes in (a fake client records which PUTs overlapped)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest

from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.registry.manifests import ManifestLedger
from imgmirror.transport.client import ManifestPut, RegistryClient

IMAGE = b'{"schemaVersion":2,"mediaType":"%s","config":{},"layers":[]}' % (
    mediatypes.OCI_MANIFEST.encode()
)


def index_of(*children: bytes) -> bytes:
    entries = [
        {"mediaType": mediatypes.OCI_MANIFEST, "digest": str(Digest.of(c)), "size": len(c)}
        for c in children
    ]
    doc = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}
    return json.dumps(doc).encode()


class FakeClient:
    """Counts PUTs; each takes ``hold`` seconds; records PUTs of a digest that overlapped
    the PUT of an index listing it."""

    registry = "reg.example"

    def __init__(self, hold: float = 0.05) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.puts: list[tuple[str, str]] = []
        self.running: list[tuple[Digest, tuple[Digest, ...]]] = []
        self.overlaps: list[str] = []
        self.peak = 0

    def store_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> ManifestPut:
        digest = Digest.of(raw)
        children = tuple(Digest.parse(m["digest"]) for m in json.loads(raw).get("manifests", []))
        with self.lock:
            for other, listed in self.running:
                if digest in listed or other in children:
                    self.overlaps.append(f"{ref} beside {other}")
            entry = (digest, children)
            self.running.append(entry)
            self.peak = max(self.peak, len(self.running))
            self.puts.append((repo, ref))
        time.sleep(self.hold)
        with self.lock:
            self.running.remove(entry)
        return ManifestPut(digest)


def ledger_with(client: FakeClient) -> tuple[ManifestLedger, RegistryClient]:
    return ManifestLedger(), cast(RegistryClient, client)


def test_a_manifest_by_digest_is_put_once_per_repository() -> None:
    fake = FakeClient()
    ledger, client = ledger_with(fake)
    ref = str(Digest.of(IMAGE))

    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda repo: ledger.store(client, repo, ref, IMAGE, mediatypes.OCI_MANIFEST),
                ["a"] * 6 + ["b"] * 2,
            )
        )

    assert sorted(fake.puts) == [("a", ref), ("b", ref)]
    assert {a.digest for a in answers} == {Digest.of(IMAGE)}


def test_tags_of_one_manifest_go_out_together() -> None:
    fake = FakeClient(hold=0.2)
    ledger, client = ledger_with(fake)

    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda tag: ledger.store(client, "a", tag, IMAGE, mediatypes.OCI_MANIFEST),
                [f"t{n}" for n in range(8)],
            )
        )

    assert len(fake.puts) == 8  # every tag is written
    assert fake.peak > 1  # side by side: a PUT by tag only waits for readers of its digest


def test_no_manifest_is_put_while_an_index_listing_it_goes_in() -> None:
    fake = FakeClient()
    ledger, client = ledger_with(fake)
    other = IMAGE.replace(b"[]}", b'[],"annotations":{"x":"y"}}')
    index = index_of(IMAGE, other)
    child = str(Digest.of(IMAGE))
    work = [
        ("t1", index, mediatypes.OCI_INDEX),
        (child, IMAGE, mediatypes.OCI_MANIFEST),
        ("t2", index, mediatypes.OCI_INDEX),
        ("child-tag", IMAGE, mediatypes.OCI_MANIFEST),
        ("t3", index, mediatypes.OCI_INDEX),
        (str(Digest.of(other)), other, mediatypes.OCI_MANIFEST),
    ] * 4

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda w: ledger.store(client, "a", *w), work))

    assert fake.overlaps == []
    assert fake.puts.count(("a", child)) <= 1  # none once a PUT by tag stored it
    assert fake.puts.count(("a", "child-tag")) == 4  # a tag always moves
    assert fake.puts.count(("a", "t1")) == 4


def test_a_failed_put_is_not_remembered() -> None:
    ledger = ManifestLedger()
    calls: list[str] = []

    class Flaky:
        registry = "reg.example"

        def store_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> ManifestPut:
            calls.append(ref)
            if len(calls) == 1:
                raise OSError("connection reset")
            return ManifestPut(Digest.of(raw))

    client = cast(RegistryClient, Flaky())
    ref = str(Digest.of(IMAGE))
    with pytest.raises(OSError, match="reset"):
        ledger.store(client, "a", ref, IMAGE, mediatypes.OCI_MANIFEST)
    ledger.store(client, "a", ref, IMAGE, mediatypes.OCI_MANIFEST)
    ledger.store(client, "a", ref, IMAGE, mediatypes.OCI_MANIFEST)
    assert calls == [ref, ref]
