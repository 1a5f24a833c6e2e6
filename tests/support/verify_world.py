"""Signed and unsigned images for the verification tests, and the check that a refused image
left nothing at the destination (no repository in the catalog, no blob, no manifest, no tag;
skopeo finds nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import imgmirror
from imgmirror.errors import PolicyRefused
from imgmirror.verify.policy import Policy

from .cosign import PrivateKey, public_pem, tag_signature
from .images import Image, make_image
from .registry import Registry
from .seed import RegistryClient
from .tools import SkopeoError, skopeo_inspect_raw

__all__ = [
    "assert_nothing_written",
    "copy_refused",
    "push",
    "sig_tag",
    "signed_image",
    "write_key",
]


def sig_tag(digest: str, suffix: str = "sig") -> str:
    return digest.replace(":", "-") + f".{suffix}"


def push(registry: Registry, repo: str, image: Image, tag: str | None = None) -> None:
    with RegistryClient(registry) as client:
        client.push_image(repo, image, tag)


def signed_image(
    registry: Registry, repo: str, key: PrivateKey | None, marker: str, tag: str = "1.0"
) -> Image:
    """An image pushed as ``repo:tag``, with a tag-based cosign signature by ``key``."""
    image = make_image(fmt="oci", marker=marker)
    push(registry, repo, image, tag)
    if key is not None:
        push(registry, repo, tag_signature(image.digest, key), sig_tag(image.digest))
    return image


def write_key(directory: Path, key: PrivateKey, name: str = "cosign.pub") -> str:
    path = directory / name
    path.write_bytes(public_pem(key))
    return str(path)


def _catalog(registry: Registry) -> list[str]:
    reply = httpx.get(f"{registry.url}/v2/_catalog", timeout=10)
    reply.raise_for_status()
    doc: dict[str, Any] = reply.json()
    return list(doc.get("repositories") or [])


def assert_nothing_written(registry: Registry, repo: str, image: Image, tag: str = "1.0") -> None:
    """No trace of ``image`` at ``registry``: not the repository, a blob, a manifest or a tag."""
    assert repo not in _catalog(registry), f"{repo} was created at the destination"
    with RegistryClient(registry) as client:
        for blob in image.blobs:
            assert not client.blob_exists(repo, blob.digest), f"blob {blob.digest} arrived"
        assert not client.manifest_exists(repo, image.digest)
        assert not client.manifest_exists(repo, tag)
    try:
        skopeo_inspect_raw(registry.ref(repo, tag), registry)
    except SkopeoError:
        pass
    else:
        raise AssertionError(f"skopeo found {repo}:{tag} at the destination")


def copy_refused(
    src: Registry, dst: Registry, repo: str, policy: Policy, image: Image, *, tag: str = "1.0"
) -> str:
    """Copy ``repo:tag`` under ``policy``: refused for ``image``'s digest, in one line, with
    nothing written at ``dst``. Returns the line."""
    with pytest.raises(PolicyRefused) as caught:
        imgmirror.copy(src.ref(repo, tag), dst.ref(repo, tag), verify=policy)
    assert_nothing_written(dst, repo, image, tag)
    line = str(caught.value)
    assert "\n" not in line
    assert caught.value.digest == image.digest
    return line


def json_line(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return value
