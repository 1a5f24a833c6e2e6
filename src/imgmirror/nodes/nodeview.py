"""A node's pull configuration as values, read from a tree laid out like ``/``.

[read_node][] reads what decides where a node's runtime pulls an image from and what it
sends: containerd's ``config.toml`` (``config_path``, ``sandbox_image`` or containerd 2's
``pinned_images.sandbox``, the legacy ``registry.mirrors``/``configs``), its
``certs.d/<host>/hosts.toml`` files, CRI-O's and podman's ``registries.conf(.d)``, docker's
``daemon.json``, the kubelet's ``config.json`` and flags, and the Kubernetes version a kubeadm
control plane runs. [containerd_hosts][] then lists the hosts containerd would try for
one registry, in its order, as containerd 1.6 builds them (``remotes/docker/config/hosts.go``):
each ``[host]`` entry, then the root ``server``, or ``https://<registry>`` when there is none;
a ``hosts.toml`` it cannot parse (containerd 1.6 refuses one without a ``host`` table) is
ignored, as containerd ignores it. Nothing here opens a connection.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.auth.dockerconfig import DockerConfig, entry_credential
from imgmirror.auth.pullsecret import parse_authfile
from imgmirror.errors import CredentialsError
from imgmirror.model.reference import DOCKER_HUB, DOCKER_HUB_API

__all__ = [
    "ContainerdView",
    "Host",
    "HostsFile",
    "NodeView",
    "RegistriesConf",
    "containerd_hosts",
    "read_node",
]

#: containerd 1.6's and 2.0's ``sandbox_image`` when the config does not set it.
DEFAULT_SANDBOX = {1: "registry.k8s.io/pause:3.6", 2: "registry.k8s.io/pause:3.10"}
_MAX_FILE = 1024 * 1024
_ALL_CAPABILITIES = frozenset({"pull", "resolve", "push"})
_PAUSE_FLAG = re.compile(r"--pod-infra-container-image[= ]([^\s\"']+)")
_APISERVER_IMAGE = re.compile(r"image:\s*\S*kube-apiserver:(v[0-9][^\s\"']*)")


@attrs.frozen
class Host:
    """One host containerd (or CRI-O) would try, in order."""

    scheme: str
    host: str
    path: str = "/v2"
    override_path: bool = False
    capabilities: frozenset[str] = attrs.field(factory=lambda: _ALL_CAPABILITIES)
    ca_files: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path], ...] = ()
    skip_verify: bool = False
    is_server: bool = False

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path if self.path != '/v2' else ''}"

    @property
    def prefix(self) -> str | None:
        """The repository prefix the path stands for (``/v2/k8s`` with ``override_path`` ->
        ``k8s``), ``""`` for the plain API root, None for a path imgmirror cannot follow."""
        if self.path == "/v2":
            return ""
        if self.override_path and self.path.startswith("/v2/"):
            return self.path[4:].strip("/")
        return None


@attrs.frozen
class HostsFile:
    """What containerd makes of ``certs.d`` for one registry."""

    registry: str
    hosts: tuple[Host, ...]
    source: str
    problem: str | None = None


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FILE + 1)
    except OSError:
        return None
    return data[:_MAX_FILE].decode(errors="replace")


def _toml(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    text = _read(path)
    if text is None:
        return None, None
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        return None, f"{path} is not valid TOML ({exc})"


def _in_root(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _files(value: object, base: Path, root: Path) -> tuple[Path, ...]:
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    out: list[Path] = []
    for item in items:
        if isinstance(item, str) and item:
            out.append(_in_root(root, item) if item.startswith("/") else base / item)
    return tuple(out)


def _pairs(value: object, base: Path, root: Path) -> tuple[tuple[Path, Path], ...]:
    if isinstance(value, str):
        value = [[value, ""]]
    out: list[tuple[Path, Path]] = []
    for item in value if isinstance(value, list) else []:
        pair = [item, ""] if isinstance(item, str) else item
        if isinstance(pair, list) and pair and all(isinstance(p, str) for p in pair):
            cert = _files(pair[0], base, root)[0]
            key = _files(pair[1], base, root)[0] if len(pair) > 1 and pair[1] else cert
            out.append((cert, key))
    return tuple(out)


def _host(url: str, table: Mapping[str, Any], base: Path, root: Path, server: bool) -> Host:
    scheme, _, rest = (url if "://" in url else f"https://{url}").partition("://")
    host, _, path = rest.partition("/")
    override = bool(table.get("override_path"))
    path = "/" + path.strip("/") if path.strip("/") else ""
    if not override and not path.endswith("/v2"):
        path += "/v2"
    caps = table.get("capabilities")
    return Host(
        scheme=scheme,
        host=host,
        path=path or "/v2",
        override_path=override,
        capabilities=frozenset(caps) if isinstance(caps, list) and caps else _ALL_CAPABILITIES,
        ca_files=_files(table.get("ca"), base, root),
        client_pairs=_pairs(table.get("client"), base, root),
        skip_verify=bool(table.get("skip_verify")),
        is_server=server,
    )


def _default_host(registry: str) -> Host:
    if registry == DOCKER_HUB:
        return Host("https", DOCKER_HUB_API, is_server=True)
    return Host("https", registry, is_server=True)


def _cert_files(directory: Path) -> tuple[tuple[Path, ...], tuple[tuple[Path, Path], ...]]:
    """docker's layout, which containerd reads when a host directory has no hosts.toml."""
    cas = tuple(sorted(directory.glob("*.crt")))
    pairs = tuple((c, c.with_suffix(".key")) for c in sorted(directory.glob("*.cert")))
    return cas, pairs


