"""The disk side of ``node-config``: read the PEM inputs, write the tree all at once.

:func:`node_config` is the library entry point: it checks the CA and client certificate files,
builds the files with :func:`imgmirror.nodes.config.build_node_config` and, given ``output``,
writes them with :func:`write_tree`: everything goes into a temporary directory next to the
output first and is renamed into place only once every file is written, so a failure leaves
nothing half-written. Private keys are written with mode 0600.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from imgmirror.errors import ImgmirrorError
from imgmirror.nodes.config import RUNTIMES, Mirror, NodeConfig, Runtime, Tls, build_node_config

__all__ = ["node_config", "read_pem", "write_tree"]

_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)
_KEY = re.compile(
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\s.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)
_MAX_PEM = 1024 * 1024


def read_pem(path: str | os.PathLike[str], what: str, *, key: bool = False) -> bytes:
    """The bytes of a PEM certificate bundle (or private key), checked.

    Raises:
        ImgmirrorError: missing, unreadable, too large, or not PEM (certificates must decode).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM + 1)
    except FileNotFoundError:
        raise ImgmirrorError(f"{what} {path} does not exist", hint="check the path") from None
    except OSError as exc:
        raise ImgmirrorError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    kind = "PEM private key" if key else "PEM certificate"
    blocks = (_KEY if key else _CERT).findall(data)
    if len(data) > _MAX_PEM or not blocks:
        raise ImgmirrorError(
            f"{what} {path} is not a {kind}",
            hint="give a file with -----BEGIN "
            + ("PRIVATE KEY" if key else "CERTIFICATE")
            + "----- blocks (convert DER with openssl x509 -inform der)",
        )
    if not key:
        for block in blocks:
            body = b"".join(block.split(b"-----")[2].split())
            try:
                base64.b64decode(body, validate=True)
            except ValueError:
                raise ImgmirrorError(
                    f"{what} {path} has a certificate block that is not valid base64",
                    hint="check the file is not truncated or edited",
                ) from None
    return data


def _stage(files: Mapping[str, bytes], staging: Path) -> None:
    for name, data in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if name.endswith(".key") else 0o644
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def _install(files: Mapping[str, bytes], staging: Path, output: Path) -> None:
    if not output.exists():
        staging.chmod(0o755)  # an /etc-like tree; mkdtemp made it 0700
        staging.rename(output)
        return
    for name in files:  # an existing tree: each file replaced in one rename
        target = output / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)


def write_tree(files: Mapping[str, bytes], output: str | os.PathLike[str]) -> list[Path]:
    """Write ``{relative path: bytes}`` under ``output``, all or nothing; returns the paths.

    Raises:
        ImgmirrorError: the output cannot be created or written (nothing is left behind).
    """
    out = Path(output)
    staging: Path | None = None
    try:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(20, "exists and is not a directory")
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        _stage(files, staging)
        _install(files, staging, out)
        if out.exists() and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise ImgmirrorError(
            f"cannot write {out}: {exc.strerror or exc}",
            hint="choose a directory you can write (-o DIR)",
        ) from None
    return [out / name for name in files]


def node_config(
    mirrors: Sequence[str | Mirror],
    *,
    ca_file: str | os.PathLike[str] | None = None,
    client_cert: str | os.PathLike[str] | None = None,
    client_key: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    runtimes: Sequence[Runtime] | None = None,
    sandbox_image: str | None = None,
    fallback: bool = True,
    output: str | os.PathLike[str] | None = None,
) -> NodeConfig:
    """Node files that make containerd, docker and CRI-O/podman pull through a mirror.

    Args:
        mirrors: ``"SOURCE=MIRROR[/PREFIX]"`` strings (``registry.k8s.io=registry.corp/k8s``)
            or :class:`~imgmirror.nodes.config.Mirror` values.
        ca_file: PEM CA bundle the mirror's certificate chains to; installed for each runtime.
        client_cert, client_key: a client certificate pair the mirror requires (both or none).
        insecure: skip TLS verification of the mirror.
        runtimes: ``containerd``, ``docker``, ``crio`` (default: all three).
        sandbox_image: the pause image to rewrite to the mirror (default
            ``registry.k8s.io/pause:3.9``).
        fallback: let runtimes pull from the source when the mirror fails.
        output: if given, write the tree under this directory (laid out like ``/etc``).

    Returns:
        A :class:`~imgmirror.nodes.config.NodeConfig`: a mapping ``{path relative to /etc:
        bytes}`` with ``snippets`` and ``notes`` to show.

    Raises:
        ImgmirrorError: a bad mirror, certificate file or output directory; nothing written.
    """
    parsed = [m if isinstance(m, Mirror) else Mirror.parse(m) for m in mirrors]
    if (client_cert is None) != (client_key is None):
        raise ImgmirrorError(
            "a client certificate needs its key, and a key its certificate",
            hint="give both client_cert and client_key, or neither",
            setting="client_cert",
        )
    tls = Tls(
        ca=read_pem(ca_file, "CA file") if ca_file is not None else None,
        client_cert=read_pem(client_cert, "client certificate") if client_cert else None,
        client_key=read_pem(client_key, "client key", key=True) if client_key else None,
        insecure=insecure,
    )
    for runtime in runtimes or ():
        if runtime not in RUNTIMES:
            raise ImgmirrorError(
                f"unknown runtime {runtime!r}", hint="use containerd, docker or crio"
            )
    config = build_node_config(
        parsed,
        tls=tls,
        runtimes=tuple(runtimes) if runtimes else RUNTIMES,
        sandbox_image=sandbox_image,
        fallback=fallback,
    )
    if output is not None:
        write_tree(config.files, output)
    return config
