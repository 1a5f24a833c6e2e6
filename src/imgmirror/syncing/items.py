"""Which images a sync file selects: its entries expanded into [SyncItem][] values.

[load_sync_file][] reads and parses a file; [expand_entry][] turns an entry into images
given the source's tag list (pure); [expand_listed][] lists the tags first when the
entry's filters need them (names that are not valid tags are left out and reported, never put
into a URL); [selected_images][] does that for a whole file (what ``save -f`` saves), and
[mirrored_images][] the same as a mirror holds them (``save -f --from MIRROR``, tags
listed at the mirror). [imgmirror.syncing.run][imgmirror.syncing.run] runs the same expansion inside
a sync.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.errors import CredentialsError, ImgmirrorError, InvalidSyncFile, NotFound, UnsafeName
from imgmirror.model.artifacts import ReferrerChoice
from imgmirror.model.documents import read_capped_text
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.registry.pool import ClientPool
from imgmirror.syncing.file import SyncEntry, SyncSpec, parse_sync_file
from imgmirror.syncing.tagselect import NoTagsSelected, select_tags
from imgmirror.transport.client import RegistryClient
from imgmirror.verify.policy import Policy

__all__ = [
    "SyncItem",
    "expand_entry",
    "expand_listed",
    "expand_with_tags",
    "load_sync_file",
    "mirrored_images",
    "only_one_registry",
    "selected_images",
]


@attrs.frozen
class SyncItem:
    """One image to mirror: where from, where to, which platforms, which referrers."""

    source: Reference
    destination: Reference
    platforms: tuple[Platform, ...] | None
    origin: str
    referrers: ReferrerChoice | None = None
    verify: Policy | None = None


def load_sync_file(
    path: str | os.PathLike[str],
    *,
    to: str | None = None,
    referrers: ReferrerChoice | None = None,
    verify: Policy | None = None,
) -> SyncSpec:
    """Read and parse a sync file; a relative ``authfile:`` is taken from the file's folder.
    ``to``, ``referrers`` and ``verify`` replace the file's defaults (see
    [parse_sync_file][imgmirror.syncing.file.parse_sync_file]).

    Raises:
        InvalidSyncFile: the file cannot be read or is malformed (file and line named).
    """
    try:
        text = read_capped_text(path)
    except (OSError, ValueError) as exc:  # a DocumentLimit or a UnicodeDecodeError
        raise InvalidSyncFile(f"cannot read sync file {os.fspath(path)}: {exc}") from None
    spec = parse_sync_file(text, os.fspath(path), to=to, referrers=referrers, verify=verify)
    if spec.authfile is not None:
        spec = attrs.evolve(spec, authfile=str(Path(path).parent / spec.authfile))
    return spec


def expand_entry(entry: SyncEntry, tags: Sequence[str] | None) -> list[SyncItem]:
    """The images an entry names, given the source's tag list (pure).

    Raises:
        NoTagsSelected: a repository entry whose filters match nothing.
    """
    if entry.selector is None:
        sources = [entry.source]
    else:
        chosen = select_tags(entry.selector, tags)
        sources = [attrs.evolve(entry.source, tag=t, digest=None) for t in chosen]
    return [
        SyncItem(
            source,
            entry.destination(source),
            entry.platforms,
            entry.origin,
            entry.referrers,
            entry.verify,
        )
        for source in sources
    ]


def expand_listed(
    client: RegistryClient, entry: SyncEntry, repository: Reference | None = None
) -> tuple[list[SyncItem], UnsafeName | None]:
    """List the source's tags (or ``repository``'s, at ``client``) when the entry needs them,
    then select; with the error naming what the tag list held that is not a valid tag (left
    out: the other tags still run).

    Raises:
        NotFound: the repository does not exist (``role`` source).
        ImgmirrorError: the tag list cannot be used, or the filters match nothing.
    """
    tags = None
    refused = None
    where = repository or entry.source
    if entry.selector is not None and entry.selector.needs_listing:
        try:
            listing = client.tag_listing(where.repository)
        except NotFound as exc:
            missing = NotFound(
                f"source repository {where.name} does not exist",
                status=exc.status, method=exc.method, url=exc.url, code=exc.code,
                hint=f"check the repository name ({entry.origin})",
            )  # fmt: skip
            missing.role = "source"
            raise missing from None
        tags = listing.names
        problem = listing.problem()
        if problem:
            refused = UnsafeName(
                problem, hint=f"those names are not mirrored; the other tags are ({entry.origin})"
            )
            refused.role = "source"
    try:
        return expand_entry(entry, tags), refused
    except NoTagsSelected as exc:
        raise ImgmirrorError(
            f"{entry.source.name}: {exc}", hint=f"check the filters ({entry.origin})"
        ) from None


def expand_with_tags(
    client: RegistryClient, entry: SyncEntry, repository: Reference | None = None
) -> list[SyncItem]:
    """[expand_listed][], for callers that stop at the first failure (``save -f``): a
    tag list holding a name that is not a valid tag raises.

    Raises:
        ImgmirrorError: the repository does not exist, the filters match nothing.
        UnsafeName: the tag list holds a name that is not a valid tag.
    """
    items, refused = expand_listed(client, entry, repository)
    if refused is not None:
        refused.message = f"{entry.source.name}: {refused.message}"
        refused.hint = f"nothing was saved ({entry.origin})"
        raise refused
    return items


def selected_images(
    pool: ClientPool,
    spec: SyncSpec | str | os.PathLike[str],
    *,
    src_creds: Credential | None = None,
) -> list[SyncItem]:
    """Every image a sync file selects, in file order, each once (tag lists read through
    ``pool``; the file's ``authfile:`` is asked when the pool was given none).

    For ``save -f``: unlike a sync, the first entry that fails raises.

    Raises:
        InvalidSyncFile: the file is malformed.
        ImgmirrorError: a repository is missing, a filter matches nothing, a registry fails.
    """
    if not isinstance(spec, SyncSpec):
        spec = load_sync_file(spec, to=_NO_DESTINATION)
    if src_creds is not None:
        only_one_registry("source", {e.source.registry for e in spec.entries})
    items: dict[Reference, SyncItem] = {}
    scoped = pool.scoped(authfile=spec.authfile)
    for entry in spec.entries:
        client = scoped.client(entry.source.registry, src_creds, role="source")
        for item in expand_with_tags(client, entry):
            items.setdefault(item.source, item)
    return list(items.values())


def mirrored_images(
    pool: ClientPool,
    spec: str | os.PathLike[str],
    mirror: str,
    *,
    creds: Credential | None = None,
) -> list[SyncItem]:
    """Every image a sync file selects, as the mirror ``mirror`` holds them (``save -f
    --from``): each item's ``destination`` is where ``sync FILE --to MIRROR`` puts it, and a
    repository entry's tags are listed at the mirror, so the public source is never asked.

    Raises:
        InvalidSyncFile: the file is malformed or ``mirror`` is not a prefix.
        ImgmirrorError: a repository is missing at the mirror, a filter matches nothing.
    """
    parsed = load_sync_file(spec, to=mirror)
    if creds is not None:
        only_one_registry("source", {e.destination(e.source).registry for e in parsed.entries})
    items: dict[Reference, SyncItem] = {}
    scoped = pool.scoped(authfile=parsed.authfile)
    for entry in parsed.entries:
        at_mirror = entry.destination(entry.source)
        client = scoped.client(at_mirror.registry, creds, role="source")
        for item in expand_with_tags(client, entry, at_mirror):
            items.setdefault(item.source, item)
    return list(items.values())


#: A placeholder prefix for reading a file only for its sources (``save -f``).
_NO_DESTINATION = "localhost/unused"


def only_one_registry(what: str, registries: set[str]) -> None:
    """Refuse explicit credentials for a side that spans several registries.

    Raises:
        CredentialsError: ``registries`` holds more than one.
    """
    if len(registries) > 1:
        raise CredentialsError(
            f"explicit {what} credentials were given but the sync file reads {what}s on "
            f"{len(registries)} registries ({', '.join(sorted(registries))}); credentials "
            "are only ever sent to one registry",
            hint="put them in an authfile (one entry per registry) instead",
        )
