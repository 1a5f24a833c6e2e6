"""What a node needs so that its container runtime pulls through a mirror, as ``{path: bytes}``.

:func:`node_config` builds, in pure code, the files each runtime reads, at paths relative to
``/etc``:

- containerd (1.5+, ``config_path``): ``containerd/certs.d/<source>/hosts.toml`` with one
  ``[host]`` entry per mirror (``pull``/``resolve``; ``override_path`` when the mirror has a
  path prefix; ``ca``/``client`` relative to the hosts.toml, which containerd resolves against
  its directory), the source as ``server`` unless fallback is off;
- docker: ``docker/daemon.json`` (``registry-mirrors``, honoured for Docker Hub only, and
  ``insecure-registries``) and ``docker/certs.d/<mirror>/`` (``ca.crt``, ``client.cert``/``.key``);
- CRI-O/podman: ``containers/registries.conf.d/50-imgmirror.conf`` (``[[registry]]`` with
  ``[[registry.mirror]]``) and ``containers/certs.d/<mirror>/``;
- the pause image under the mirror (kubelet ``--pod-infra-container-image``, containerd
  ``sandbox_image``) and the ``config.toml`` lines, as text to print, never files.

The caller passes the CA and client certificate bytes (read and checked by the CLI or by
:func:`imgmirror.filetree.read_pem`); nothing here touches the disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import attrs

from imgmirror.errors import ImgmirrorError
from imgmirror.model.reference import DOCKER_HUB, DOCKER_HUB_API, Reference

__all__ = [
    "DEFAULT_SANDBOX_IMAGE",
    "DROP_IN",
    "RUNTIMES",
    "Mirror",
    "NodeConfig",
    "Runtime",
    "build_node_config",
]

Runtime = Literal["containerd", "docker", "crio"]
RUNTIMES: tuple[Runtime, ...] = ("containerd", "docker", "crio")
#: The pause image kubeadm 1.28+ expects.
DEFAULT_SANDBOX_IMAGE = "registry.k8s.io/pause:3.9"
DROP_IN = "containers/registries.conf.d/50-imgmirror.conf"
_MIRROR_HINT = "give mirrors as SOURCE=MIRROR[/PREFIX], e.g. registry.k8s.io=registry.corp:5000/k8s"


def _host(value: str, what: str, text: str) -> str:
    """``value`` if it is a registry host as image references spell one (``.``, ``:`` or
    ``localhost``); Docker Hub aliases become ``docker.io``."""
    try:
        registry = Reference.parse(f"{value}/x").registry
    except ImgmirrorError:
        registry = ""
    if registry == DOCKER_HUB and value.lower() in ("docker.io", "index.docker.io"):
        return DOCKER_HUB
    if registry != value or not value:
        raise ImgmirrorError(
            f"mirror {text!r}: {what} {value!r} is not a registry host (it needs a '.' or "
            "a ':port', or must be localhost)",
            hint=_MIRROR_HINT,
            setting="mirrors",
        )
    return registry


@attrs.frozen
class Mirror:
    """Pulls of ``source/...`` served by ``scheme://host/prefix/...``."""

    source: str
    host: str
    prefix: str = ""
    scheme: Literal["https", "http"] = "https"

    @classmethod
    def parse(cls, text: str) -> Mirror:
        """Parse ``SOURCE=[http(s)://]MIRROR[/PREFIX]``.

        Raises:
            ImgmirrorError: no ``=``, or a side that is not a registry host, or a bad prefix.
        """
        source, sep, target = text.partition("=")
        if not sep:
            raise ImgmirrorError(
                f"mirror {text!r} has no '='", hint=_MIRROR_HINT, setting="mirrors"
            )
        scheme: Literal["https", "http"] = "https"
        for prefix in ("https://", "http://"):
            if target.startswith(prefix):
                scheme = "http" if prefix == "http://" else "https"
                target = target[len(prefix) :]
        host, _, path = target.strip("/").partition("/")
        source_host = _host(source.strip(), "source", text)
        mirror_host = _host(host, "mirror", text)
        if path:
            try:
                Reference.parse(f"{mirror_host}/{path}/x")
            except ImgmirrorError:
                raise ImgmirrorError(
                    f"mirror {text!r}: {path!r} is not a valid repository path prefix",
                    hint="use lowercase path components such as k8s or mirror/k8s",
                ) from None
        return cls(source_host, mirror_host, path, scheme)

    @property
    def location(self) -> str:
        """``host/prefix`` (podman's ``location``, docker's certs.d name is just ``host``)."""
        return f"{self.host}/{self.prefix}" if self.prefix else self.host

    def rewrite(self, reference: Reference) -> Reference:
        """Where ``reference`` (of this mirror's source) lives on the mirror."""
        path = f"{self.prefix}/{reference.repository}" if self.prefix else reference.repository
        return attrs.evolve(reference, registry=self.host, repository=path)


