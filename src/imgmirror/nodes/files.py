"""The disk side of ``node-config``: read the PEM inputs, write the tree all at once.

[node_config][] is the library entry point: it checks the CA and client certificate files,
builds the files with
[imgmirror.nodes.config.build_node_config][imgmirror.nodes.config.build_node_config] and, given
``output``,
writes them with [write_tree][]: everything goes into a temporary directory next to the
output first and is renamed into place only once every file is written, so a failure leaves
nothing half-written. Private keys are written with mode 0600.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.auth.keychain import load_authfile, run_helper
from imgmirror.errors import CredentialsError, ImgmirrorError
from imgmirror.nodes.config import (
    CONTAINERD_VERSIONS,
    RUNTIMES,
    Mirror,
    NodeConfig,
    Runtime,
    SandboxName,
    Tls,
    build_node_config,
)
from imgmirror.nodes.nodeauth import KUBELET_CONFIG

__all__ = ["detect_containerd", "mirror_credentials", "node_config", "read_pem", "write_tree"]

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


def _stage(files: Mapping[str, bytes], staging: Path, private: Callable[[str], bool]) -> None:
    for name, data in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if private(name) else 0o644
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def _check_inside(output: Path, names: Iterable[str]) -> None:
    """Refuse a path whose existing directories (a symlink among them) lead outside
    ``output``: nothing may be written outside the tree asked for."""
    root = output.resolve()
    for name in names:
        directory = output
        for part in Path(name).parts[:-1]:
            directory = directory / part
            if not (directory.exists() or directory.is_symlink()):
                break
            real = directory.resolve()
            if real != root and root not in real.parents:
                raise ImgmirrorError(
                    f"cannot write {output / name}: {directory} leads to {real}, outside {output}",
                    hint="remove that symlink, or write the tree elsewhere (-o DIR)",
                )


class _Swap:
    """Files switched into an existing tree, undone in reverse order on failure."""

    def __init__(self) -> None:
        self.done: list[tuple[Path, Path | None]] = []  # (target, its backup)
        self.made: list[Path] = []  # directories created

    def mkdirs(self, directory: Path) -> None:
        missing = [d for d in (directory, *directory.parents) if not d.exists()]
        for parent in reversed(missing):
            parent.mkdir()
            self.made.append(parent)

    def replace(self, staged: Path, target: Path) -> None:
        backup: Path | None = None
        if target.is_dir() and not target.is_symlink():
            raise IsADirectoryError(21, f"{target} is a directory")
        if target.exists() or target.is_symlink():
            backup = target.with_name(f".{target.name}.imgmirror-old")
            os.replace(target, backup)
        self.done.append((target, backup))
        os.replace(staged, target)

    def undo(self) -> None:
        for target, backup in reversed(self.done):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                elif target.is_file() or target.is_symlink():
                    target.unlink()
        for directory in reversed(self.made):
            with contextlib.suppress(OSError):
                directory.rmdir()

    def commit(self) -> None:
        for _, backup in self.done:
            if backup is not None:
                with contextlib.suppress(OSError):
                    backup.unlink()


def _install(files: Mapping[str, bytes], staging: Path, output: Path) -> None:
    if not output.exists():
        staging.chmod(0o755)  # an /etc-like tree; mkdtemp made it 0700
        staging.rename(output)
        return
    _check_inside(output, files)
    swap = _Swap()  # an existing tree: every file replaced, or none
    try:
        for name in files:
            target = output / name
            swap.mkdirs(target.parent)
            swap.replace(staging / name, target)
    except BaseException:
        swap.undo()
        raise
    swap.commit()


def write_tree(
    files: Mapping[str, bytes],
    output: str | os.PathLike[str],
    *,
    private: Callable[[str], bool] = lambda name: name.endswith(".key"),
) -> list[Path]:
    """Write ``{relative path: bytes}`` under ``output``, all or nothing; returns the paths.

    Into a new directory the tree is staged next to it and renamed into place; into an
    existing one each file is staged inside it, then switched in, and if one cannot be the
    files already switched get their old content back. A path leading outside ``output``
    (through a symlinked directory) is refused before anything is written. Files for which
    ``private(name)`` holds (private keys by default) are written with mode 0600.

    Raises:
        ImgmirrorError: the output cannot be created or written (nothing is left behind).
    """
    out = Path(output)
    staging: Path | None = None
    try:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(20, "exists and is not a directory")
        out.parent.mkdir(parents=True, exist_ok=True)
        where = out if out.is_dir() else out.parent
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=where))
        _stage(files, staging, private)
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
    except ImgmirrorError:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / name for name in files]


def detect_containerd(tree: str | os.PathLike[str] | None, *, node_root: bool) -> int | None:
    """containerd's major version as the ``config.toml`` in ``tree`` declares it (``version =
    3`` is containerd 2's format), or None when there is none to read."""
    if tree is None:
        return None
    path = Path(tree) / ("etc/containerd/config.toml" if node_root else "containerd/config.toml")
    try:
        with path.open("rb") as f:
            version = tomllib.load(f).get("version")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return 2 if version == 3 else 1


