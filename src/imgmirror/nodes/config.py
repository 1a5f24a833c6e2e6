"""What a node needs so that its container runtime pulls through a mirror, as ``{path: bytes}``.

`node_config` builds, in pure code, the files each runtime reads, at paths relative to
``/etc``:

- containerd (1.5+, ``config_path``): ``containerd/certs.d/<source>/hosts.toml`` with one
  ``[host]`` entry per mirror (``pull``/``resolve``; ``override_path`` when the mirror has a
  path prefix; ``ca``/``client`` relative to the hosts.toml, which containerd resolves against
  its directory), the source as ``server``; without fallback the last mirror is the
  ``server`` (containerd puts ``https://<source>`` back when ``server`` is left out), and
  ``certs.d/<mirror>/hosts.toml`` for a mirror that needs a CA, a client certificate or plain
  HTTP, so names under the mirror (``registry.corp:5000/k8s/pause:3.9``) pull too;
- docker: ``docker/daemon.json`` (``registry-mirrors``, honoured for Docker Hub only, and
  ``insecure-registries``) and ``docker/certs.d/<mirror>/`` (``ca.crt``, ``client.cert``/``.key``);
- CRI-O/podman: ``containers/registries.conf.d/50-imgmirror.conf`` (``[[registry]]`` with
  ``[[registry.mirror]]``, and an ``insecure`` entry for a plain-HTTP mirror's own names) and
  ``containers/certs.d/<mirror>/``;
- credentials for a mirror that needs them ([imgmirror.nodes.nodeauth][imgmirror.nodes.nodeauth]):
the kubelet's
  ``config.json`` (outside ``/etc``: [NodeConfig.node_files][]), containerd's CRI auth
  lines, CRI-O's and podman's ``auth.json``; all listed in [NodeConfig.private][];
- the pause image (kubelet ``--pod-infra-container-image``, containerd ``sandbox_image`` or, in
  containerd 2, ``pinned_images.sandbox``, CRI-O ``pause_image``) and the ``config.toml``
  lines, as text to print, never files. The pause image keeps its source name by default,
  which the files above redirect; ``sandbox_name="mirror"`` names it under the mirror.

The caller passes the CA and client certificate bytes (read and checked by the CLI or by
[imgmirror.filetree.read_pem][imgmirror.filetree.read_pem]); nothing here touches the disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.errors import ImgmirrorError
from imgmirror.model.reference import DOCKER_HUB, DOCKER_HUB_API, Reference
from imgmirror.nodes import nodeauth

__all__ = [
    "CONTAINERD_VERSIONS",
    "DEFAULT_SANDBOX_IMAGE",
    "DROP_IN",
    "RUNTIMES",
    "Mirror",
    "NodeConfig",
    "Runtime",
    "SandboxName",
    "Tls",
    "build_node_config",
]

Runtime = Literal["containerd", "docker", "crio"]
SandboxName = Literal["source", "mirror"]
CONTAINERD_VERSIONS = (1, 2)
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
    except ImgmirrorError as exc:
        if "port" in exc.message:  # the one problem worth naming precisely
            raise ImgmirrorError(
                f"mirror {text!r}: {exc.message.split(': ', 1)[-1]}",
                hint=_MIRROR_HINT,
                setting="mirrors",
            ) from None
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
    (lines for files imgmirror does not edit) and ``notes`` (what a runtime cannot do).

    Attributes:
        node_files: files outside ``/etc``, relative to ``/`` (the kubelet's ``config.json``).
        private: the paths (of ``files`` or ``node_files``) that hold credentials: written
            0600, never printed.
        containerd: the containerd major version the lines are for (1 or 2).
    """

    files: Mapping[str, bytes]
    snippets: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    sandbox_image: str | None = None
    node_files: Mapping[str, bytes] = attrs.field(factory=dict)
    private: frozenset[str] = frozenset()
    containerd: int = 1

    def tree(self, *, node_root: bool = False) -> dict[str, bytes]:
        """Every file by the path to write it at: relative to ``/etc`` (the ``-o DIR``
        layout, without `node_files`), or with ``node_root`` relative to ``/``."""
        if not node_root:
            return dict(self.files)
        return {**{f"etc/{k}": v for k, v in self.files.items()}, **self.node_files}

    def is_private(self, path: str) -> bool:
        """Whether ``path`` (as `tree` names it) holds credentials."""
        return path in self.private or path.removeprefix("etc/") in self.private

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


def _host_lines(tls: Tls, *, prefix: bool = False, indent: str = "  ") -> list[str]:
    lines = [f'{indent}capabilities = ["pull", "resolve"]']
    if prefix:
        lines.append(f"{indent}override_path = true")
    if tls.insecure:
        lines.append(f"{indent}skip_verify = true")
    if tls.ca is not None:
        lines.append(f'{indent}ca = "ca.crt"')
    if tls.client_cert is not None:
        lines.append(f'{indent}client = [["client.cert", "client.key"]]')
    return lines


