"""``imgmirror doctor``: why can (or can't) this node pull these images?

[doctor][] reads the node's configuration
([imgmirror.nodes.nodeview.read_node][imgmirror.nodes.nodeview.read_node]),
then for each image follows the path its runtime would take and tries each host for real:

- containerd: the hosts of ``certs.d/<registry>/hosts.toml`` in order (mirrors, then the
  ``server``, or ``https://<registry>`` when there is none), each with the CA and client
  certificates its entry names, ``skip_verify``, plain HTTP, ``override_path``; a host that
  fails (unreachable, TLS, 401, no such tag) makes containerd try the next one, as its
  resolver does, and the first that answers serves the pull;
- CRI-O/podman: the ``[[registry]]`` of ``registries.conf(.d)`` whose prefix matches, its
  mirrors then its location, with ``containers/certs.d``;
- docker (cri-dockerd): ``daemon.json``'s ``registry-mirrors`` for Docker Hub, then the
  registry, with ``docker/certs.d`` and ``insecure-registries``;
- credentials as the node would send them: what the kubelet finds for the image's registry
  (the pod's ``imagePullSecrets`` given with ``secret``, then ``/var/lib/kubelet/config.json``),
  which containerd then sends to every host it tries; without them, containerd's
  ``registry.configs."HOST".auth`` per host (CRI-O: its ``global_auth_file``).

The sandbox (pause) image is pulled by the runtime itself, without the kubelet's credentials;
it is checked the same way, and against the pause version kubeadm expects for the node's
Kubernetes version ([imgmirror.nodes.kubeadm][imgmirror.nodes.kubeadm]). One [Verdict][] per image:
``ok via
HOST``, or the first step that fails and what to change.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.auth.dockerconfig import DockerConfig, config_from_json
from imgmirror.auth.pullsecret import config_from_secret, is_secret, parse_documents
from imgmirror.errors import (
    AuthenticationError,
    CredentialsError,
    ImgmirrorError,
    NetworkError,
    NotFound,
    PermissionDenied,
    PlatformNotFound,
    TLSVerificationError,
)
from imgmirror.model.manifest import ImageIndex, ImageManifest
from imgmirror.model.platform import Platform
from imgmirror.model.reference import DOCKER_HUB, DOCKER_HUB_API, Reference
from imgmirror.nodes.kubeadm import expected_pause
from imgmirror.nodes.nodeview import Host, NodeView, containerd_hosts, read_node
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import RetryPolicy

__all__ = ["Attempt", "DoctorReport", "Verdict", "doctor", "pod_images"]

_WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job",
              "ReplicationController"}  # fmt: skip


@attrs.frozen
class Attempt:
    """One host tried for one image."""

    host: str
    ok: bool
    step: str  # "pull", "tls", "credentials", "tag", "platform", "blob", "unreachable", ...
    message: str
    fix: str = ""


@attrs.frozen
class Verdict:
    """Whether the node would pull ``image``, and through which host or why not."""

    image: str
    ok: bool
    role: Literal["image", "sandbox"] = "image"
    via: str | None = None
    step: str = ""
    problem: str = ""
    fix: str = ""
    attempts: tuple[Attempt, ...] = ()
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        """``ok IMAGE via HOST`` or ``FAIL IMAGE: problem; fix``."""
        what = f"{self.image} (sandbox image)" if self.role == "sandbox" else self.image
        if self.ok:
            return f"ok {what} via {self.via}"
        return f"FAIL {what}: {self.problem}" + (f"; {self.fix}" if self.fix else "")

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class DoctorReport:
    """The verdicts, in the order the images were given (the sandbox image last)."""

    runtime: str
    verdicts: tuple[Verdict, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)


# -- inputs ----------------------------------------------------------------------------------


def _pod_spec(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    kind, spec = doc.get("kind"), doc.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template") if isinstance(spec, Mapping) else None
    if kind in (*_WORKLOADS, "CronJob") and isinstance(template, Mapping):
        inner = template.get("spec")
        return inner if isinstance(inner, Mapping) else None
    return None


def pod_images(text: str, source: str) -> tuple[list[str], list[str]]:
    """``(images, imagePullSecrets names)`` of every Pod or workload in a manifest file."""
    images: list[str] = []
    secrets: list[str] = []
    for doc in parse_documents(text, source):
        spec = _pod_spec(doc) if isinstance(doc, Mapping) else None
        if spec is None:
            continue
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for container in spec.get(key) or []:
                image = container.get("image") if isinstance(container, Mapping) else None
                if isinstance(image, str) and image not in images:
                    images.append(image)
        for ref in spec.get("imagePullSecrets") or []:
            name = ref.get("name") if isinstance(ref, Mapping) else None
            if isinstance(name, str) and name not in secrets:
                secrets.append(name)
    return images, secrets


@attrs.frozen
class _Secret:
    name: str
    config: DockerConfig | None
    problem: str | None


def _secrets(text: str, source: str) -> list[_Secret]:
    found: list[_Secret] = []
    for doc in parse_documents(text, source):
        if not is_secret(doc):
            continue
        meta = doc.get("metadata")
        name = str(meta.get("name", "")) if isinstance(meta, Mapping) else ""
        try:
            found.append(_Secret(name, config_from_secret(doc, f"secret {name or source}"), None))
        except CredentialsError as exc:
            fix = f" ({exc.hint})" if exc.hint else ""
            found.append(_Secret(name, None, f"{exc.message}{fix}"))
    return found


def _read_text(path: str | os.PathLike[str], what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImgmirrorError(f"cannot read {what} {path}: {exc}") from None


# -- trying one host -------------------------------------------------------------------------


def _options(host: Host, scratch: Path, timeout: float) -> ClientOptions:
    directory = scratch / host.host
    directory.mkdir(parents=True, exist_ok=True)
    if host.ca_files:
        with (directory / "ca.crt").open("wb") as out:
            for ca in host.ca_files:
                out.write(ca.read_bytes() + b"\n")
    if host.client_pairs:
        cert, key = host.client_pairs[0]
        shutil.copyfile(cert, directory / "client.cert")
        shutil.copyfile(key, directory / "client.key")
    insecure = frozenset({host.host}) if host.scheme == "http" or host.skip_verify else frozenset()
    return ClientOptions(
        retry=RetryPolicy(attempts=1),
        timeout=timeout,
        connect_timeout=min(5.0, timeout),
        certs_dirs=(str(scratch),),
        insecure_registries=insecure,
    )


def _fail(host: Host, step: str, message: str, fix: str) -> Attempt:
    return Attempt(host.url, False, step, message, fix)


def _explain(host: Host, exc: ImgmirrorError, credential: tuple[Credential, str] | None) -> Attempt:
    if isinstance(exc, TLSVerificationError):
        if host.ca_files:
            fix = (f"the CA file {host.ca_files[0]} does not sign {host.host}'s certificate: "
                   "replace it with the CA that does")  # fmt: skip
        else:
            fix = (
                f"put the CA that signs {host.host}'s certificate next to hosts.toml and name "
                'it in its entry (ca = "ca.crt"); imgmirror node-config --ca-file writes both'
            )
        return _fail(host, "tls", exc.message, fix)
    if isinstance(exc, AuthenticationError | PermissionDenied):
        if credential is None:
            return _fail(host, "credentials", f"{host.host} wants credentials and the node sends "
                         "none", f'give containerd registry.configs."{host.host}".auth '
                         "(imgmirror node-config --creds writes it) or a pull secret for the "
                         "image's registry")  # fmt: skip
        who, where = credential[0].username, credential[1]
        return _fail(host, "credentials", f"{host.host} refused user {who!r} (from {where})",
                     f"fix the user or password in {where}")  # fmt: skip
    if isinstance(exc, NotFound):
        return _fail(host, "tag", exc.message, f"copy the image to {host.host} (imgmirror copy)")
    if isinstance(exc, NetworkError):
        return _fail(host, "unreachable", f"{host.host} cannot be reached ({exc.message})",
                     "is the mirror up and its name and port right?")  # fmt: skip
    return _fail(host, "registry", exc.message, exc.hint or "")


def _pull_at(
    host: Host,
    ref: Reference,
    credential: tuple[Credential, str] | None,
    *,
    platform: Platform,
    scratch: Path,
    timeout: float,
) -> Attempt:
    prefix = host.prefix
    if prefix is None:
        return _fail(host, "unsupported", f"{host.url}: a path without override_path",
                     "doctor follows /v2/PREFIX paths with override_path = true only")  # fmt: skip
    repo = f"{prefix}/{ref.repository}" if prefix else ref.repository
    where = f"{host.host}/{repo}"
    options = _options(host, scratch, timeout)
    try:
        with RegistryClient(host.host, credential=credential and credential[0],
                            options=options) as client:  # fmt: skip
            top = client.get_manifest(repo, ref.identifier)
            image = top
            if isinstance(top, ImageIndex):
                try:
                    chosen = top.select(platform)
                except PlatformNotFound as exc:
                    return _fail(host, "platform", f"{where}:{ref.identifier} has no {platform} "
                                 f"image ({exc.message})", "copy the image with that platform "
                                 "(imgmirror copy --platform, or all platforms)")  # fmt: skip
                image = client.get_manifest(repo, str(chosen.digest))
            assert isinstance(image, ImageManifest)
            for blob in (image.config, *image.layers):
                if not client.blob_exists(repo, blob.digest):
                    return _fail(host, "blob", f"{where} lacks blob {blob.digest}",
                                 "copy the image again (imgmirror copy)")  # fmt: skip
    except ImgmirrorError as exc:
        return _explain(host, exc, credential)
    return Attempt(host.url, True, "pull", f"{where}:{ref.identifier}")


# -- following the runtime's path ------------------------------------------------------------


def _crio_hosts(view: NodeView, ref: Reference) -> list[Host]:
    name = f"{ref.registry}/{ref.repository}"
    match = max(
        (r for r in view.registries if name == r.prefix or name.startswith(r.prefix + "/")
         or ref.registry == r.prefix),
        key=lambda r: len(r.prefix), default=None,
    )  # fmt: skip
    locations = [(ref.registry, False)]
    if match is not None:
        locations = [*match.mirrors, (match.location, match.insecure)]
    hosts: list[Host] = []
    for location, insecure in locations:
        host, _, path = location.partition("/")
        certs = [view.root / "etc" / d / "certs.d" / host for d in ("containers", "docker")]
        cas = tuple(c for d in certs if d.is_dir() for c in sorted(d.glob("*.crt")))
        hosts.append(Host("http" if insecure else "https", host,
                          f"/v2/{path}" if path else "/v2", bool(path), ca_files=cas,
                          skip_verify=insecure))  # fmt: skip
    return hosts


def _crio_auth(view: NodeView) -> DockerConfig | None:
    path = view.root / "etc" / "containers" / "auth.json"
    try:
        return config_from_json(json.loads(path.read_text()), str(path))
    except (OSError, ValueError, CredentialsError):
        return None


def _endpoint(url: str) -> Host:
    scheme, _, host = url.partition("://") if "://" in url else ("https", "", url)
    return Host(scheme, host.split("/", 1)[0])


def _docker_hosts(view: NodeView, ref: Reference) -> list[Host]:
    """dockerd: ``registry-mirrors`` (Docker Hub only), then the registry; ``certs.d``."""
    insecure = {str(h) for h in view.docker.get("insecure-registries") or []}
    hosts = [_endpoint(str(u).rstrip("/")) for u in view.docker.get("registry-mirrors") or []]
    hosts = hosts if ref.registry == DOCKER_HUB else []
    last = DOCKER_HUB_API if ref.registry == DOCKER_HUB else ref.registry
    out: list[Host] = []
    for host in [*hosts, Host("https", last, is_server=True)]:
        certs = view.root / "etc" / "docker" / "certs.d" / host.host
        pair = (certs / "client.cert", certs / "client.key")
        out.append(attrs.evolve(
            host,
            ca_files=tuple(sorted(certs.glob("*.crt"))) if certs.is_dir() else (),
            client_pairs=(pair,) if pair[0].exists() and pair[1].exists() else (),
            skip_verify=host.host in insecure or host.scheme == "http",
        ))  # fmt: skip
    return out


def _hosts(view: NodeView, ref: Reference, runtime: str) -> tuple[list[Host], list[str]]:
    if runtime == "crio":
        return _crio_hosts(view, ref), []
    if runtime == "docker":
        return _docker_hosts(view, ref), []
    config = view.containerd
    if config.config_path:
        found = containerd_hosts(config.config_path, ref.registry, view.root)
        return list(found.hosts), [found.problem] if found.problem else []
    legacy = [_endpoint(e) for e in config.mirrors.get(ref.registry, ())]
    return [*legacy, Host("https", ref.registry, is_server=True)], [
        "containerd has no config_path: the deprecated registry.mirrors apply"
    ]


def _host_credential(
    view: NodeView, host: Host, runtime: str, kubelet: tuple[Credential, str] | None
) -> tuple[Credential, str] | None:
    if kubelet is not None:
        return kubelet  # containerd sends the kubelet's credentials to every host it tries
    if runtime == "docker":
        return None  # dockerd keeps none: only what the kubelet (cri-dockerd) passes
    if runtime == "crio":
        auth = _crio_auth(view)
        found = auth.lookup(host.host).credential if auth else None
        return (found, "/etc/containers/auth.json") if found else None
    found = view.containerd.auths.get(host.host)
    return (found, f'config.toml registry.configs."{host.host}".auth') if found else None


def _verdict(
    view: NodeView,
    image: str,
    *,
    runtime: str,
    kubelet: tuple[Credential, str] | None,
    platform: Platform,
    timeout: float,
    role: Literal["image", "sandbox"] = "image",
    secret_problems: Sequence[str] = (),
) -> Verdict:
    try:
        ref = Reference.parse(image)
    except ImgmirrorError as exc:
        return Verdict(image, False, role, step="reference", problem=exc.message)
    hosts, warnings = _hosts(view, ref, runtime)
    attempts: list[Attempt] = []
    scratch = Path(tempfile.mkdtemp(prefix="imgmirror-doctor-"))
    try:
        for host in hosts:
            if not {"pull", "resolve"} & host.capabilities:
                continue
            credential = _host_credential(view, host, runtime, kubelet)
            attempt = _pull_at(
                host, ref, credential, platform=platform, scratch=scratch, timeout=timeout
            )
            attempts.append(attempt)
            if attempt.ok:
                return Verdict(str(ref), True, role, via=host.host, attempts=tuple(attempts),
                               warnings=tuple(warnings))  # fmt: skip
            if attempt.step in ("platform", "blob"):
                break  # resolved here: containerd does not try another host
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _failed(ref, role, hosts, attempts, [*warnings, *secret_problems])


def _failed(
    ref: Reference,
    role: Literal["image", "sandbox"],
    hosts: Sequence[Host],
    attempts: Sequence[Attempt],
    warnings: Sequence[str],
) -> Verdict:
    if not attempts:
        return Verdict(str(ref), False, role, step="hosts", problem="no host may pull",
                       fix="give a host capabilities = [\"pull\", \"resolve\"]")  # fmt: skip
    first = attempts[0]
    fallback = any(h.host == ref.registry for h in hosts)
    tail = []
    if len(attempts) > 1:
        tail.append("then " + "; ".join(f"{a.host}: {a.message}" for a in attempts[1:]))
    elif not fallback and first.step not in ("platform", "blob"):
        tail.append(f"and no fallback to {ref.registry}")
    problem = f"{first.host}: {first.message}" + (f" ({', '.join(tail)})" if tail else "")
    fix = first.fix
    if role == "sandbox" and first.step == "credentials" and "pull secret" in fix:
        fix = (f'give containerd registry.configs."{_host_of(first.host)}".auth (imgmirror '
               "node-config --creds writes it): the runtime pulls the sandbox image itself, so "
               "pull secrets never reach it")  # fmt: skip
    if first.step == "credentials" and warnings:
        fix = f"{fix}; " + "; ".join(warnings)
    return Verdict(str(ref), False, role, step=first.step, problem=problem, fix=fix,
                   attempts=tuple(attempts), warnings=tuple(warnings))  # fmt: skip


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _kubelet_credential(
    view: NodeView, ref: Reference, secrets: Iterable[_Secret]
) -> tuple[Credential, str] | None:
    for secret in secrets:
        if secret.config is not None:
            found = secret.config.lookup(ref.registry).credential
            if found is not None:
                return found, f"secret {secret.name}"
    if view.kubelet_config is not None:
        found = view.kubelet_config.lookup(ref.registry).credential
        if found is not None:
            return found, "/var/lib/kubelet/config.json"
    return None


def _sandbox_checks(view: NodeView, runtime: str, version: str | None) -> tuple[str, list[str]]:
    sandbox = view.kubelet_sandbox or view.containerd.sandbox_image
    warnings: list[str] = []
    expected = expected_pause(version) if version else None
    try:
        ref = Reference.parse(sandbox)
    except ImgmirrorError:
        return sandbox, warnings
    if expected and ref.repository.rsplit("/", 1)[-1] == "pause" and ref.tag != expected:
        where = "sandbox_image" if view.containerd.version == 1 else "pinned_images.sandbox"
        warnings.append(
            f"kubeadm for Kubernetes {version} uses pause:{expected} but the node's sandbox "
            f"image is {sandbox} (kubeadm#2801): an offline node pre-loaded with kubeadm's "
            f"images lacks it; set {where} to {ref.registry}/{ref.repository}:{expected}"
        )
    if runtime == "crio":
        warnings.append("CRI-O's pause_image is not read: the kubelet flag or containerd's applies")
    return sandbox, warnings


def doctor(
    images: Sequence[str] = (),
    *,
    node_root: str | os.PathLike[str] = "/",
    secret: str | os.PathLike[str] | None = None,
    pod: str | os.PathLike[str] | None = None,
    kubernetes_version: str | None = None,
    platform: str | Platform | None = None,
    runtime: str | None = None,
    timeout: float = 10.0,
) -> DoctorReport:
    """Would the node under ``node_root`` pull ``images`` (and its sandbox image)?

    Args:
        images: image references, as pods name them.
        node_root: the node's ``/`` (a copy of its ``/etc`` and ``/var/lib/kubelet`` will do).
        secret: a file with the pull Secret(s) (``kubectl get secret -o yaml``).
        pod: a Pod or workload manifest: its images and ``imagePullSecrets`` are checked.
        kubernetes_version: the node's Kubernetes version (default: the kube-apiserver
            manifest's image tag, if the node has one), for kubeadm's pause version.
        platform: the node's platform (default: this machine's).
        runtime: ``containerd``, ``crio`` or ``docker`` (default: containerd, or CRI-O on a
            node configured for CRI-O only).
        timeout: seconds for each host to answer.

    Raises:
        ImgmirrorError: an unreadable or malformed secret or pod file.
    """
    view = read_node(Path(node_root))
    kind = runtime or view.runtime
    if kind not in ("containerd", "crio", "docker"):
        raise ImgmirrorError(f"unknown runtime {kind!r}", hint="use containerd, crio or docker")
    wanted = list(images)
    notes: list[str] = []
    names: list[str] | None = None
    if pod is not None:
        found, names = pod_images(_read_text(pod, "pod file"), str(pod))
        wanted += [i for i in found if i not in wanted]
    secrets = _secrets(_read_text(secret, "secret file"), str(secret)) if secret else []
    if names is not None:
        given = {s.name for s in secrets}
        notes += [f"the pod's imagePullSecret {n} was not given (--secret)" for n in names
                  if n not in given]  # fmt: skip
        secrets = [s for s in secrets if s.name in names]
    problems = [s.problem for s in secrets if s.problem]
    if view.kubelet_problem:
        problems.append(view.kubelet_problem)
    target = platform if isinstance(platform, Platform) else (
        Platform.parse(platform) if platform else Platform.host()
    )  # fmt: skip
    verdicts = []
    for image in wanted:
        ref = Reference.parse(image)
        kubelet = _kubelet_credential(view, ref, secrets)
        verdicts.append(_verdict(view, image, runtime=kind, kubelet=kubelet, platform=target,
                                 timeout=timeout, secret_problems=problems))  # fmt: skip
    sandbox, warnings = _sandbox_checks(view, kind, kubernetes_version or view.kubernetes_version)
    checked = _verdict(view, sandbox, runtime=kind, kubelet=None, platform=target,
                       timeout=timeout, role="sandbox")  # fmt: skip
    verdicts.append(attrs.evolve(checked, warnings=(*checked.warnings, *warnings)))
    return DoctorReport(kind, tuple(verdicts), tuple(notes))
