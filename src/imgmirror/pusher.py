"""Push the images of an archive (``docker save``, skopeo, crane, containerd, imgmirror) to a
registry, without unpacking it.

The work is planned in pure code first: :func:`~imgmirror.archive.contents.read_contents`
checks the whole archive, Docker-archive layers are measured (and their ``diff_id`` checked),
and :func:`map_destination` names every image. Only then does anything reach the registry:
blobs first (in parallel for a plain tar, in sequential passes for a compressed one), each
verified against its digest before the registry commits it; then child manifests by digest;
tags last, so a failure leaves nothing tagged.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from os import PathLike
from pathlib import Path

import attrs

from .archive.contents import DockerImage, DockerLayer, OciImage, blob_path, read_contents
from .archive.convert import BlobSource, build_manifest, measure_layer
from .archive.reader import Archive, open_archive
from .blobs import BlobEngine, BlobJob, BlobTally, Opener, once
from .credentials import Credential, CredentialInput
from .digest import Digest, verify_stream
from .errors import ArchiveError, CredentialsError, InvalidReference
from .imagetree import bottom_up
from .keychain import Keychain
from .manifest import ImageIndex, ImageManifest
from .parallel import run_parallel
from .progress import NullProgress, ProgressListener
from .reference import DOCKER_HUB, Reference
from .session import Session
from .transport.client import RegistryClient
from .transport.tls import ClientOptions

__all__ = [
    "ArchiveNamesNeedConsent",
    "ConsentInput",
    "PushResult",
    "PushTarget",
    "map_destination",
    "push",
]

log = logging.getLogger("imgmirror")

Manifest = ImageManifest | ImageIndex
_HOST = re.compile(
    r"(?:localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?"
)


def _looks_like_host(text: str) -> bool:
    return bool(_HOST.fullmatch(text)) and (
        "." in text or ":" in text or text == "localhost" or text.startswith("[")
    )


def map_destination(image_name: Reference | None, dest: str | None, single: bool) -> Reference:
    """Where one image of an archive goes.

    * No ``dest``: the name the image carries.
    * ``dest`` with a tag (``reg/repo:v1``): exactly that; only for a one-image archive.
    * ``dest`` without a tag is a registry or ``registry/prefix`` under which the image's own
      repository path and tag are kept: ``reg.corp/mirror`` + ``gcr.io/google_containers/
      pause:3.9`` -> ``reg.corp/mirror/google_containers/pause:3.9``; Docker Hub images keep
      ``library/`` (``alpine:3.19`` -> ``reg.corp/mirror/library/alpine:3.19``). For an
      image without a name it is the repository, tag ``latest``.

    Raises:
        InvalidReference: ``dest`` is malformed or cannot name this image.
    """
    if dest is None:
        if image_name is None:
            raise InvalidReference(
                "the archive does not name its image", hint="give DEST as registry/repo:tag"
            )
        return image_name
    dest = dest.strip().rstrip("/")
    if "@" in dest:
        raise InvalidReference(f"DEST {dest!r} must not contain a digest; use a tag")
    if _is_full(dest):
        if not single:
            raise InvalidReference(
                f"DEST {dest!r} has a tag, so it names one image, but the archive holds several",
                hint="give a registry or registry/prefix to push each under its own name",
            )
        return Reference.parse(dest)
    first, _, rest = dest.partition("/")
    if _looks_like_host(first):
        registry, prefix = Reference.parse(f"{first}/x").registry, rest
    else:
        registry, prefix = DOCKER_HUB, dest
    if image_name is None:
        if not single:
            raise InvalidReference(
                "the archive holds several images without names",
                hint="push them one at a time with DEST as registry/repo:tag",
            )
        if not prefix:
            raise InvalidReference(
                f"the archive does not name its image, so DEST {dest!r} needs a repository",
                hint="give DEST as registry/repo:tag",
            )
        return Reference.parse(f"{dest}:latest")
    path = f"{prefix}/{image_name.repository}" if prefix else image_name.repository
    tag = image_name.tag or "latest"
    return Reference.parse(f"{registry}/{path}:{tag}")


@attrs.frozen
class PushTarget:
    """One manifest tree to store under one destination reference."""

    ref: Reference
    top: Manifest
    children: tuple[Manifest, ...]
    blobs: tuple[Digest, ...]


@attrs.frozen
class PushResult:
    """What a push did: ``images`` is ``((destination, digest), ...)``."""

    archive: str
    layout: str
    images: tuple[tuple[str, str], ...]
    blobs_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    bytes: int
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``--json`` output)."""
        out = attrs.asdict(self)
        out["images"] = [{"name": n, "digest": d} for n, d in self.images]
        return out


