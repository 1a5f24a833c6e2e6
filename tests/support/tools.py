"""External tools used by the integration tests: skopeo, docker-registry, docker, ctr.

On CI (``CI=true``) a missing tool fails the test; locally it skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from .registry import Registry

__all__ = [
    "SkopeoError",
    "missing",
    "on_ci",
    "one_line_error",
    "require_root",
    "require_tool",
    "skopeo",
    "skopeo_copy",
    "skopeo_digest",
    "skopeo_inspect_raw",
    "skopeo_transport_args",
]

SKOPEO_TIMEOUT = 120


def on_ci() -> bool:
    """True when running on CI (``CI`` set to true/1/yes)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(reason: str) -> NoReturn:
    """Fail under CI, skip locally."""
    if on_ci():
        pytest.fail(f"{reason} (required on CI)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Return the absolute path of ``name`` on PATH, or fail (CI) / skip (local)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name!r} not found on PATH")
    return path


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        missing(f"{what} needs root")


class SkopeoError(AssertionError):
    """skopeo exited non-zero (an AssertionError so pytest shows it as a test failure)."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"skopeo {' '.join(args)} failed ({returncode}):\n{stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


_policy_file: Path | None = None


def _policy() -> Path:
    """A permissive signature policy, so skopeo copy never depends on /etc/containers."""
    global _policy_file  # noqa: PLW0603 - one file per process is enough
    if _policy_file is None or not _policy_file.exists():
        fd, name = tempfile.mkstemp(prefix="imgmirror-test-policy-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        _policy_file = Path(name)
    return _policy_file


def skopeo(*args: str, timeout: float = SKOPEO_TIMEOUT) -> bytes:
    """Run ``skopeo --policy <permissive> ARGS`` and return stdout; raise SkopeoError."""
    exe = require_tool("skopeo")
    argv = [exe, "--policy", str(_policy()), *args]
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SkopeoError(args, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc.stdout


def skopeo_transport_args(
    registry: Registry | None = None,
    *,
    tls_verify: bool | None = None,
    cert_dir: str | Path | None = None,
    creds: tuple[str, str] | None = None,
    anonymous: bool = False,
    prefix: str = "",
) -> list[str]:
    """Options for one docker:// side of a skopeo command.

    ``prefix`` is ``""`` for inspect, ``"src-"`` / ``"dest-"`` for copy. Values default from
    ``registry``: plain-HTTP registries get ``--tls-verify=false`` (skopeo then falls back to
    http), TLS registries get ``--cert-dir`` with the test CA (and client pair for mTLS), and
    ``registry.default_creds`` is used when ``creds`` is not given (``anonymous=True``
    sends no credentials at all).
    """
    if registry is not None:
        if tls_verify is None:
            tls_verify = registry.tls
        if cert_dir is None and registry.tls:
            cert_dir = registry.cert_dir
        if creds is None and not anonymous:
            creds = registry.default_creds
    args: list[str] = []
    if tls_verify is not None:
        args.append(f"--{prefix}tls-verify={'true' if tls_verify else 'false'}")
    if cert_dir is not None:
        args += [f"--{prefix}cert-dir", str(cert_dir)]
    if creds is not None and not anonymous:
        args += [f"--{prefix}creds", f"{creds[0]}:{creds[1]}"]
    else:
        args.append(f"--{prefix}no-creds")
    return args


def _docker_ref(ref: str) -> str:
    if "://" in ref or ref.startswith(("docker-archive:", "oci:", "dir:", "oci-archive:")):
        return ref
    return f"docker://{ref}"


def skopeo_inspect_raw(
    ref: str,
    registry: Registry | None = None,
    *,
    tls_verify: bool | None = None,
    cert_dir: str | Path | None = None,
    creds: tuple[str, str] | None = None,
    anonymous: bool = False,
) -> bytes:
    """``skopeo inspect --raw docker://REF``: the manifest bytes exactly as served.

    ``ref`` is ``host:port/repo:tag`` or ``...@sha256:...`` (``docker://`` is added), or any
    other skopeo transport reference (``docker-archive:/path``, ``oci:/dir:tag``).
    """
    target = _docker_ref(ref)
    opts = (
        skopeo_transport_args(
            registry, tls_verify=tls_verify, cert_dir=cert_dir, creds=creds, anonymous=anonymous
        )
        if target.startswith("docker://")
        else []
    )
    return skopeo("inspect", "--raw", *opts, target)


def skopeo_digest(
    ref: str,
    registry: Registry | None = None,
    *,
    tls_verify: bool | None = None,
    cert_dir: str | Path | None = None,
    creds: tuple[str, str] | None = None,
    anonymous: bool = False,
) -> str:
    """``sha256:<hex>`` of the raw manifest bytes returned by :func:`skopeo_inspect_raw`."""
    raw = skopeo_inspect_raw(
        ref, registry, tls_verify=tls_verify, cert_dir=cert_dir, creds=creds, anonymous=anonymous
    )
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def skopeo_copy(
    src: str,
    dst: str,
    *,
    src_registry: Registry | None = None,
    dst_registry: Registry | None = None,
    all_images: bool = True,
    preserve_digests: bool = True,
    extra: Sequence[str] = (),
) -> None:
    """``skopeo copy`` between two references (``docker://`` added to bare references)."""
    src_t, dst_t = _docker_ref(src), _docker_ref(dst)
    args = ["copy"]
    if all_images:
        args.append("--all")
    if preserve_digests:
        args.append("--preserve-digests")
    if src_t.startswith("docker://"):
        args += skopeo_transport_args(src_registry, prefix="src-")
    if dst_t.startswith("docker://"):
        args += skopeo_transport_args(dst_registry, prefix="dest-")
    skopeo(*args, *extra, src_t, dst_t)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the CLI failed with exit status 1 and one ``imgmirror: error:`` line; return it."""
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("imgmirror: error: ")
    return lines[0]


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m imgmirror ARGS`` as a shell user would; never raises on failure."""
    return subprocess.run(
        [sys.executable, "-m", "imgmirror", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        input=stdin,
    )


def stop_process(
    proc: subprocess.Popen[bytes] | None, timeout: float, *, sig: int = signal.SIGTERM
) -> None:
    """Signal ``proc`` (SIGTERM by default), wait, kill it if it lingers, reap it."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    else:
        proc.wait()
