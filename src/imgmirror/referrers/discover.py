"""Find what refers to an image in its repository: signatures, SBOMs, attestations.

[ReferrerFinder][] asks a registry for the referrers of one digest: the OCI 1.1 referrers
API when the registry serves it, else the fallback tag (``sha256-<hex>`` holding an index of
referrers), and in both cases cosign's tags (``sha256-<hex>.sig``, ``.att``, ``.sbom``). Each
referrer manifest is fetched (verified against its digest) and, unless it came from a cosign
tag, must name the digest as its ``subject``. [discover][] walks referrers of referrers
from a set of subjects, bounded in depth and count, refusing cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.errors import ManifestError, NotFound, ReferrerError
from imgmirror.model.artifacts import ArtifactFilter, ReferrersArg, cosign_tag, fallback_tag
from imgmirror.model.digest import Digest
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor, ImageIndex
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import (
    MAX_DEPTH,
    Referrer,
    ReferrerNode,
    annotations_of,
    artifact_type_of,
    referrers_from_index,
    subject_of,
    walk_referrers,
)
from imgmirror.registry.fetch import fetch_image
from imgmirror.registry.pool import ClientPool
from imgmirror.transport.client import RegistryClient

__all__ = ["Discovered", "ReferrerFinder", "ReferrerListing", "discover", "find_referrers"]


@attrs.frozen
class Discovered:
    """Referrers found for some subjects: the tree, and each referrer's fetched manifests."""

    nodes: tuple[ReferrerNode, ...]
    trees: dict[Digest, ImageTree]

    def referrers(self) -> list[Referrer]:
        """Every referrer, parents before the referrers that refer to them."""
        return [node.referrer for root in self.nodes for node in root.walk()]


class ReferrerFinder:
    """Looks up referrers in one repository of one registry (see the module docstring).

    Whether the registry serves the referrers API is learnt from the first answer.
    """

    def __init__(self, client: RegistryClient, repo: str, wanted: ArtifactFilter) -> None:
        self.client = client
        self.repo = repo
        self.wanted = wanted
        self.api: bool | None = None
        self.trees: dict[Digest, ImageTree] = {}

    def _where(self, what: str) -> str:
        return f"{what} in {self.client.registry}/{self.repo}"

    def _listed(self, subject: Digest) -> tuple[Referrer, ...]:
        if self.api is not False:
            found = self.client.list_referrers(self.repo, subject)
            self.api = found is not None
            if found is not None:
                return found
        tag = fallback_tag(subject)
        try:
            index = self.client.get_manifest(self.repo, tag)
        except NotFound:
            return ()
        except ManifestError as exc:
            raise ReferrerError(
                f"{self._where(f'tag {tag}')} is not a referrers index: {exc.message}"
            ) from None
        if not isinstance(index, ImageIndex):
            raise ReferrerError(
                f"{self._where(f'tag {tag}')} holds a {index.media_type}, not a referrers index",
                hint="the referrers tag schema keeps an OCI index under this tag",
            )
        return referrers_from_index(index.raw, subject, self._where(f"tag {tag}"))

    def _fetch(self, digest: Digest) -> ImageTree:
        if digest not in self.trees:
            self.trees[digest] = fetch_image(self.client, self.repo, str(digest))
        return self.trees[digest]

    def _checked(self, referrer: Referrer) -> Referrer:
        top = self._fetch(referrer.digest).top
        named = subject_of(top.raw)
        if named != referrer.subject:
            raise ReferrerError(
                f"{self._where(str(referrer.digest))} is listed as a referrer of "
                f"{referrer.subject} but its subject is {named or 'missing'}",
                hint="the source's referrers index is inconsistent",
            )
        if referrer.descriptor.annotations:
            return referrer
        annotations = annotations_of(top.raw)  # an index entry may leave them out
        return attrs.evolve(
            referrer, descriptor=attrs.evolve(referrer.descriptor, annotations=annotations)
        )

    def _cosign(self, subject: Digest) -> list[Referrer]:
        out: list[Referrer] = []
        for suffix in self.wanted.cosign_suffixes():
            tag = cosign_tag(subject, suffix)
            found = self.client.head_manifest(self.repo, tag)
            if found is None:
                continue
            top = self._fetch(found.digest).top
            annotations = annotations_of(top.raw)
            descriptor = Descriptor(top.media_type, top.digest, len(top.raw), None, annotations)
            artifact_type = artifact_type_of(top.raw, top.media_type)
            out.append(Referrer(descriptor, artifact_type, subject, tag))
        return out

    def lookup(self, subject: Digest) -> list[Referrer]:
        """The wanted referrers of ``subject``, their manifests fetched and checked.

        Raises:
            ReferrerError: the fallback tag or the API answer is not an index, or a listed
                referrer does not name ``subject``.
        """
        listed = [r for r in self._listed(subject) if self.wanted.wants(r.artifact_type)]
        return [self._checked(r) for r in listed] + self._cosign(subject)


