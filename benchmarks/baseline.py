"""The floor for a registry-to-registry copy: ``curl GET | curl PUT`` per blob, all at once.

For every blob of the image an upload session is opened at the destination, then one ``curl``
downloading from the source is piped into one ``curl`` uploading (``PUT <location>&digest=``,
chunked) to the destination, every blob in parallel; the manifest is put last. No hashing, no
verification, no retries: the time is what the two registries and the loopback need to move
the bytes, which no client can beat by much.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx

from .images import DOCKER_MANIFEST, BenchImage
from .measure import CommandFailed, Run

__all__ = ["curl_stream_copy"]


def _pipeline(curl: str, source_url: str, upload_url: str) -> tuple[subprocess.Popen[bytes], ...]:
    download = subprocess.Popen(
        [curl, "-sSfL", "--http1.1", source_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    upload = subprocess.Popen(
        [
            curl,
            "-sSf",
            "--http1.1",
            "-X",
            "PUT",
            "-T",
            "-",
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            "-o",
            "/dev/null",
            upload_url,
        ],
        stdin=download.stdout,
        stderr=subprocess.PIPE,
    )
    assert download.stdout is not None
    download.stdout.close()  # the upload owns the pipe now
    return download, upload


def curl_stream_copy(
    source: str, source_repo: str, dest: str, dest_repo: str, image: BenchImage
) -> Run:
    """Copy ``image`` from ``source`` to ``dest`` (base URLs) with piped curls; timed."""
    curl = shutil.which("curl")
    if curl is None:
        raise CommandFailed("curl is missing: apt-get install curl")
    started = time.perf_counter()
    with httpx.Client(timeout=120.0, trust_env=False) as http:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for blob in image.blobs:
                start = http.post(
                    f"{dest}/v2/{dest_repo}/blobs/uploads/", headers={"Content-Length": "0"}
                )
                start.raise_for_status()
                location = start.request.url.join(start.headers["location"])
                upload_url = str(location.copy_merge_params({"digest": blob.digest}))
                source_url = f"{source}/v2/{source_repo}/blobs/{blob.digest}"
                processes.extend(_pipeline(curl, source_url, upload_url))
            errors = []
            for proc in processes:
                _, stderr = proc.communicate(timeout=600)
                if proc.returncode != 0:
                    errors.append(f"curl exited {proc.returncode}: {stderr.decode().strip()}")
            if errors:
                raise CommandFailed("; ".join(errors))
        finally:
            for proc in processes:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        response = http.put(
            f"{dest}/v2/{dest_repo}/manifests/latest",
            content=image.manifest,
            headers={"Content-Type": DOCKER_MANIFEST},
        )
        response.raise_for_status()
    return Run(time.perf_counter() - started, 0, "")