#: containerd 1.6 refuses a hosts.toml without a ``host`` table ("invalid `host` tree") and then
#: ignores the whole file, falling back to the source: an empty table keeps it valid.
_NO_HOSTS = ["", "[host]  # no mirrors besides the server above"]


def _mirror_url(mirror: Mirror) -> str:
    url = f"{mirror.scheme}://{mirror.host}"
    return f"{url}/v2/{mirror.prefix}" if mirror.prefix else url


def _containerd(
    source: str, mirrors: Sequence[Mirror], tls: Tls, fallback: bool
) -> dict[str, bytes]:
    """``certs.d/<source>/hosts.toml``. containerd appends the root-level ``server`` after the
    ``[host]`` entries and, when ``server`` is missing, ``https://<source>`` in its place: so
    without fallback the last mirror is the ``server`` (its settings at the top level)."""
    directory = f"containerd/certs.d/{source}"
    lines = ["# written by imgmirror node-config"]
    hosts = list(mirrors)
    if fallback:
        server = f"https://{DOCKER_HUB_API if source == DOCKER_HUB else source}"
        lines.append(f"server = {_toml(server)}")
    else:
        last = hosts.pop()
        lines.append("# no fallback: the last mirror is the server, so the source is never tried")
        lines.append(f"server = {_toml(_mirror_url(last))}")
        lines += _host_lines(tls, prefix=bool(last.prefix), indent="")
    for mirror in hosts:
        lines += ["", f"[host.{_toml(_mirror_url(mirror))}]"]
        lines += _host_lines(tls, prefix=bool(mirror.prefix))
    if not hosts:
        lines += _NO_HOSTS
    files = {f"{directory}/hosts.toml": ("\n".join(lines) + "\n").encode()}
    files.update(_pem_files(directory, tls))
    return files


def _needs_own_entry(mirror: Mirror, tls: Tls) -> bool:
    return mirror.scheme == "http" or tls.insecure or tls.ca is not None or bool(tls.client_cert)


def _containerd_mirror_host(mirror: Mirror, tls: Tls) -> dict[str, bytes]:
    """``certs.d/<mirror>/hosts.toml``: how to reach the mirror under its own name (its CA,
    client certificate, plain HTTP), for images named ``MIRROR/PREFIX/...``."""
    directory = f"containerd/certs.d/{mirror.host}"
    lines = [
        "# written by imgmirror node-config: the mirror under its own name",
        f"server = {_toml(f'{mirror.scheme}://{mirror.host}')}",
        *_host_lines(tls, indent=""),
        *_NO_HOSTS,
    ]
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
    own = {
        m.host for group in by_source.values() for m in group if m.scheme == "http" or tls.insecure
    }
    for host in sorted(own - set(by_source)):  # names under the mirror itself: no TLS either
        lines += ["", "[[registry]]", f"location = {_toml(host)}", "insecure = true"]
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


