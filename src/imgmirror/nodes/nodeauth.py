"""The credential files a node needs to pull from a mirror that wants a login, as bytes.

Each runtime reads credentials from its own place, and none of them from the files that
redirect pulls (``hosts.toml``, ``registries.conf``):

- the kubelet: ``/var/lib/kubelet/config.json`` (a docker ``config.json``), for every image it
  pulls whose name matches an entry; keyed here by the mirror's host only, so it serves images
  named by the mirror (``registry.corp:5000/k8s/...``) and never sends the mirror's password to
  the source;
- containerd's CRI plugin: ``[plugins."io.containerd.grpc.v1.cri".registry.configs."HOST".auth]``
  in ``config.toml`` (containerd 2: ``plugins."io.containerd.cri.v1.images"``), used for each
  host it contacts when the kubelet sent no credentials: the sandbox (pause) image, which the
  CRI plugin pulls by itself, and source-named images served by the mirror. containerd
  deprecates it (``configs`` since 1.5, removal planned for 2.4 as of containerd 2.3, with
  ``ImagePullSecrets``/``config_path`` named as replacements; neither carries credentials for
  a mirror or for the sandbox image, see containerd#8228), and it is still read by 1.6 to 2.3.
  containerd's ``imports`` replace a whole plugin section, so these lines cannot be a drop-in:
  they are written to a file of their own to append to ``config.toml``;
- CRI-O: ``global_auth_file`` in ``[crio.image]`` (a ``crio.conf.d`` drop-in, which CRI-O merges
  key by key), pointing at a ``containers-auth.json(5)`` file;
- podman, skopeo, buildah: the same ``auth.json`` (``--authfile`` or ``REGISTRY_AUTH_FILE``).

Everything here is pure; [imgmirror.nodes.files][imgmirror.nodes.files] writes these files with mode
0600.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from imgmirror.auth.credentials import Credential
from imgmirror.auth.dockerconfig import encode_auth

__all__ = [
    "CONTAINERD_AUTH",
    "CONTAINERS_AUTH",
    "CRIO_AUTH_DROP_IN",
    "KUBELET_CONFIG",
    "containerd_auth",
    "cri_plugin",
    "crio_auth_drop_in",
    "docker_config_json",
]

#: Relative to ``/``: where the kubelet looks for ``config.json`` first (its root directory).
KUBELET_CONFIG = "var/lib/kubelet/config.json"
#: Relative to ``/etc``.
CONTAINERD_AUTH = "containerd/imgmirror-registry-auth.toml"
CONTAINERS_AUTH = "containers/auth.json"
CRIO_AUTH_DROP_IN = "crio/crio.conf.d/50-imgmirror-auth.conf"


def cri_plugin(containerd: int) -> str:
    """The plugin that holds image settings: ``io.containerd.grpc.v1.cri`` in containerd 1.x
    (config version 2), ``io.containerd.cri.v1.images`` in 2.x (config version 3)."""
    return "io.containerd.cri.v1.images" if containerd >= 2 else "io.containerd.grpc.v1.cri"


def _entry(credential: Credential) -> dict[str, str]:
    if credential.identity_token and not credential.password:
        return {"identitytoken": credential.identity_token}
    return {"auth": encode_auth(credential.username, credential.password)}


def docker_config_json(credentials: Mapping[str, Credential]) -> bytes:
    """``{"auths": {HOST: {"auth": ...}}}``: the kubelet's ``config.json`` and
    ``containers-auth.json(5)`` alike."""
    auths = {host: _entry(cred) for host, cred in credentials.items()}
    return (json.dumps({"auths": auths}, indent=2) + "\n").encode()


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def containerd_auth(credentials: Mapping[str, Credential], containerd: int, root: str) -> bytes:
    """The ``registry.configs."HOST".auth`` tables to append to containerd's ``config.toml``."""
    version = 3 if containerd >= 2 else 2
    lines = [
        "# written by imgmirror node-config: credentials for containerd's CRI plugin.",
        f"# Append to {root}/containerd/config.toml (version = {version}) and restart containerd:",
        f"#   cat {root}/{CONTAINERD_AUTH} >> {root}/containerd/config.toml",
        "# containerd deprecates registry.configs.*.auth but still reads it; it is the one place",
        "# that gives the sandbox (pause) image credentials for a mirror.",
    ]
    for host, credential in credentials.items():
        lines += ["", f'[plugins."{cri_plugin(containerd)}".registry.configs.{_toml(host)}.auth]']
        if credential.identity_token and not credential.password:
            lines.append(f"  identitytoken = {_toml(credential.identity_token)}")
        else:
            lines.append(f"  username = {_toml(credential.username)}")
            lines.append(f"  password = {_toml(credential.password)}")
    return ("\n".join(lines) + "\n").encode()


def crio_auth_drop_in(root: str) -> bytes:
    """A ``crio.conf.d`` drop-in pointing CRI-O's ``global_auth_file`` at the auth file."""
    return (
        "# written by imgmirror node-config (CRI-O merges crio.conf.d drop-ins key by key)\n"
        "[crio.image]\n"
        f"global_auth_file = {_toml(f'{root}/{CONTAINERS_AUTH}')}\n"
    ).encode()
