"""The blob engine against the real registry: mounts across repositories, refused mounts,
in-flight dedupe, the shared budget, counted outcomes, and the one-HEAD repeat copy.

Request counts come from the registry's access log.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

import imgmirror
from imgmirror.errors import NetworkError, TransferCancelled, VerificationError
from imgmirror.model.digest import Digest, verify_stream
from imgmirror.model.manifest import Descriptor
from imgmirror.model.reference import Reference
from imgmirror.ops.copy import copy_image
from imgmirror.progress import ProgressListener
from imgmirror.registry.blobs import BlobEngine, BlobJob, Opener
from imgmirror.session import Session
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.retry import RetryPolicy
from tests.support.images import Image, make_image, make_layer
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]


class Recorder(ProgressListener):
    """Records events; tracks how many transfers ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, object]] = []
        self.running = 0
        self.peak = 0

    def planned(self, blobs: object, verb: str) -> None:
        with self.lock:
            self.events.append(("planned", verb))

    def blob_started(self, digest: Digest, size: int) -> None:
        with self.lock:
            self.events.append(("started", digest))
            self.running += 1
            self.peak = max(self.peak, self.running)

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        with self.lock:
            if outcome not in {"skipped", "mounted"}:
                self.running -= 1
            self.events.append((outcome, digest))


def sharing_images(registry: Registry, count: int, base_size: int = 64 * 1024) -> list[Image]:
    """``count`` images at ``registry/src/i:1`` sharing one (incompressible) base layer."""
    base = make_layer({"base.bin": os.urandom(base_size)})
    images = []
    for i in range(count):
        own = make_layer({"own": f"image {i}\n".encode()})
        image = make_image([base, own], marker=f"share-{i}")
        seed(registry, f"src/{i}", "1", image)
        images.append(image)
    return images


def uploads_of(registry: Registry, digest: str, since: int = 0) -> int:
    """Completed uploads (closing PUT) of ``digest``."""
    return sum(
        1
        for method, path, _ in registry.requests()[since:]
        if method == "PUT" and "/blobs/uploads/" in path and digest.replace(":", "%3A") in path
    )


def test_shared_base_layer_is_mounted_from_the_first_repository(anon_registry, relative_registry):
    first, second = sharing_images(anon_registry, 2)
    base = first.layers[0].digest
    recorder = Recorder()

    with Session() as session:
        one = copy_image(
            session,
            Reference.parse(anon_registry.ref("src/0", "1")),
            Reference.parse(relative_registry.ref("one", "1")),
        )
        two = copy_image(
            session,
            Reference.parse(anon_registry.ref("src/1", "1")),
            Reference.parse(relative_registry.ref("two", "1")),
            progress=recorder,
        )

    assert (one.blobs_copied, one.blobs_mounted) == (3, 0)
    assert (two.blobs_copied, two.blobs_mounted, two.blobs_skipped) == (2, 1, 0)
    assert two.bytes_copied == sum(b.size for b in second.blobs if b.digest != base)
    assert ("mounted", Digest.parse(base)) in recorder.events
    assert recorder.events[0] == ("planned", "copy")
    assert uploads_of(relative_registry, base) == 1
    assert skopeo_digest(relative_registry.ref("two", "1"), relative_registry) == second.digest


def test_nothing_is_written_into_a_repository_known_to_hold_the_blob(
    anon_registry, relative_registry
):
    images = sharing_images(anon_registry, 3)

    def copy(session: Session, i: int, target: str) -> imgmirror.CopyResult:
        return copy_image(
            session,
            Reference.parse(anon_registry.ref(f"src/{i}", "1")),
            Reference.parse(relative_registry.ref("three" if i == 2 else f"r{i}", target)),
        )

    with Session() as session:
        copy(session, 0, "1")
        copy(session, 1, "1")  # its base layer is mounted from r0
        before = len(relative_registry.requests())
        new = copy(session, 2, "1")
        middle = len(relative_registry.requests())
        again = copy(session, 2, "2")  # a new tag for blobs the repository holds already
        seen = relative_registry.requests()
    first, second = seen[before:middle], seen[middle:]

    # distribution rewrites a repository's link on every mount into it: never into itself
    assert not [p for m, p, _ in seen if m == "POST" and "from=three" in p]
    mounts = [status for m, p, status in first if m == "POST" and "mount=" in p]
    heads = [status for m, p, status in first if m == "HEAD" and "/blobs/" in p]
    assert (mounts, heads) == ([201], [404, 404])  # the base from r0 or r1; HEAD for the rest
    assert (new.blobs_copied, new.blobs_mounted, new.blobs_skipped) == (2, 1, 0)
    assert not [p for _, p, _ in second if "/blobs/" in p]  # known to be there: no request
    assert (again.blobs_copied, again.blobs_mounted, again.blobs_skipped) == (0, 0, 3)
    assert skopeo_digest(relative_registry.ref("three", "2"), relative_registry) == images[2].digest