@attrs.frozen
class Tls:
    """PEM bytes to install next to each runtime's configuration."""

    ca: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    insecure: bool = False


@attrs.frozen
class NodeConfig(Mapping[str, bytes]):
    """The files (``{path relative to /etc: bytes}``), plus what to print: ``snippets``
    (lines for files imgmirror does not edit) and ``notes`` (what a runtime cannot do)."""

    files: Mapping[str, bytes]
    snippets: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    sandbox_image: str | None = None

    def __getitem__(self, key: str) -> bytes:
        return self.files[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _pem_files(directory: str, tls: Tls) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if tls.ca is not None:
        files[f"{directory}/ca.crt"] = tls.ca
    if tls.client_cert is not None and tls.client_key is not None:
        files[f"{directory}/client.cert"] = tls.client_cert
        files[f"{directory}/client.key"] = tls.client_key
    return files


def _containerd(
    source: str, mirrors: Sequence[Mirror], tls: Tls, fallback: bool
) -> dict[str, bytes]:
    directory = f"containerd/certs.d/{source}"
    server = f"https://{DOCKER_HUB_API if source == DOCKER_HUB else source}"
    lines = ["# written by imgmirror node-config"]
    if fallback:
        lines.append(f"server = {_toml(server)}")
    for mirror in mirrors:
        url = f"{mirror.scheme}://{mirror.host}"
        if mirror.prefix:
            url += f"/v2/{mirror.prefix}"
        lines += ["", f"[host.{_toml(url)}]", '  capabilities = ["pull", "resolve"]']
        if mirror.prefix:
            lines.append("  override_path = true")
        if tls.insecure:
            lines.append("  skip_verify = true")
        if tls.ca is not None:
            lines.append('  ca = "ca.crt"')
        if tls.client_cert is not None:
            lines.append('  client = [["client.cert", "client.key"]]')
    files = {f"{directory}/hosts.toml": ("\n".join(lines) + "\n").encode()}
    files.update(_pem_files(directory, tls))
    return files


def _registries_conf(by_source: Mapping[str, list[Mirror]], tls: Tls, fallback: bool) -> bytes:
    lines = ["# written by imgmirror node-config (containers-registries.conf(5), v2 format)"]
    for source, mirrors in by_source.items():
        location = source if fallback else mirrors[0].location
        insecure = tls.insecure or (not fallback and mirrors[0].scheme == "http")
        lines += ["", "[[registry]]", f"prefix = {_toml(source)}", f"location = {_toml(location)}"]
        if insecure:
            lines.append("insecure = true")
        for mirror in mirrors if fallback else mirrors[1:]:
            lines += ["", "[[registry.mirror]]", f"location = {_toml(mirror.location)}"]
            if tls.insecure or mirror.scheme == "http":
                lines.append("insecure = true")
    return ("\n".join(lines) + "\n").encode()


def _docker(mirrors: Sequence[Mirror], tls: Tls, notes: list[str]) -> dict[str, bytes]:
    daemon: dict[str, list[str]] = {}
    for mirror in mirrors:
        if mirror.source != DOCKER_HUB:
            notes.append(
                f"docker: registry-mirrors only apply to Docker Hub; pulls of {mirror.source} "
                f"are not redirected (pull {mirror.location}/... names instead, or use "
                "containerd or CRI-O)"
                + (
                    "; the mirror's certs.d is written for that"
                    if tls.ca or tls.client_cert
                    else ""
                )
            )
        elif mirror.prefix:
            notes.append(
                f"docker: registry-mirrors cannot carry a path ({mirror.location}); "
                "no registry-mirrors entry written for it"
            )
        else:
            daemon.setdefault("registry-mirrors", []).append(f"{mirror.scheme}://{mirror.host}")
        if (tls.insecure or mirror.scheme == "http") and mirror.host not in daemon.get(
            "insecure-registries", []
        ):
            daemon.setdefault("insecure-registries", []).append(mirror.host)
    files: dict[str, bytes] = {}
    if daemon:
        files["docker/daemon.json"] = (json.dumps(daemon, indent=2) + "\n").encode()
        notes.append("docker: merge docker/daemon.json into an existing one, then restart dockerd")
    for host in dict.fromkeys(m.host for m in mirrors):
        files.update(_pem_files(f"docker/certs.d/{host}", tls))
    return files


def _sandbox(image: Reference, mirrors: Sequence[Mirror]) -> Reference:
    for mirror in mirrors:
        if mirror.source == image.registry:
            return mirror.rewrite(image)
    return image


def _snippets(runtimes: Sequence[Runtime], sandbox: str, root: str) -> tuple[str, ...]:
    snippets: list[str] = []
    if "containerd" in runtimes:
        snippets.append(
            f"# {root}/containerd/config.toml (version = 2): point the CRI plugin at the "
            "hosts directory and the pause image\n"
            '[plugins."io.containerd.grpc.v1.cri"]\n'
            f"  sandbox_image = {_toml(sandbox)}\n"
            '[plugins."io.containerd.grpc.v1.cri".registry]\n'
            f"  config_path = {_toml(root + '/containerd/certs.d')}"
        )
    if "crio" in runtimes:
        snippets.append(f"# {root}/crio/crio.conf, [crio.image]\npause_image = {_toml(sandbox)}")
    snippets.append(
        f"# kubelet before 1.27 (later ones take the runtime's pause image)\n"
        f"--pod-infra-container-image={sandbox}"
    )
    return tuple(snippets)


def build_node_config(
    mirrors: Sequence[Mirror],
    *,
    tls: Tls | None = None,
    runtimes: Sequence[Runtime] = RUNTIMES,
    sandbox_image: str | None = None,
    fallback: bool = True,
    root: str = "/etc",
) -> NodeConfig:
    """The files and snippets that redirect pulls of each mirror's source to the mirror.

    Args:
        mirrors: in order of preference; several for one source are tried in that order.
        tls: CA / client certificate bytes to install, and whether to skip verification.
        runtimes: which runtimes to write for.
        sandbox_image: the pause image (default :data:`DEFAULT_SANDBOX_IMAGE`); rewritten to
            the mirror when a mirror serves its registry.
        fallback: whether runtimes may still pull from the source when the mirror fails.
        root: where the tree will be installed (only used in the printed snippets).

    Raises:
        ImgmirrorError: no mirrors, or a sandbox image that is not a reference.
    """
    if not mirrors:
        raise ImgmirrorError("no mirror given", hint=_MIRROR_HINT, setting="mirrors")
    tls = tls or Tls()
    by_source: dict[str, list[Mirror]] = {}
    for mirror in mirrors:
        by_source.setdefault(mirror.source, []).append(mirror)
    files: dict[str, bytes] = {}
    notes: list[str] = []
    if "containerd" in runtimes:
        for source, group in by_source.items():
            files.update(_containerd(source, group, tls, fallback))
    if "crio" in runtimes:
        files[DROP_IN] = _registries_conf(by_source, tls, fallback)
        for host in dict.fromkeys(m.host for m in mirrors):
            files.update(_pem_files(f"containers/certs.d/{host}", tls))
    if "docker" in runtimes:
        files.update(_docker(mirrors, tls, notes))
        if not fallback:
            notes.append("docker: always falls back to Docker Hub when a mirror fails")
    sandbox = str(_sandbox(Reference.parse(sandbox_image or DEFAULT_SANDBOX_IMAGE), mirrors))
    return NodeConfig(
        files=dict(sorted(files.items())),
        snippets=_snippets(runtimes, sandbox, root.rstrip("/")),
        notes=tuple(notes),
        sandbox_image=sandbox,
    )