def _snippets(
    runtimes: Sequence[Runtime], sandbox: str, root: str, containerd: int
) -> tuple[str, ...]:
    snippets: list[str] = []
    if "containerd" in runtimes and containerd >= 2:
        snippets.append(
            f"# {root}/containerd/config.toml (version = 3, containerd 2.x): point the CRI "
            "plugin at the hosts directory and the pause image\n"
            '[plugins."io.containerd.cri.v1.images".pinned_images]\n'
            f"  sandbox = {_toml(sandbox)}\n"
            '[plugins."io.containerd.cri.v1.images".registry]\n'
            f"  config_path = {_toml(root + '/containerd/certs.d')}"
        )
    elif "containerd" in runtimes:
        snippets.append(
            f"# {root}/containerd/config.toml (version = 2, containerd 1.x): point the CRI "
            "plugin at the hosts directory and the pause image\n"
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


def _credential_files(
    credentials: Mapping[str, Credential],
    runtimes: Sequence[Runtime],
    containerd: int,
    root: str,
    notes: list[str],
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """``(files under /etc, files under /)`` holding the mirrors' credentials."""
    files: dict[str, bytes] = {}
    if "containerd" in runtimes:
        files[nodeauth.CONTAINERD_AUTH] = nodeauth.containerd_auth(credentials, containerd, root)
        notes.append(
            f"containerd: append {root}/{nodeauth.CONTAINERD_AUTH} to {root}/containerd/"
            "config.toml and restart containerd (it holds credentials, so it is not shown); "
            "containerd deprecates registry.configs.*.auth but it is the only way the pause "
            "image gets credentials for a mirror"
        )
    if "crio" in runtimes:
        files[nodeauth.CONTAINERS_AUTH] = nodeauth.docker_config_json(credentials)
        files[nodeauth.CRIO_AUTH_DROP_IN] = nodeauth.crio_auth_drop_in(root)
        notes.append(
            f"podman/skopeo: pass --authfile {root}/{nodeauth.CONTAINERS_AUTH} (or set "
            "REGISTRY_AUTH_FILE); CRI-O reads it through the crio.conf.d drop-in"
        )
    if "docker" in runtimes:
        notes.append(
            "docker: dockerd keeps no registry credentials; the kubelet's config.json "
            "serves cri-dockerd pulls of names under the mirror"
        )
    kubelet = {nodeauth.KUBELET_CONFIG: nodeauth.docker_config_json(credentials)}
    return files, kubelet


def _runtime_files(
    mirrors: Sequence[Mirror],
    tls: Tls,
    runtimes: Sequence[Runtime],
    fallback: bool,
    notes: list[str],
) -> dict[str, bytes]:
    """The files that redirect pulls (and reach the mirrors), for each runtime asked for."""
    by_source: dict[str, list[Mirror]] = {}
    for mirror in mirrors:
        by_source.setdefault(mirror.source, []).append(mirror)
    files: dict[str, bytes] = {}
    if "containerd" in runtimes:
        for source, group in by_source.items():
            files.update(_containerd(source, group, tls, fallback))
        for mirror in {m.host: m for m in mirrors if _needs_own_entry(m, tls)}.values():
            if mirror.host not in by_source:
                files.update(_containerd_mirror_host(mirror, tls))
    if "crio" in runtimes:
        files[DROP_IN] = _registries_conf(by_source, tls, fallback)
        for host in dict.fromkeys(m.host for m in mirrors):
            files.update(_pem_files(f"containers/certs.d/{host}", tls))
    if "docker" in runtimes:
        files.update(_docker(mirrors, tls, notes))
        if not fallback:
            notes.append("docker: always falls back to Docker Hub when a mirror fails")
    return files


def build_node_config(
    mirrors: Sequence[Mirror],
    *,
    tls: Tls | None = None,
    runtimes: Sequence[Runtime] = RUNTIMES,
    sandbox_image: str | None = None,
    sandbox_name: SandboxName = "source",
    fallback: bool = True,
    root: str = "/etc",
    containerd: int = 1,
    credentials: Mapping[str, Credential] | None = None,
) -> NodeConfig:
    """The files and snippets that redirect pulls of each mirror's source to the mirror.

    Args:
        mirrors: in order of preference; several for one source are tried in that order.
        tls: CA / client certificate bytes to install, and whether to skip verification.
        runtimes: which runtimes to write for.
        sandbox_image: the pause image (default [DEFAULT_SANDBOX_IMAGE][]).
        sandbox_name: ``source`` keeps its name (the files redirect it); ``mirror`` renames it
            to the mirror that serves its registry.
        fallback: whether runtimes may still pull from the source when the mirror fails.
        root: where the tree will be installed (only used in the printed snippets).
        containerd: containerd's major version (1: config version 2; 2: config version 3).
        credentials: mirror host -> the credential the node sends it.

    Raises:
        ImgmirrorError: no mirrors, or a sandbox image that is not a reference.
    """
    if not mirrors:
        raise ImgmirrorError("no mirror given", hint=_MIRROR_HINT, setting="mirrors")
    tls = tls or Tls()
    root = root.rstrip("/")
    notes: list[str] = []
    files = _runtime_files(mirrors, tls, runtimes, fallback, notes)
    node_files: dict[str, bytes] = {}
    if credentials:
        secret, node_files = _credential_files(credentials, runtimes, containerd, root, notes)
        files.update(secret)
    private = {p for p in (*files, *node_files) if p.endswith(".key") or p in _PRIVATE}
    pause = Reference.parse(sandbox_image or DEFAULT_SANDBOX_IMAGE)
    sandbox = str(_sandbox(pause, mirrors) if sandbox_name == "mirror" else pause)
    redirected = pause.registry != DOCKER_HUB and any(m.source == pause.registry for m in mirrors)
    if "docker" in runtimes and sandbox == str(pause) and redirected:
        notes.append(
            f"docker: cannot redirect {pause.registry}, so cri-dockerd pulls {sandbox} from "
            "the source; give --sandbox-name mirror for a pause image under the mirror"
        )
    return NodeConfig(
        files=dict(sorted(files.items())),
        snippets=_snippets(runtimes, sandbox, root, containerd),
        notes=tuple(notes),
        sandbox_image=sandbox,
        node_files=node_files,
        private=frozenset(private),
        containerd=containerd,
    )


_PRIVATE = frozenset({nodeauth.CONTAINERD_AUTH, nodeauth.CONTAINERS_AUTH, nodeauth.KUBELET_CONFIG})
