"""save's parallel writer: the laid-out archive holds exactly what the streamed one holds (the
entries of unknown size at the end), blobs that break off are written again in place, and a
digest mismatch fails with nothing left."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgmirror.archive.layout import ArchiveFormat, BlobEntry, LayerTarEntry, Origin, plan_archive
from imgmirror.archive.output import open_output
from imgmirror.archive.scatter import lay_out, write_scattered
from imgmirror.archive.writer import stream_archive
from imgmirror.errors import NetworkError, VerificationError
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from tests.support.images import make_image
from tests.unit.test_archive_layout import _blobs, _item, _members, _opener


def _sorted(members: list[tuple[str, int, bytes]]) -> list[tuple[str, int, bytes]]:
    return sorted(members)


@pytest.mark.parametrize("fmt", ["docker", "legacy", "oci"])
def test_scattered_archive_holds_what_the_stream_holds(tmp_path: Path, fmt: ArchiveFormat) -> None:
    image = make_image(fmt="oci", compression="zstd", marker=fmt)
    plan = plan_archive([_item(image)], fmt)
    out_path = tmp_path / "a.tar"
    with open_output(out_path) as out:
        size = write_scattered(plan, _opener(_blobs(image), chunk=7), out, jobs=3)
    data = out_path.read_bytes()
    assert size == len(data)
    assert len(data) % 10240 == 0
    streamed = b"".join(stream_archive(plan, _opener(_blobs(image))))
    assert _sorted(_members(data)) == _sorted(_members(streamed))
    layout = lay_out(plan.entries)
    deferred = [e for e in plan.entries if isinstance(e, LayerTarEntry)]
    assert list(layout.rest) == deferred  # only decompressed layers wait for the end
    names = [m[0] for m in _members(data)]
    assert names[len(names) - len(deferred) :] == [e.path for e in deferred]


def test_a_blob_that_breaks_off_is_written_again_at_its_offset(tmp_path: Path) -> None:
    image = make_image(marker="retry")
    plan = plan_archive([_item(image)], "docker")
    blobs = _blobs(image)
    inner = _opener(blobs, chunk=5)
    broken: set[Digest] = set()
    lock = threading.Lock()

    @contextlib.contextmanager
    def flaky(origin: Origin, blob: Descriptor) -> Iterator[Iterator[bytes]]:
        with inner(origin, blob) as chunks:

            def once() -> Iterator[bytes]:
                for i, chunk in enumerate(chunks):
                    with lock:
                        first = blob.digest not in broken
                        if i == 2 and first:
                            broken.add(blob.digest)
                    if i == 2 and first:
                        raise NetworkError("connection reset")
                    yield chunk

            yield once()

    out_path = tmp_path / "a.tar"
    with open_output(out_path) as out:
        write_scattered(plan, flaky, out, jobs=2)
    layers = {e.blob.digest for e in plan.entries if isinstance(e, BlobEntry)}
    assert broken == layers
    streamed = b"".join(stream_archive(plan, _opener(blobs)))
    assert out_path.read_bytes() == streamed  # nothing of the broken attempts is left


def test_a_wrong_blob_fails_and_leaves_nothing(tmp_path: Path) -> None:
    image = make_image(marker="wrong")
    plan = plan_archive([_item(image)], "docker")
    blobs = _blobs(image)
    victim = next(e.blob.digest for e in plan.entries if isinstance(e, BlobEntry))
    blobs[victim] = blobs[victim][:-1] + b"X"
    with pytest.raises(VerificationError), open_output(tmp_path / "a.tar") as out:
        write_scattered(plan, _opener(blobs), out, jobs=4)
    assert os.listdir(tmp_path) == []