# -- planning ----------------------------------------------------------------------------------


def _measure(archive: Archive, images: list[DockerImage], jobs: int) -> dict[str, BlobSource]:
    """Measure every distinct layer file of Docker-archive images."""
    layers: dict[str, DockerLayer] = {}
    for image in images:
        for layer in image.layers:
            if layer.foreign is None:
                layers.setdefault(layer.member, layer)
    if archive.seekable:
        found = run_parallel(
            lambda lay: measure_layer(archive.open(lay.member), lay), layers.values(), jobs
        )
        return {s.member or "": s for s in found}
    out = {}
    resolved = {archive.resolve(m).name: layer for m, layer in layers.items()}
    for name, chunks in archive.stream(resolved):
        source = measure_layer(chunks, resolved[name])
        out[resolved[name].member] = source
    return out


def _plan_images(
    archive: Archive, images: tuple[OciImage | DockerImage, ...], jobs: int
) -> tuple[list[tuple[tuple[Reference, ...], OciImage]], dict[Digest, BlobSource]]:
    sources: dict[Digest, BlobSource] = {}
    docker = [i for i in images if isinstance(i, DockerImage)]
    measured = _measure(archive, docker, jobs) if docker else {}
    planned = []
    for image in images:
        if isinstance(image, OciImage):
            for blob in image.blobs:
                sources.setdefault(blob.digest, BlobSource(blob, blob_path(blob.digest)))
            planned.append((image.names, image))
            continue
        descriptors = []
        for layer in image.layers:
            if layer.foreign is not None:
                descriptors.append(layer.foreign)
                continue
            source = measured[layer.member]
            sources.setdefault(source.descriptor.digest, source)
            descriptors.append(source.descriptor)
        manifest = build_manifest(image, descriptors)
        sources.setdefault(manifest.config.digest, BlobSource(manifest.config, data=image.config))
        blobs = tuple(d for d in manifest.blobs if d.digest in sources)
        planned.append((image.names, OciImage(image.names, manifest, (), blobs)))
    return planned, sources


def plan_targets(
    planned: list[tuple[tuple[Reference, ...], OciImage]], dest: str | None
) -> list[PushTarget]:
    """Name every image at the destination (pure); refuses two images on one reference."""
    single = len(planned) == 1
    targets: dict[Reference, PushTarget] = {}
    for names, image in planned:
        refs = [map_destination(None, dest, single)] if not names else []
        if names:
            chosen = names[:1] if dest is not None and _is_full(dest) else names
            refs = [map_destination(n, dest, single) for n in chosen]
        for ref in dict.fromkeys(refs):
            if ref in targets and targets[ref].top.digest != image.top.digest:
                raise ArchiveError(f"two different images in the archive would both become {ref}")
            blobs = tuple(dict.fromkeys(b.digest for b in image.blobs))
            targets[ref] = PushTarget(ref, image.top, image.children, blobs)
    return list(targets.values())


ConsentInput = bool | Callable[[tuple[str, ...]], bool]
"""``to_archive_names``: True, False, or a function asked with the registries (True = go)."""