def _hosts_dir(roots: Iterable[Path], registry: str) -> Path | None:
    name = registry
    if ":" in registry:
        head, _, port = registry.rpartition(":")
        name = f"{head}_{port}_"
    for root in roots:
        for candidate in (root / name, root / registry, root / "_default"):
            if candidate.is_dir():
                return candidate
    return None


def containerd_hosts(roots: Iterable[Path], registry: str, node_root: Path) -> HostsFile:
    """The hosts containerd tries for ``registry`` with ``config_path`` = ``roots``."""
    directory = _hosts_dir(list(roots), registry)
    if directory is None:
        return HostsFile(registry, (_default_host(registry),), "no hosts directory")
    path = directory / "hosts.toml"
    doc, problem = _toml(path)
    if doc is not None and not isinstance(doc.get("host", None), dict):
        problem = f"{path} has no [host] table, which containerd 1.6 refuses (invalid `host` tree)"
        doc = None
    if doc is None:
        cas, pairs = _cert_files(directory)
        host = attrs.evolve(_default_host(registry), ca_files=cas, client_pairs=pairs)
        why = f"{problem}: containerd ignores it" if problem else f"{directory} (certificates)"
        return HostsFile(registry, (host,), why, problem=problem and f"{problem}; it is ignored")
    hosts = [
        _host(str(url), table, directory, node_root, server=False)
        for url, table in doc["host"].items()
        if isinstance(table, dict)
    ]
    server = doc.get("server")
    if isinstance(server, str) and server:
        hosts.append(_host(server, doc, directory, node_root, server=True))
    else:
        hosts.append(attrs.evolve(_default_host(registry), ca_files=_files(doc.get("ca"),
                                  directory, node_root)))  # fmt: skip
    return HostsFile(registry, tuple(hosts), str(path))


@attrs.frozen
class ContainerdView:
    """containerd's ``config.toml``, what matters for pulls."""

    path: Path
    exists: bool
    version: int = 1
    config_path: tuple[Path, ...] = ()
    sandbox_image: str = DEFAULT_SANDBOX[1]
    auths: Mapping[str, Credential] = attrs.field(factory=dict)
    mirrors: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    problems: tuple[str, ...] = ()