def mirror_credentials(
    hosts: Iterable[str],
    *,
    creds: Credential | str | None = None,
    authfile: str | os.PathLike[str] | None = None,
) -> dict[str, Credential]:
    """mirror host -> credential: ``creds`` for every mirror host, or each host's entry of
    ``authfile`` (a docker ``config.json``, podman ``auth.json``, ``.dockercfg`` or pull
    Secret; a credential helper it names is asked).

    Raises:
        CredentialsError: unreadable or malformed input, both given, or an ``authfile`` with
            no entry for any mirror.
    """
    wanted = list(dict.fromkeys(hosts))
    if creds is not None and authfile is not None:
        raise CredentialsError(
            "give the mirror's credentials once", hint="use creds or authfile, not both"
        )
    if creds is not None:
        one = Credential.parse(creds) if isinstance(creds, str) else creds
        return dict.fromkeys(wanted, one)
    if authfile is None:
        return {}
    config = load_authfile(Path(authfile))
    found: dict[str, Credential] = {}
    for host in wanted:
        lookup = config.lookup(host)
        credential = lookup.credential
        if lookup.helper is not None:
            credential = run_helper(
                lookup.helper, lookup.server_url or host, host, source=str(authfile), env=os.environ
            )
        if credential is not None:
            found[host] = credential
    if not found:
        raise CredentialsError(
            f"{authfile} has no credentials for {', '.join(wanted)}",
            hint="add an entry for the mirror's host (docker login MIRROR, or imgmirror secret "
            "create)",
            setting="authfile",
        )
    return found


def node_config(
    mirrors: Sequence[str | Mirror],
    *,
    ca_file: str | os.PathLike[str] | None = None,
    client_cert: str | os.PathLike[str] | None = None,
    client_key: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    runtimes: Sequence[Runtime] | None = None,
    sandbox_image: str | None = None,
    sandbox_name: SandboxName = "source",
    fallback: bool = True,
    creds: Credential | str | None = None,
    authfile: str | os.PathLike[str] | None = None,
    containerd: int | None = None,
    output: str | os.PathLike[str] | None = None,
    node_root: str | os.PathLike[str] | None = None,
) -> NodeConfig:
    """Node files that make containerd, docker and CRI-O/podman pull through a mirror.

    Args:
        mirrors: ``"SOURCE=MIRROR[/PREFIX]"`` strings (``registry.k8s.io=registry.corp/k8s``)
            or ``Mirror`` values.
        ca_file: PEM CA bundle the mirror's certificate chains to; installed for each runtime.
        client_cert, client_key: a client certificate pair the mirror requires (both or none).
        insecure: skip TLS verification of the mirror.
        runtimes: ``containerd``, ``docker``, ``crio`` (default: all three).
        sandbox_image: the pause image (default ``registry.k8s.io/pause:3.9``).
        sandbox_name: ``source`` (default) keeps the pause image's name, which the files
            redirect; ``mirror`` names it under the mirror (whose own entries are written).
        fallback: let runtimes pull from the source when the mirror fails.
        creds: ``USER:PASS`` (or a [Credential][imgmirror.auth.credentials.Credential]) the mirror
            wants; written for the kubelet, containerd, CRI-O and podman, mode 0600.
        authfile: take the mirror's credentials from this file instead (config.json,
            auth.json, .dockercfg or a pull Secret).
        containerd: 1 or 2 (config version 2 or 3); default: what ``output``'s (or
            ``node_root``'s) ``containerd/config.toml`` declares, else 1.
        output: write the tree under this directory (laid out like ``/etc``).
        node_root: write under this directory laid out like ``/`` (``etc/...`` and the
            kubelet's ``var/lib/kubelet/config.json``); not with ``output``.

    Returns:
        A [NodeConfig][imgmirror.nodes.config.NodeConfig]: a mapping ``{path relative to /etc:
        bytes}`` with ``snippets`` and ``notes`` to show.

    Raises:
        ImgmirrorError: a bad mirror, certificate file, credentials or output directory;
            nothing written.
    """
    parsed = [m if isinstance(m, Mirror) else Mirror.parse(m) for m in mirrors]
    if output is not None and node_root is not None:
        raise ImgmirrorError(
            "give one place to write", hint="use output (an /etc tree) or node_root, not both"
        )
    if (client_cert is None) != (client_key is None):
        raise ImgmirrorError(
            "a client certificate needs its key, and a key its certificate",
            hint="give both client_cert and client_key, or neither",
            setting="client_cert",
        )
    if containerd is not None and containerd not in CONTAINERD_VERSIONS:
        raise ImgmirrorError(f"unknown containerd version {containerd}", hint="use 1 or 2")
    if sandbox_name not in ("source", "mirror"):
        raise ImgmirrorError(f"unknown sandbox name {sandbox_name!r}", hint="use source or mirror")
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
    found = detect_containerd(node_root if node_root is not None else output,
                              node_root=node_root is not None)  # fmt: skip
    config = build_node_config(
        parsed,
        tls=tls,
        runtimes=tuple(runtimes) if runtimes else RUNTIMES,
        sandbox_image=sandbox_image,
        sandbox_name=sandbox_name,
        fallback=fallback,
        containerd=containerd or found or 1,
        credentials=mirror_credentials((m.host for m in parsed), creds=creds, authfile=authfile),
    )
    if config.node_files and node_root is None:
        config = attrs.evolve(
            config,
            notes=(
                *config.notes,
                f"kubelet: {KUBELET_CONFIG} lies outside the /etc tree; give --node-root DIR "
                "(a tree laid out like /) to write it",
            ),
        )
    if output is not None or node_root is not None:
        tree = config.tree(node_root=node_root is not None)
        write_tree(tree, node_root or output or "", private=config.is_private)
    return config