class ArchiveNamesNeedConsent(CredentialsError):
    """Explicit credentials and no destination: the registries come from the archive.

    Attributes:
        registries: the registries the archive names, sorted.
    """

    def __init__(self, registries: tuple[str, ...]) -> None:
        super().__init__(
            "credentials were given but no destination, and the archive names the "
            f"registries {', '.join(registries)}; explicit credentials are sent only to an "
            "explicit destination",
            hint="give a destination, or consent to sending them to the archive's registries "
            "(to_archive_names)",
        )
        self.registries = registries


def check_consent(targets: list[PushTarget], consent: ConsentInput) -> None:
    """Refuse to send explicit credentials to archive-named registries without ``consent``.

    Raises:
        ArchiveNamesNeedConsent: ``consent`` is False, or a function that said no.
    """
    registries = tuple(sorted({t.ref.registry for t in targets}))
    agreed = consent(registries) if callable(consent) else consent
    if not agreed:
        raise ArchiveNamesNeedConsent(registries)


def _is_full(dest: str) -> bool:
    return not _looks_like_host(dest) and ":" in dest.strip().rstrip("/").rsplit("/", 1)[-1]


# -- execution ----------------------------------------------------------------------------------


@attrs.define
class _Uploader:
    """Hands each (client, repository, blob) of a push to the session's blob engine."""

    archive: Archive
    sources: dict[Digest, BlobSource]
    engine: BlobEngine
    progress: ProgressListener
    cancel: threading.Event = attrs.field(factory=threading.Event)
    tally: BlobTally = attrs.field(factory=BlobTally)

    def _verified(self, source: BlobSource, raw: Iterable[bytes]) -> Iterator[bytes]:
        d = source.descriptor
        what = f"blob {d.digest} ({source.member or 'config'})"
        return verify_stream(source.produce(raw), d.digest, d.size, what)

    def opener(self, source: BlobSource) -> Opener | None:
        """A restartable opener (memory or a plain tar), or None (a compressed stream)."""
        if source.data is not None:
            data = source.data
            return lambda: contextlib.nullcontext(self._verified(source, [data]))
        if self.archive.seekable and source.member is not None:
            member = source.member
            return lambda: contextlib.nullcontext(self._verified(source, self.archive.open(member)))
        return None

    def ensure(
        self, client: RegistryClient, repo: str, digest: Digest, opener: Opener | None = None
    ) -> None:
        """Make one blob present (HEAD, mount, upload), counted."""
        source = self.sources[digest]
        restartable = opener is None
        chosen = opener or self.opener(source) or _no_opener
        job = BlobJob(client, repo, source.descriptor, chosen, restartable=restartable)
        outcome = self.engine.ensure(job, verb="pushed", progress=self.progress, cancel=self.cancel)
        self.tally.add(outcome, source.descriptor.size)

    def stream_pass(
        self, pending: list[tuple[RegistryClient, str, Digest]]
    ) -> list[tuple[RegistryClient, str, Digest]]:
        """One pass over a compressed archive; returns what must wait for another pass."""
        by_member: dict[str, tuple[RegistryClient, str, Digest]] = {}
        later = []
        for client, repo, digest in pending:
            member = self.sources[digest].member
            assert member is not None
            name = self.archive.resolve(member).name
            if name in by_member:
                later.append((client, repo, digest))
            else:
                by_member[name] = (client, repo, digest)
        for name, chunks in self.archive.stream(by_member):
            client, repo, digest = by_member[name]
            self.ensure(client, repo, digest, once(self._verified(self.sources[digest], chunks)))
        return later


def _no_opener() -> contextlib.AbstractContextManager[Iterable[bytes]]:
    raise AssertionError("a streamed blob is only sent during its archive pass")


