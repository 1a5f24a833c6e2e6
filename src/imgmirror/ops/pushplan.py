"""Where each image of an archive goes when pushed, and where explicit credentials may go.

Pure code: [map_destination][] names one image at the destination, [plan_targets][]
names them all (refusing two images on one reference), [check_names][] refuses pushing
to podman-local names and sending explicit credentials to registries that only the
(untrusted) archive names, unless the caller consents.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from imgmirror.archive.contents import OciImage
from imgmirror.archive.selection import describe, local_name
from imgmirror.auth.credentials import Credential
from imgmirror.errors import (
    ArchiveError,
    ArchiveNamesNeedConsent,
    InvalidReference,
)
from imgmirror.model.manifest import ImageIndex, ImageManifest
from imgmirror.model.naming import Prefix, under_prefix
from imgmirror.model.reference import DOCKER_HUB, Reference
from imgmirror.registry.manifests import PushTarget

__all__ = [
    "ArchiveNamesNeedConsent",
    "ConsentInput",
    "check_consent",
    "check_names",
    "map_destination",
    "plan_targets",
]

Manifest = ImageManifest | ImageIndex
_HOST = re.compile(
    r"(?:localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?"
)


def _looks_like_host(text: str) -> bool:
    return bool(_HOST.fullmatch(text)) and (
        "." in text or ":" in text or text == "localhost" or text.startswith("[")
    )


def map_destination(
    image_name: Reference | None, dest: str | None, single: bool, tag: str | None = None
) -> Reference:
    """Where one image of an archive goes.

    * No ``dest``: the name the image carries.
    * ``dest`` with a tag (``reg/repo:v1``): exactly that; only for a one-image archive.
    * ``dest`` without a tag is a registry or ``registry/prefix`` under which the image's own
      repository path and tag are kept
      ([imgmirror.model.naming.under_prefix][imgmirror.model.naming.under_prefix], the rule sync
      and ``copy SRC PREFIX/`` use): ``reg.corp/mirror`` + ``gcr.io/google_containers/
      pause:3.9`` -> ``reg.corp/mirror/google_containers/pause:3.9``; Docker Hub images keep
      ``library/`` (``alpine:3.19`` -> ``reg.corp/mirror/library/alpine:3.19``). For an
      image without a name it is the repository, tag ``tag`` (the bare tag an OCI layout
      gives it) or ``latest``.

    Raises:
        InvalidReference: ``dest`` is malformed or cannot name this image.
    """
    if dest is None:
        if image_name is None:
            only = f" (only the tag {tag!r}, no repository)" if tag else ""
            raise InvalidReference(
                f"the archive does not name its image{only}",
                hint="give DEST as registry/repo (the tag is kept)"
                if tag
                else "give DEST as registry/repo:tag",
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
        if not single and tag is None:
            raise InvalidReference(
                "the archive holds several images without names",
                hint="push them one at a time with DEST as registry/repo:tag",
            )
        if not prefix:
            raise InvalidReference(
                f"the archive does not name its image, so DEST {dest!r} needs a repository",
                hint="give DEST as registry/repo:tag",
            )
        return Reference.parse(f"{dest}:{tag or 'latest'}")
    named = attrs.evolve(image_name, tag=image_name.tag or "latest", digest=None)
    return under_prefix(named, Prefix(registry, prefix.strip("/")))


def plan_targets(
    planned: list[tuple[tuple[Reference, ...], OciImage]], dest: str | None
) -> list[PushTarget]:
    """Name every image at the destination (pure); refuses two images on one reference."""
    single = len(planned) == 1
    if dest is not None and _is_full(dest) and not single:
        raise InvalidReference(
            f"DEST {dest!r} has a tag, so it names one image, but the archive holds "
            f"{len(planned)}: {describe(tuple(image for _, image in planned))}",
            hint="select one as FILE:NAME, or give a registry or registry/prefix to push "
            "each under its own name",
        )
    targets: dict[Reference, PushTarget] = {}
    for names, image in planned:
        if names:
            chosen = names[:1] if dest is not None and _is_full(dest) else names
            refs = [map_destination(n, dest, single) for n in chosen]
        else:
            tags = image.tags if dest is None or not _is_full(dest) else ()
            refs = [map_destination(None, dest, single, t) for t in tags or (None,)]
        for ref in dict.fromkeys(refs):
            if ref in targets and targets[ref].top.digest != image.top.digest:
                raise ArchiveError(f"two different images in the archive would both become {ref}")
            blobs = tuple(dict.fromkeys(b.digest for b in image.blobs))
            targets[ref] = PushTarget(ref, image.top, image.children, blobs)
    return list(targets.values())


ConsentInput = bool | Callable[[tuple[str, ...]], bool]
"""``to_archive_names``: True, False, or a function asked with the registries (True = go)."""


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


def check_names(
    targets: list[PushTarget],
    dest: str | None,
    credential: Credential | None,
    consent: ConsentInput,
) -> None:
    """With no ``dest`` the archive's names decide: refuse podman-local names, and explicit
    credentials without consent."""
    if dest is not None:
        return
    for target in targets:
        if local_name(target.ref):
            raise InvalidReference(
                f"{target.ref} is a local name (podman's localhost/), not a registry to push to",
                hint="give DEST, e.g. registry.example.com/repo:tag",
            )
    if credential is not None:
        check_consent(targets, consent)
