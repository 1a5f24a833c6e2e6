"""Where save writes: devices, FIFOs and stdout are streamed to; regular files appear atomically,
also when the process is terminated; write errors are one line, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

import imgmirror
from imgmirror.archive.layout import ArchiveFormat
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.ops.save import load_commands
from imgmirror.progress import ProgressListener
from tests.support import images
from tests.support.faults import FakeSource
from tests.support.images import Image, Layer, pause_image
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import require_root, require_tool, run_cli, skopeo, stop_process


@pytest.fixture
def pause(pause_binary: Path) -> Image:
    return pause_image(pause_binary)


@pytest.fixture
def source(anon_registry: Registry, pause: Image) -> str:
    seed(anon_registry, "pause", "3.9", pause)
    return f"{anon_registry.host}/pause:3.9"


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory of its own (tmp_path also holds the registry's storage)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def _layers(path: Path) -> list[str]:
    return list(json.loads(skopeo("inspect", f"docker-archive:{path}"))["Layers"])


def test_a_character_device_stays_a_device(source: str, pause: Image, out_dir: Path) -> None:
    require_root("mknod")
    null = out_dir / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    proc = run_cli("save", source, "-o", str(null))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert os.listdir(out_dir) == ["null"]
    assert "load it with" not in proc.stdout  # nothing to load from a device


def test_a_fifo_reader_gets_a_loadable_archive(source: str, pause: Image, out_dir: Path) -> None:
    fifo, received = out_dir / "pipe.tar", out_dir / "received.tar"
    os.mkfifo(fifo)
    with received.open("wb") as sink:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=sink)
        try:
            proc = run_cli("save", source, "-o", str(fifo))
            reader.wait(timeout=30)
        finally:
            stop_process(reader, 5)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    layer = pause.layers[0]
    assert isinstance(layer, Layer)
    assert _layers(received) == [layer.diff_id]


def _save_to_stdout(source: str, stdout: int) -> subprocess.CompletedProcess[str]:
    """``imgmirror save SOURCE -o -`` with stdout on the file descriptor ``stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "imgmirror", "save", source, "-o", "-"],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def test_dash_writes_the_same_archive_to_stdout(source: str, out_dir: Path) -> None:
    regular, piped = out_dir / "regular.tar", out_dir / "piped.tar"
    assert run_cli("save", source, "-o", str(regular)).returncode == 0
    with piped.open("wb") as out:
        proc = _save_to_stdout(source, out.fileno())
    assert proc.returncode == 0, proc.stderr
    assert "saved 1 image to -" in proc.stderr  # the summary does not corrupt the archive
    assert piped.read_bytes() == regular.read_bytes()
    assert _layers(piped) == _layers(regular)