def test_refused_mount_falls_back_to_an_upload(anon_registry, relative_registry):
    image = make_image(marker="refused")
    seed(anon_registry, "app", "1", image)
    before = len(relative_registry.requests())

    with Session() as session:
        for blob in image.blobs:  # a wrong hint: the registry refuses to mount from there
            session.blobs.note_holder(
                relative_registry.host, "empty/repo", Digest.parse(blob.digest)
            )
        result = copy_image(
            session,
            Reference.parse(anon_registry.ref("app", "1")),
            Reference.parse(relative_registry.ref("app", "1")),
        )

    mounts = [
        p for m, p, _ in relative_registry.requests()[before:] if m == "POST" and "mount=" in p
    ]
    assert len(mounts) == len(image.blobs)
    assert (result.blobs_copied, result.blobs_mounted) == (len(image.blobs), 0)
    assert skopeo_digest(relative_registry.ref("app", "1"), relative_registry) == image.digest


def test_concurrent_copies_send_a_shared_blob_once_within_the_budget(
    anon_registry, relative_registry
):
    images = sharing_images(anon_registry, 4, base_size=2 * 1024 * 1024)
    base = images[0].layers[0].digest
    recorder = Recorder()

    with Session(jobs=2) as session, ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda i: copy_image(
                    session,
                    Reference.parse(anon_registry.ref(f"src/{i}", "1")),
                    Reference.parse(relative_registry.ref(f"dst/{i}", "1")),
                    progress=recorder,
                ),
                range(4),
            )
        )

    assert uploads_of(relative_registry, base) == 1
    assert sum(r.blobs_mounted + r.blobs_skipped for r in results) == 3
    assert recorder.peak <= 2
    for i, image in enumerate(images):
        assert skopeo_digest(relative_registry.ref(f"dst/{i}", "1"), relative_registry) == (
            image.digest
        )


def test_repeat_copy_ends_after_one_manifest_head_at_each_end(token_registry, relative_registry):
    image = make_image(marker="repeat-head")
    seed(token_registry, "app", "1", image, creds=("pusher", "pushpass"))
    src, dst = token_registry.ref("app", "1"), relative_registry.ref("app", "1")
    imgmirror.copy(src, dst)
    src_before, dst_before = len(token_registry.requests()), len(relative_registry.requests())

    again = imgmirror.copy(src, dst)

    assert again.unchanged
    assert again.digest == image.digest
    assert again.blobs_copied == again.blobs_skipped == again.manifests_pushed == 0
    seen = token_registry.requests()[src_before:] + relative_registry.requests()[dst_before:]
    assert [m for m, p, _ in seen if "/manifests/" in p] == ["HEAD", "HEAD"]
    assert not [p for _, p, _ in seen if "/blobs/" in p]
    after_auth = [(m, p) for m, p, status in seen if status != 401]
    assert len(after_auth) <= 6, after_auth


def engine_job(registry: Registry, data: bytes, opener: Opener) -> tuple[BlobEngine, BlobJob]:
    client = RegistryClient(registry.host)
    descriptor = Descriptor("application/octet-stream", Digest.of(data), len(data))
    engine = BlobEngine(2, RetryPolicy(attempts=3, backoff=0.01))
    return engine, BlobJob(client, "blobs/x", descriptor, opener)


def test_a_broken_source_is_started_again_after_a_backoff(anon_registry):
    data = os.urandom(4096)
    calls: list[int] = []

    @contextlib.contextmanager
    def flaky() -> Iterator[Iterable[bytes]]:
        calls.append(1)
        if len(calls) == 1:
            raise NetworkError("connection reset by the source")
        yield [data]

    engine, job = engine_job(anon_registry, data, flaky)
    recorder = Recorder()
    try:
        outcome = engine.ensure(job, verb="pushed", progress=recorder)
    finally:
        engine.close()
        job.destination.close()

    assert outcome == "pushed"
    assert len(calls) == 2
    assert recorder.events[-1] == ("pushed", job.descriptor.digest)
    with RegistryClient(anon_registry.host) as client:
        assert client.blob_exists("blobs/x", job.descriptor.digest)


def test_wrong_bytes_are_never_sent_again_and_cancel_reports_interrupted(anon_registry):
    data = os.urandom(4096)
    calls: list[int] = []

    def wrong() -> contextlib.AbstractContextManager[Iterable[bytes]]:
        calls.append(1)
        return contextlib.nullcontext(verify_stream([b"x" * 4096], Digest.of(data), 4096, "b"))

    engine, job = engine_job(anon_registry, data, wrong)
    recorder = Recorder()
    with pytest.raises(VerificationError):
        engine.ensure(job, verb="copied", progress=recorder)
    assert len(calls) == 1
    assert recorder.events[-1] == ("failed", job.descriptor.digest)

    cancel = threading.Event()
    cancel.set()
    job = attrs.evolve(job, opener=lambda: contextlib.nullcontext([data]))
    with pytest.raises(TransferCancelled):
        engine.ensure(job, verb="copied", progress=recorder, cancel=cancel)
    engine.close()
    job.destination.close()
    assert recorder.events[-1] == ("interrupted", job.descriptor.digest)
    with RegistryClient(anon_registry.host) as client:
        assert not client.blob_exists("blobs/x", job.descriptor.digest)