def _execute(
    archive: Archive,
    targets: list[PushTarget],
    sources: dict[Digest, BlobSource],
    clients: dict[Reference, RegistryClient],
    *,
    engine: BlobEngine,
    jobs: int,
    progress: ProgressListener,
) -> BlobTally:
    uploader = _Uploader(archive, sources, engine, progress)
    work = list(
        dict.fromkeys((clients[t.ref], t.ref.repository, d) for t in targets for d in t.blobs)
    )
    progress.planned([sources[d].descriptor for d in dict.fromkeys(w[2] for w in work)], "push")
    direct = [w for w in work if uploader.opener(sources[w[2]]) is not None]
    streamed = [w for w in work if uploader.opener(sources[w[2]]) is None]
    run_parallel(
        lambda w: uploader.ensure(*w),
        direct,
        jobs if archive.seekable else 1,
        cancel=uploader.cancel,
    )
    while streamed:
        streamed = uploader.stream_pass(streamed)
    stored: set[tuple[str, str, Digest]] = set()
    for target in targets:  # bottom-up by digest, each manifest once, then tags
        client, repo = clients[target.ref], target.ref.repository
        untagged = () if target.ref.tag is not None else (target.top,)
        for manifest in (*bottom_up(target.top, target.children), *untagged):
            if (client.registry, repo, manifest.digest) not in stored:
                stored.add((client.registry, repo, manifest.digest))
                client.put_manifest(repo, str(manifest.digest), manifest.raw, manifest.media_type)
    for target in targets:  # tags last
        if target.ref.tag is not None:
            top = target.top
            clients[target.ref].put_manifest(
                target.ref.repository, target.ref.tag, top.raw, top.media_type
            )
    return uploader.tally


def push(
    path: str | PathLike[str],
    dest: str | None = None,
    *,
    dest_creds: CredentialInput = None,
    authfile: str | None = None,
    keychain: Keychain | None = None,
    jobs: int = 4,
    options: ClientOptions | None = None,
    progress: ProgressListener | None = None,
    to_archive_names: ConsentInput = False,
) -> PushResult:
    """Push every image of an image archive to a registry.

    Args:
        path: a tarball from ``docker save``, skopeo (``docker-archive``, ``oci-archive``),
            crane, ``ctr images export`` or ``imgmirror save``; plain, gzip or zstd.
        dest: None (each image to the name it carries), a full reference with a tag (for a
            one-image archive), or a registry / registry/prefix; see :func:`map_destination`.
        dest_creds: ``"user:pass"``, ``(user, pass)`` or a Credential. They go only to
            ``dest``'s registry: with no ``dest`` the registries come from the (untrusted)
            archive, and explicit credentials are refused unless ``to_archive_names`` allows
            sending them there.
        authfile, keychain: where credentials come from when ``dest_creds`` is not given.
        jobs: blobs uploaded at once (plain tar only; compressed archives are read in order).
        options: TLS, retry and timeout settings.
        progress: receives per-blob events.
        to_archive_names: with ``dest_creds`` and no ``dest``: True, or a function called
            with the registries the archive names that returns True, to send the
            credentials to them.

    Raises:
        ArchiveNamesNeedConsent: ``dest_creds`` without ``dest`` and no consent.
        ArchiveError: the archive is unsafe, incomplete or inconsistent; nothing was pushed.
        VerificationError: a blob does not match its digest; nothing was tagged.
        ImgmirrorError: any other failure; nothing is tagged unless every blob arrived.
    """
    archive = open_archive(Path(path))
    contents = read_contents(archive)
    planned, sources = _plan_images(archive, contents.images, jobs)
    targets = plan_targets(planned, dest)
    credential = Credential.coerce(dest_creds)
    if credential is not None and dest is None:
        check_consent(targets, to_archive_names)
    for note in contents.notes:
        log.info("%s", note)
    listener = progress or NullProgress()
    with Session(options, authfile=authfile, keychain=keychain, jobs=jobs) as session:
        clients = {
            t.ref: session.client(t.ref.registry, credential, creds_hint="--dest-creds")
            for t in targets
        }
        tally = _execute(
            archive, targets, sources, clients, engine=session.blobs, jobs=jobs, progress=listener
        )
    return PushResult(
        archive=str(path),
        layout=contents.layout,
        images=tuple((str(t.ref), str(t.top.digest)) for t in targets),
        blobs_uploaded=tally.sent,
        blobs_skipped=tally.skipped,
        blobs_mounted=tally.mounted,
        bytes=tally.bytes,
        notes=contents.notes,
    )
