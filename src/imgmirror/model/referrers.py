"""Referrers as values: the referrers index, the fallback tag document and the bounded walk.

A referrer is a manifest whose ``subject`` names another manifest's digest (OCI image-spec
1.1): a signature, an SBOM, an attestation. Registries list them through the referrers API or,
failing that, in an index under the fallback tag
([fallback_tag][imgmirror.model.artifacts.fallback_tag]).
This module parses those indexes ([referrers_from_index][]), builds the entry a referrer
gets in one ([referrer_entry][]), merges entries into an existing fallback index without
ever dropping one that is already there ([merge_fallback_index][]), and walks referrers of
referrers bounded in depth and count, refusing cycles ([walk_referrers][]). No I/O: the
walk asks a callable for each digest's referrers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from imgmirror.errors import InvalidDigest, InvalidManifest, ReferrerError
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json_object
from imgmirror.model.manifest import Descriptor

__all__ = [
    "MAX_DEPTH",
    "MAX_REFERRERS",
    "Referrer",
    "ReferrerNode",
    "annotations_of",
    "artifact_type_of",
    "empty_referrers_index",
    "merge_fallback_index",
    "referrer_entry",
    "referrers_from_index",
    "subject_of",
    "walk_referrers",
]

#: How deep referrers of referrers are followed (1: only what refers to the image itself).
MAX_DEPTH = 4
#: Most referrers carried for one image, all depths together.
MAX_REFERRERS = 1000


@attrs.frozen
class Referrer:
    """One manifest that refers to ``subject``.

    Attributes:
        descriptor: media type, digest, size and annotations of the referrer manifest.
        artifact_type: what it is (``artifactType``, else the config media type).
        subject: the digest it refers to.
        tag: the cosign tag it was found under (``sha256-<hex>.sig``), None when it came from
            the referrers API or the fallback tag.
    """

    descriptor: Descriptor
    artifact_type: str
    subject: Digest
    tag: str | None = None

    @property
    def digest(self) -> Digest:
        """The referrer manifest's digest."""
        return self.descriptor.digest

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output)."""
        out: dict[str, Any] = {
            "artifactType": self.artifact_type,
            "mediaType": self.descriptor.media_type,
            "digest": str(self.digest),
            "size": self.descriptor.size,
            "subject": str(self.subject),
            "annotations": dict(self.descriptor.annotations),
        }
        if self.tag:
            out["tag"] = self.tag
        return out


def _document(raw: bytes, what: str) -> dict[str, Any]:
    return load_json_object(raw, what, ReferrerError)


def referrers_from_index(raw: bytes, subject: Digest, what: str) -> tuple[Referrer, ...]:
    """The referrers an index lists (a referrers API page or the fallback tag's index).

    Raises:
        ReferrerError: ``raw`` is not an OCI index, or an entry is malformed.
    """
    doc = _document(raw, what)
    media_type = doc.get("mediaType")
    if media_type is not None and not (
        isinstance(media_type, str) and mediatypes.is_index(media_type)
    ):
        raise ReferrerError(f"{what} is a {media_type!r}, not an OCI index of referrers")
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ReferrerError(f"{what} is not an OCI index of referrers (no 'manifests' list)")
    out: list[Referrer] = []
    for i, entry in enumerate(entries):
        try:
            descriptor = Descriptor.from_json(entry, f"{what} entry {i}")
        except InvalidManifest as exc:
            raise ReferrerError(exc.message) from None
        if not mediatypes.is_manifest(descriptor.media_type):
            raise ReferrerError(f"{what} entry {i} is a {descriptor.media_type!r}, not a manifest")
        artifact_type = entry.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise ReferrerError(f"{what} entry {i}: 'artifactType' must be a string")
        out.append(Referrer(descriptor, artifact_type or descriptor.media_type, subject))
    return tuple(out)


def subject_of(raw: bytes) -> Digest | None:
    """The digest a manifest's ``subject`` names, or None.

    Raises:
        ReferrerError: the ``subject`` field is malformed.
    """
    subject = _document(raw, "manifest").get("subject")
    if subject is None:
        return None
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
        raise ReferrerError("manifest 'subject' is not a descriptor")
    try:
        return Digest.parse(subject["digest"])
    except InvalidDigest as exc:
        raise ReferrerError(f"manifest 'subject': {exc.message}") from None


def artifact_type_of(raw: bytes, media_type: str) -> str:
    """What a manifest is as an artifact (image-spec: ``artifactType``, else the config's
    media type; for an index, ``artifactType`` else its own media type)."""
    doc = _document(raw, "manifest")
    declared = doc.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    config = doc.get("config")
    if isinstance(config, dict) and isinstance(config.get("mediaType"), str):
        config_type: str = config["mediaType"]
        layers = doc.get("layers")
        # cosign's tag-based signatures use a plain image config: the layer says what it is
        if config_type == mediatypes.OCI_CONFIG and isinstance(layers, list) and layers:
            first = layers[0]
            if isinstance(first, dict) and isinstance(first.get("mediaType"), str):
                return str(first["mediaType"])
        return config_type
    return media_type


def annotations_of(raw: bytes) -> dict[str, str]:
    """A manifest's own ``annotations`` (empty when absent or not a string map)."""
    value = _document(raw, "manifest").get("annotations")
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return value
    return {}


def referrer_entry(raw: bytes, media_type: str) -> dict[str, Any]:
    """The descriptor a referrers index lists for a manifest: media type, digest, size,
    ``artifactType`` and the manifest's annotations."""
    entry: dict[str, Any] = {
        "mediaType": media_type,
        "digest": str(Digest.of(raw)),
        "size": len(raw),
        "artifactType": artifact_type_of(raw, media_type),
    }
    annotations = annotations_of(raw)
    if annotations:
        entry["annotations"] = annotations
    return entry


def empty_referrers_index() -> dict[str, Any]:
    """A fresh referrers index document with no entries."""
    return {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": []}


def merge_fallback_index(
    existing: bytes | None, entries: Sequence[Mapping[str, Any]], what: str
) -> bytes | None:
    """The fallback tag's index with ``entries`` added, or None when nothing changes.

    Every entry already in ``existing`` is kept exactly as it is, foreign ones included; an
    entry whose digest is already listed is not added twice.

    Raises:
        ReferrerError: ``existing`` is not an OCI index (the tag holds something else).
    """
    if existing is None:
        doc = empty_referrers_index()
    else:
        referrers_from_index(existing, Digest.of(existing), what)  # validates
        doc = json.loads(existing)
    listed = {m.get("digest") for m in doc["manifests"] if isinstance(m, dict)}
    added = False
    for entry in entries:
        if entry["digest"] not in listed:
            doc["manifests"].append(dict(entry))
            listed.add(entry["digest"])
            added = True
    if not added and existing is not None:
        return None
    doc.setdefault("mediaType", mediatypes.OCI_INDEX)
    return json.dumps(doc, indent=2).encode()


@attrs.frozen
class ReferrerNode:
    """A referrer and the referrers that refer to it in turn."""

    referrer: Referrer
    children: tuple[ReferrerNode, ...] = ()

    def walk(self) -> Iterator[ReferrerNode]:
        """This node, then its descendants, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()


Lookup = Callable[[Digest], Sequence[Referrer]]


def walk_referrers(
    subjects: Sequence[Digest],
    lookup: Lookup,
    *,
    max_depth: int = MAX_DEPTH,
    limit: int = MAX_REFERRERS,
) -> tuple[ReferrerNode, ...]:
    """The referrers of every subject, and theirs, down to ``max_depth`` levels.

    Each digest is visited once (the subjects themselves count as visited); ``lookup`` is
    called at most once per digest and never below ``max_depth``.

    Raises:
        ReferrerError: a referrer refers back to one of its own subjects (a cycle), or more
            than ``limit`` referrers were found.
    """
    seen: set[Digest] = set(subjects)
    count = 0

    def visit(subject: Digest, ancestors: tuple[Digest, ...]) -> tuple[ReferrerNode, ...]:
        nonlocal count
        nodes: list[ReferrerNode] = []
        for referrer in lookup(subject):
            if referrer.digest in ancestors:
                chain = " -> ".join(str(d) for d in (*ancestors, referrer.digest))
                raise ReferrerError(
                    f"referrers form a cycle: {chain}",
                    hint="the source's referrers index or cosign tags are inconsistent",
                )
            if referrer.digest in seen:
                continue
            seen.add(referrer.digest)
            count += 1
            if count > limit:
                raise ReferrerError(f"more than {limit} referrers of {subjects[0]}")
            below: tuple[ReferrerNode, ...] = ()
            if len(ancestors) < max_depth:
                below = visit(referrer.digest, (*ancestors, referrer.digest))
            nodes.append(ReferrerNode(referrer, below))
        return tuple(nodes)

    out: list[ReferrerNode] = []
    for subject in subjects:
        out.extend(visit(subject, (subject,)))
    return tuple(out)