def test_dash_refuses_a_terminal(source: str) -> None:
    controller, terminal = os.openpty()
    try:
        proc = _save_to_stdout(source, terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 1
    assert proc.stderr.startswith("imgmirror: error: refusing to write an archive to a terminal")
    assert len(proc.stderr.strip().splitlines()) == 1


class _Stall:
    """A fault that sends half of one blob, then holds the connection until released."""

    def __init__(self, digest: str, data: bytes) -> None:
        self.digest, self.data = digest, data
        self.release = threading.Event()

    def __call__(self, handler: BaseHTTPRequestHandler, asked: str, attempt: int) -> bool:
        if asked != self.digest:
            return False
        try:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(self.data)))
            handler.end_headers()
            handler.wfile.write(self.data[: len(self.data) // 2])
            handler.wfile.flush()
            self.release.wait(60)
            handler.wfile.write(self.data[len(self.data) // 2 :])
        except OSError:
            pass
        return True


@pytest.fixture
def stalled(pause: Image) -> Iterator[FakeSource]:
    layer = pause.layers[0]
    stall = _Stall(layer.digest, layer.data)
    with FakeSource(pause, stall) as fake:
        try:
            yield fake
        finally:
            stall.release.set()


def _wait_for_temp(directory: Path) -> list[str]:
    for _ in range(600):
        names = os.listdir(directory)
        if names and all((directory / n).stat().st_size > 0 for n in names):
            return names
        time.sleep(0.05)
    raise AssertionError("save never started writing")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_termination_mid_save_leaves_nothing(
    stalled: FakeSource, tmp_path: Path, sig: int, code: int
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [sys.executable, "-m", "imgmirror", "save", f"{stalled.host}/pause:3.9"]
    with subprocess.Popen(
        [*argv, "-o", str(out_dir / "pause.tar")], stderr=subprocess.PIPE
    ) as proc:
        try:
            (temp,) = _wait_for_temp(out_dir)
            assert temp.startswith(f".pause.tar.tmp-{proc.pid}-")  # the writer's PID is in it
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
        finally:
            stop_process(proc, 5, sig=signal.SIGKILL)
    assert proc.returncode == code
    assert err.decode().strip() == "imgmirror: terminated"
    assert os.listdir(out_dir) == []


def test_stale_temp_files_of_dead_writers_are_removed(source: str, out_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out_dir / f".pause.tar.tmp-{dead.pid}-0badc0de"
    live = out_dir / f".pause.tar.tmp-{os.getpid()}-0badc0de"
    other = out_dir / f".other.tar.tmp-{dead.pid}-0badc0de"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    proc = run_cli("save", source, "-o", str(out_dir / "pause.tar"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out_dir)) == sorted([live.name, other.name, "pause.tar"])


def test_long_names(source: str, out_dir: Path) -> None:
    fits = out_dir / ("p" * 250 + ".tar")  # its temporary name would not fit unshortened
    proc = run_cli("save", source, "-o", str(fits))
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(out_dir) == [fits.name]
    too_long = out_dir / ("p" * 300 + ".tar")
    proc = run_cli("save", source, "-o", str(too_long))
    assert proc.returncode == 1
    assert proc.stderr.startswith("imgmirror: error: cannot write ")
    assert "longer than this file system allows" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert os.listdir(out_dir) == [fits.name]


def test_read_only_directory(source: str, out_dir: Path) -> None:
    require_root("mounting a read-only file system")
    unshare = require_tool("unshare")
    ro = out_dir / "ro"
    ro.mkdir()
    script = (
        f'mount -t tmpfs -o ro tmpfs "$1" && exec "$2" -m imgmirror save {source} -o "$1/x.tar"'
    )
    proc = subprocess.run(
        [unshare, "-m", "sh", "-c", script, "sh", str(ro), sys.executable],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert (
        proc.stderr.strip() == f"imgmirror: error: cannot write {ro}/x.tar: Read-only file system"
    )


def test_library_streams_to_a_device(source: str, out_dir: Path) -> None:
    require_root("mknod")
    null = out_dir / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = imgmirror.save([source], null, options=imgmirror.ClientOptions())
    assert result.streamed
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert load_commands(result) == []


class _Overlap:
    """A fault that counts layer requests in flight and holds each until another arrives."""

    def __init__(self, image: Image) -> None:
        self.layers = {layer.digest: layer.data for layer in image.layers}
        self.lock = threading.Lock()
        self.current = self.peak = 0
        self.together = threading.Event()

    def __call__(self, handler: BaseHTTPRequestHandler, asked: str, attempt: int) -> bool:
        if asked not in self.layers:
            return False
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            if self.current > 1:
                self.together.set()
        self.together.wait(5)  # a sequential save would wait here for nothing
        try:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(self.layers[asked])))
            handler.end_headers()
            handler.wfile.write(self.layers[asked])
        finally:
            with self.lock:
                self.current -= 1
        return True


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("docker", ".tar"), ("oci", ".tar"), ("docker", ".tar.gz")],  # .gz: buffered, in order
)
def test_blobs_are_fetched_at_once_and_the_archive_loads(
    out_dir: Path, fmt: ArchiveFormat, suffix: str
) -> None:
    image = images.make_image(marker=f"parallel-{fmt}", platform=images.host_platform())
    overlap = _Overlap(image)
    out = out_dir / f"parallel{suffix}"
    with FakeSource(image, overlap) as fake:
        result = imgmirror.save(
            [f"{fake.host}/app:1"], out, format=fmt, jobs=4, options=imgmirror.ClientOptions()
        )
    assert overlap.peak >= 2  # the layers were in flight together
    assert result.blobs == len(image.layers) + (fmt == "oci")  # oci: the config too
    if suffix == ".tar.gz":  # skopeo reads plain tars only
        plain = out_dir / "plain.tar"
        plain.write_bytes(gzip.decompress(out.read_bytes()))
        out = plain
    transport = "docker-archive" if fmt == "docker" else "oci-archive"
    copied = out_dir / "copied"
    skopeo("copy", f"{transport}:{out}", f"dir:{copied}")  # reads and checks every blob
    info = json.loads(skopeo("inspect", f"{transport}:{out}"))
    layers = [layer for layer in image.layers if isinstance(layer, Layer)]
    wanted = [lay.diff_id if fmt == "docker" else lay.digest for lay in layers]
    assert info["Layers"] == wanted  # docker-archive: diff_ids; oci-archive: blob digests
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert len(names) == len(set(names))
    assert (result.compression == "gzip") == (suffix == ".tar.gz")


class _Recorder(ProgressListener):
    """Records the order of progress events (from any thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, object]] = []

    def planned(self, blobs: Sequence[Descriptor], verb: str) -> None:
        with self.lock:
            self.events.append(("planned", (verb, sorted(str(b.digest) for b in blobs))))

    def blob_started(self, digest: Digest, size: int) -> None:
        with self.lock:
            self.events.append(("started", str(digest)))

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        with self.lock:
            self.events.append(("finished", (str(digest), outcome)))


@pytest.mark.parametrize("suffix", [".tar", ".tar.zst"])
def test_save_plans_its_blobs_then_reports_them_saved(
    source: str, pause: Image, out_dir: Path, suffix: str
) -> None:
    recorder = _Recorder()
    imgmirror.save(
        [source], out_dir / f"p{suffix}", options=imgmirror.ClientOptions(), progress=recorder
    )
    layers = sorted(layer.digest for layer in pause.layers)
    assert recorder.events[0] == ("planned", ("save", layers))
    finished = [str(e) for kind, e in recorder.events if kind == "finished"]
    assert sorted(finished) == [str((digest, "saved")) for digest in layers]
