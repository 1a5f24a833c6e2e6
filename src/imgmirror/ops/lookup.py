"""Look at what a registry or an archive holds without copying it: tags, repositories, digests
and manifests.

[list_tags][] and [list_repositories][] follow ``Link`` pagination;
[image_digest][] resolves a reference with one ``HEAD``; [inspect][] fetches a
manifest's exact bytes (any media type: what cannot be parsed is reported, not raised) and
the image config; [inspect_archive][] lists the images an archive holds. Each takes a
client pool, so credentials and TLS settings work as for ``copy``; the one-shots are in
[imgmirror.api.lookup][imgmirror.api.lookup].
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from imgmirror.archive.contents import DockerImage, blob_path, read_contents
from imgmirror.archive.open import open_archive
from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.errors import NotFound
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.inspection import Entry, ImageInfo, describe, with_config
from imgmirror.model.manifest import Descriptor, ImageIndex, parse_manifest
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.client import RegistryClient

__all__ = [
    "Inspection",
    "image_digest",
    "inspect",
    "inspect_archive",
    "is_archive_path",
    "list_repositories",
    "list_tags",
]

_MAX_CONFIG = 8 * 1024 * 1024
#: What ``inspect`` accepts: every manifest type, schema 1 included, so it can say what it is.
_ANY_MANIFEST = (
    *mediatypes.MANIFEST_ACCEPT,
    mediatypes.SCHEMA1_SIGNED_MANIFEST,
    mediatypes.SCHEMA1_MANIFEST,
    "*/*;q=0.1",
)
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst")


@attrs.frozen
class Inspection:
    """An inspected manifest: ``info`` to show, the exact ``raw`` bytes, the ``config`` bytes
    (image manifests only)."""

    info: ImageInfo
    raw: bytes = attrs.field(repr=False)
    config: bytes | None = attrs.field(default=None, repr=False)


def is_archive_path(text: str) -> bool:
    """Whether ``text`` names an archive (an existing file, or a tarball's file name)."""
    return os.path.isfile(text) or text.endswith(_ARCHIVE_SUFFIXES)


def _client(pool: ClientPool, registry: str, creds: CredentialInput) -> RegistryClient:
    return pool.client(registry, Credential.coerce(creds, setting="creds"), role="registry")


def list_tags(
    pool: ClientPool, repository: str, *, creds: CredentialInput = None, page_size: int = 1000
) -> list[str]:
    """Every tag of ``repository`` (``registry/path``; a tag or digest in it is ignored)."""
    ref = Reference.parse(repository)
    return _client(pool, ref.registry, creds).list_tags(ref.repository, page_size)


def list_repositories(
    pool: ClientPool, registry: str, *, creds: CredentialInput = None, page_size: int = 1000
) -> list[str]:
    """Every repository of ``registry`` (``/v2/_catalog``), if the registry lists them."""
    host = Reference.parse(f"{registry.rstrip('/')}/x").registry
    return _client(pool, host, creds).catalog(page_size)


def image_digest(pool: ClientPool, image: str, *, creds: CredentialInput = None) -> Descriptor:
    """The digest (media type, size) ``image`` resolves to, from one ``HEAD``.

    Raises:
        NotFound: the tag or digest does not exist.
    """
    ref = Reference.parse(image)
    client = _client(pool, ref.registry, creds)
    found = client.head_manifest(ref.repository, ref.identifier)
    if found is None:
        raise NotFound(
            f"{ref} not found",
            status=404,
            method="HEAD",
            url=f"{client.base_url}/v2/{ref.repository}/manifests/{ref.identifier}",
            hint="check the repository name and the tag or digest",
        )
    return found


def _config(client: RegistryClient, repo: str, info: ImageInfo) -> tuple[ImageInfo, bytes | None]:
    if info.config is None:
        return info, None
    if info.config.size > _MAX_CONFIG:
        problem = f"the image config is larger than {_MAX_CONFIG} bytes; not read"
        return attrs.evolve(info, problems=(*info.problems, problem)), None
    descriptor = Descriptor(
        media_type=info.config.media_type,
        digest=Digest.parse(info.config.digest),
        size=info.config.size,
    )
    with client.open_blob(repo, descriptor) as chunks:
        raw = b"".join(chunks)
    return with_config(info, raw), raw


def inspect(
    pool: ClientPool,
    image: str,
    *,
    platform: str | Platform | None = None,
    creds: CredentialInput = None,
) -> Inspection:
    """Fetch and describe ``image``'s manifest (with ``platform``: that image of an index),
    and the config of an image manifest.

    Raises:
        NotFound: the image does not exist.
        PlatformNotFound: an index without ``platform``.
        VerificationError: the bytes do not match the digest asked for.
    """
    ref = Reference.parse(image)
    platform = Platform.parse(platform) if isinstance(platform, str) else platform
    client = _client(pool, ref.registry, creds)
    raw, content_type = client.get_manifest_bytes(ref.repository, ref.identifier, _ANY_MANIFEST)
    info = describe(str(ref), raw, content_type)
    index = parse_manifest(raw, content_type) if platform and info.is_index else None
    if platform is not None and isinstance(index, ImageIndex):
        child = index.select(platform)
        child_ref = ref.with_digest(child.digest)
        raw, content_type = client.get_manifest_bytes(
            ref.repository, str(child.digest), _ANY_MANIFEST
        )
        info = describe(str(child_ref), raw, content_type)
    info, config = _config(client, ref.repository, info)
    return Inspection(info, raw, config)


def _docker_image(image: DockerImage) -> ImageInfo:
    info = ImageInfo(
        name=", ".join(str(n) for n in image.names) or "<no name>",
        digest=str(image.config_digest),
        size=len(image.config),
        media_type="docker archive image (no manifest stored; the digest is the image ID)",
        layers=tuple(Entry(str(layer.diff_id), -1, "layer.tar") for layer in image.layers),
    )
    return with_config(info, image.config)


def inspect_archive(path: str | os.PathLike[str]) -> tuple[ImageInfo, ...]:
    """The images an archive holds: names, digests, platforms or layers, config facts.

    Raises:
        ArchiveError: not a readable image archive.
    """
    archive = open_archive(Path(path))
    contents = read_contents(archive)
    infos: list[ImageInfo] = []
    for image in contents.images:
        if isinstance(image, DockerImage):
            infos.append(_docker_image(image))
            continue
        name = ", ".join(str(n) for n in image.names) or "<no name>"
        info = describe(name, image.top.raw, image.top.media_type)
        if info.config is not None and archive.has_file(
            blob_path(Digest.parse(info.config.digest))
        ):
            info = with_config(info, archive.read(blob_path(Digest.parse(info.config.digest))))
        infos.append(info)
    return tuple(infos)