def discover(
    client: RegistryClient,
    repo: str,
    subjects: Sequence[Digest],
    wanted: ArtifactFilter,
    *,
    max_depth: int = MAX_DEPTH,
) -> Discovered:
    """Every wanted referrer of ``subjects`` (and theirs, down to ``max_depth``).

    Raises:
        ReferrerError: see [ReferrerFinder.lookup][]; also a cycle, or too many referrers.
    """
    finder = ReferrerFinder(client, repo, wanted)
    nodes = walk_referrers(subjects, finder.lookup, max_depth=max_depth)
    return Discovered(nodes, finder.trees)


def _node_json(node: ReferrerNode) -> dict[str, Any]:
    return {**node.referrer.to_json(), "referrers": [_node_json(c) for c in node.children]}


@attrs.frozen
class ReferrerListing:
    """What refers to an image: ``subjects`` (the top manifest, then an index's children,
    each with its media type) and the referrer tree under them."""

    image: str
    digest: str
    subjects: tuple[tuple[Digest, str], ...]
    nodes: tuple[ReferrerNode, ...]

    def under(self, subject: Digest) -> tuple[ReferrerNode, ...]:
        """The referrers that refer to ``subject`` directly."""
        return tuple(n for n in self.nodes if n.referrer.subject == subject)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output)."""
        return {
            "image": self.image,
            "digest": self.digest,
            "subjects": [
                {
                    "digest": str(digest),
                    "mediaType": media_type,
                    "referrers": [_node_json(n) for n in self.under(digest)],
                }
                for digest, media_type in self.subjects
            ],
        }


def find_referrers(
    pool: ClientPool,
    image: str | Reference,
    *,
    types: ReferrersArg = True,
    src_creds: CredentialInput = None,
    max_depth: int = MAX_DEPTH,
) -> ReferrerListing:
    """What refers to ``image`` and to each manifest of its index (signatures, SBOMs,
    attestations), and their own referrers down to ``max_depth``; see
    [imgmirror.find_referrers][imgmirror.api.referrers.find_referrers].

    Raises:
        InvalidArtifactType: an unknown type name.
        ReferrerError: a referrers index that is not one, a cycle, an inconsistent referrer.
    """
    # session imports the operations, which import verify, which imports this module

    reference = image if isinstance(image, Reference) else Reference.parse(image)
    wanted = ArtifactFilter.parse(types) or ArtifactFilter()
    creds = Credential.coerce(src_creds, setting="src_creds")
    client = pool.client(reference.registry, creds, role="source")
    tree = fetch_image(client, reference.repository, reference.identifier)
    subjects = tuple((m.digest, m.media_type) for m in (tree.top, *tree.children))
    found = discover(
        client, reference.repository, [d for d, _ in subjects], wanted, max_depth=max_depth
    )
    return ReferrerListing(str(reference), str(tree.top.digest), subjects, found.nodes)
