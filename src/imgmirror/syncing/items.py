"""Which images a sync file selects: its entries expanded into :class:`SyncItem` values.

:func:`load_sync_file` reads and parses a file; :func:`expand_entry` turns an entry into images
given the source's tag list (pure); :func:`expand_with_tags` lists the tags first when the
entry's filters need them; :func:`selected_images` does that for a whole file (what
``save -f`` saves). :mod:`imgmirror.syncing.run` runs the same expansion inside a sync.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.errors import CredentialsError, ImgmirrorError, NotFound
from imgmirror.model.artifacts import ArtifactFilter
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.session import Session
from imgmirror.syncing.file import SyncEntry, SyncSpec, parse_sync_file
from imgmirror.syncing.tagselect import NoTagsSelected, select_tags
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.tls import ClientOptions
from imgmirror.verify.policy import Policy

__all__ = [
    "SyncItem",
    "expand_entry",
    "expand_with_tags",
    "load_sync_file",
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
    referrers: ArtifactFilter | None = None
    referrers_optional: bool = False
    verify: Policy | None = None


def load_sync_file(
    path: str | os.PathLike[str],
    *,
    to: str | None = None,
    referrers: ArtifactFilter | None = None,
    referrers_optional: bool = False,
    verify: Policy | None = None,
) -> SyncSpec:
    """Read and parse a sync file; a relative ``authfile:`` is taken from the file's folder.
    ``to``, ``referrers`` and ``referrers_optional`` replace the file's defaults (see
    :func:`~imgmirror.syncing.file.parse_sync_file`).

    Raises:
        InvalidSyncFile: the file cannot be read or is malformed (file and line named).
    """
    from imgmirror.errors import InvalidSyncFile  # noqa: PLC0415 - keeps the import list short

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSyncFile(f"cannot read sync file {os.fspath(path)}: {exc}") from None
    spec = parse_sync_file(
        text, os.fspath(path), to=to, referrers=referrers,
        referrers_optional=referrers_optional, verify=verify,
    )  # fmt: skip
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
            entry.referrers_optional,
            entry.verify,
        )
        for source in sources
    ]


def expand_with_tags(client: RegistryClient, entry: SyncEntry) -> list[SyncItem]:
    """List the source's tags when the entry needs them, then select.

    Raises:
        ImgmirrorError: the repository does not exist, or the filters match nothing.
    """
    tags = None
    if entry.selector is not None and entry.selector.needs_listing:
        try:
            tags = client.list_tags(entry.source.repository)
        except NotFound:
            raise ImgmirrorError(
                f"source repository {entry.source.name} does not exist",
                hint=f"check the repository name ({entry.origin})",
            ) from None
    try:
        return expand_entry(entry, tags)
    except NoTagsSelected as exc:
        raise ImgmirrorError(
            f"{entry.source.name}: {exc}", hint=f"check the filters ({entry.origin})"
        ) from None


def selected_images(
    spec: SyncSpec | str | os.PathLike[str],
    *,
    src_creds: CredentialInput = None,
    authfile: str | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
) -> list[SyncItem]:
    """Every image a sync file selects, in file order, each once (tag lists read).

    For ``save -f``: unlike :func:`sync`, the first entry that fails raises.

    Raises:
        InvalidSyncFile: the file is malformed.
        ImgmirrorError: a repository is missing, a filter matches nothing, a registry fails.
    """
    if not isinstance(spec, SyncSpec):
        spec = load_sync_file(spec, to=_NO_DESTINATION)
    credential = Credential.coerce(src_creds, setting="src_creds")
    if credential is not None:
        only_one_registry("source", {e.source.registry for e in spec.entries})
    items: dict[Reference, SyncItem] = {}
    with Session(options, authfile=authfile or spec.authfile, keychain=keychain) as session:
        for entry in spec.entries:
            client = session.client(entry.source.registry, credential, role="source")
            for item in expand_with_tags(client, entry):
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