def _plugin(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    plugins = doc.get("plugins")
    value = plugins.get(name) if isinstance(plugins, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _auths(configs: object, source: str) -> dict[str, Credential]:
    out: dict[str, Credential] = {}
    for host, table in configs.items() if isinstance(configs, Mapping) else ():
        auth = table.get("auth") if isinstance(table, Mapping) else None
        if isinstance(auth, Mapping):
            try:
                credential = entry_credential(dict(auth), f"{source}: configs.{host}.auth")
            except CredentialsError:
                continue
            if credential is not None:
                out[str(host)] = credential
    return out


def _containerd(root: Path) -> ContainerdView:
    path = root / "etc" / "containerd" / "config.toml"
    doc, problem = _toml(path)
    if doc is None:
        defaults = (root / "etc/containerd/certs.d",)
        return ContainerdView(path, False, config_path=defaults,
                              problems=(problem,) if problem else ())  # fmt: skip
    version = 2 if doc.get("version") == 3 else 1
    if version == 2:
        images = _plugin(doc, "io.containerd.cri.v1.images")
        pinned = images.get("pinned_images")
        sandbox = pinned.get("sandbox") if isinstance(pinned, Mapping) else None
        registry = images.get("registry")
    else:
        cri = _plugin(doc, "io.containerd.grpc.v1.cri")
        sandbox = cri.get("sandbox_image")
        registry = cri.get("registry")
    registry = registry if isinstance(registry, Mapping) else {}
    raw_path = registry.get("config_path")
    if not raw_path and version == 2:
        raw_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
    paths = tuple(_in_root(root, p) for p in str(raw_path or "").split(":") if p)
    mirrors = registry.get("mirrors")
    legacy = {
        str(host): tuple(str(e) for e in table.get("endpoint", []))
        for host, table in (mirrors.items() if isinstance(mirrors, Mapping) else ())
        if isinstance(table, Mapping)
    }
    return ContainerdView(
        path,
        True,
        version,
        paths,
        str(sandbox) if isinstance(sandbox, str) and sandbox else DEFAULT_SANDBOX[version],
        _auths(registry.get("configs"), str(path)),
        legacy,
    )


@attrs.frozen
class RegistriesConf:
    """One ``[[registry]]`` of ``containers-registries.conf(5)``."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[tuple[str, bool], ...] = ()  # (location, insecure)


def _registries(root: Path) -> tuple[RegistriesConf, ...]:
    etc = root / "etc" / "containers"
    found: dict[str, RegistriesConf] = {}
    for path in [etc / "registries.conf", *sorted((etc / "registries.conf.d").glob("*.conf"))]:
        doc, _ = _toml(path)
        for entry in (doc or {}).get("registry", []):
            if not isinstance(entry, Mapping):
                continue
            location = str(entry.get("location", ""))
            prefix = str(entry.get("prefix") or location)
            mirrors = tuple(
                (str(m.get("location", "")), bool(m.get("insecure")))
                for m in entry.get("mirror", [])
                if isinstance(m, Mapping)
            )
            found[prefix] = RegistriesConf(prefix, location, bool(entry.get("insecure")),
                                           bool(entry.get("blocked")), mirrors)  # fmt: skip
    return tuple(found.values())


@attrs.frozen
class NodeView:
    """Everything [read_node][] found under a node root."""

    root: Path
    containerd: ContainerdView
    registries: tuple[RegistriesConf, ...] = ()
    kubelet_config: DockerConfig | None = None
    kubelet_problem: str | None = None
    kubelet_sandbox: str | None = None
    kubernetes_version: str | None = None
    docker: Mapping[str, Any] = attrs.field(factory=dict)
    crio: bool = False

    @property
    def runtime(self) -> str:
        """The runtime whose configuration this node has: containerd unless only CRI-O's."""
        if self.containerd.exists or not self.crio:
            return "containerd"
        return "crio"


def _kubelet(root: Path) -> tuple[DockerConfig | None, str | None]:
    for name in ("config.json", ".dockercfg"):
        path = root / "var" / "lib" / "kubelet" / name
        text = _read(path)
        if text is None:
            continue
        try:
            return parse_authfile(text, str(path)), None
        except CredentialsError as exc:
            return None, f"{path}: {exc.message} (the kubelet ignores it)"
    return None, None


def _flag_sandbox(root: Path) -> str | None:
    for name in ("var/lib/kubelet/kubeadm-flags.env", "etc/default/kubelet",
                 "etc/sysconfig/kubelet"):  # fmt: skip
        match = _PAUSE_FLAG.search(_read(root / name) or "")
        if match:
            return match.group(1)
    return None


def _kubernetes_version(root: Path) -> str | None:
    manifest = _read(root / "etc/kubernetes/manifests/kube-apiserver.yaml") or ""
    match = _APISERVER_IMAGE.search(manifest)
    return match.group(1) if match else None


def read_node(root: str | Path = "/") -> NodeView:
    """Read the pull configuration of the node whose ``/`` is ``root``."""
    base = Path(root)
    kubelet, problem = _kubelet(base)
    daemon: Any = None
    text = _read(base / "etc" / "docker" / "daemon.json")
    if text is not None:
        try:
            daemon = json.loads(text)
        except ValueError:
            daemon = None
    return NodeView(
        root=base,
        containerd=_containerd(base),
        registries=_registries(base),
        kubelet_config=kubelet,
        kubelet_problem=problem,
        kubelet_sandbox=_flag_sandbox(base),
        kubernetes_version=_kubernetes_version(base),
        docker=daemon if isinstance(daemon, dict) else {},
        crio=(base / "etc" / "crio").is_dir(),
    )
