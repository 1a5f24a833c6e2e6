"""Artifact types of referrers and the tag names that point at them.

Signatures, SBOMs and attestations hang off an image's digest. This module names them:
[ArtifactFilter][] turns ``--referrers`` values (``sig``, ``att``, ``sbom`` or full media
types) into a predicate over artifact types; [fallback_tag][] is the OCI 1.1 referrers tag
schema (``sha256-<hex>``, distribution-spec ``spec.md``, "Referrers Tag Schema") and
[cosign_tag][] cosign's conventions (``sha256-<hex>.sig``, ``.att``, ``.sbom``). This
module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from imgmirror.errors import InvalidArtifactType
from imgmirror.model.digest import Digest
from imgmirror.model.mediatypes import base_media_type

__all__ = [
    "COSIGN_SUFFIXES",
    "KINDS",
    "ArtifactFilter",
    "ReferrerChoice",
    "ReferrersArg",
    "artifact_kind",
    "cosign_tag",
    "fallback_tag",
]

#: Media types that make an artifact a signature, an attestation or an SBOM.
KINDS: dict[str, frozenset[str]] = {
    "sig": frozenset(
        {
            "application/vnd.dev.cosign.simplesigning.v1+json",
            "application/vnd.dev.cosign.artifact.sig.v1+json",
            "application/vnd.cncf.notary.signature",
            "application/vnd.dev.sigstore.bundle.v0.3+json",
            "application/vnd.dev.sigstore.bundle+json",
        }
    ),
    "att": frozenset(
        {
            "application/vnd.dsse.envelope.v1+json",
            "application/vnd.in-toto+json",
            "application/vnd.dev.cosign.artifact.att.v1+json",
        }
    ),
    "sbom": frozenset(
        {
            "application/spdx+json",
            "text/spdx",
            "text/spdx+json",
            "application/vnd.cyclonedx",
            "application/vnd.cyclonedx+json",
            "application/vnd.cyclonedx+xml",
            "application/vnd.syft+json",
            "application/vnd.dev.cosign.artifact.sbom.v1+json",
        }
    ),
}
#: cosign's tag suffixes, one per kind.
COSIGN_SUFFIXES: tuple[str, ...] = ("sig", "att", "sbom")

_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_HINT = "use sig, att, sbom or a media type such as application/spdx+json, comma-separated"


def artifact_kind(artifact_type: str) -> str | None:
    """``"sig"``, ``"att"`` or ``"sbom"`` for a known artifact media type, else None."""
    base = base_media_type(artifact_type)
    for kind, types in KINDS.items():
        if base in types:
            return kind
    if base.startswith("application/vnd.in-toto."):
        return "att"
    if "spdx" in base or "cyclonedx" in base:
        return "sbom"
    return None


def fallback_tag(subject: Digest) -> str:
    """The referrers tag schema's tag for ``subject``: ``<alg>-<hex>`` (at most 32/64 chars)."""
    return f"{subject.algorithm[:32]}-{subject.hex[:64]}"


def cosign_tag(subject: Digest, suffix: str) -> str:
    """cosign's tag for a signature (``sig``), attestation (``att``) or SBOM (``sbom``)."""
    if suffix not in COSIGN_SUFFIXES:
        raise InvalidArtifactType(f"unknown cosign tag suffix {suffix!r}", hint=_HINT)
    return f"{subject.algorithm}-{subject.hex}.{suffix}"


@attrs.frozen
class ArtifactFilter:
    """Which referrers to carry: every one (``names`` empty) or those of the named types.

    ``names`` holds short names (``sig``, ``att``, ``sbom``) and media types, lowercased.
    """

    names: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        """Whether every artifact type is wanted."""
        return not self.names

    @classmethod
    def parse(cls, value: ReferrersArg) -> ArtifactFilter | None:
        """From ``True``/``"all"`` (everything), ``"sig,sbom"``, a list of names, a filter
        (returned as it is), or ``False``/``None``/``[]`` (referrers not wanted: None).

        Raises:
            InvalidArtifactType: a name is neither a short name nor a media type.
        """
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, ArtifactFilter):
            return value
        pieces = [value] if isinstance(value, str) else list(value)
        names: list[str] = []
        for piece in pieces:
            for raw in piece.split(","):
                name = raw.strip().lower()
                if not name:
                    continue
                if name == "all":
                    return cls()
                if name not in KINDS and not _MEDIA_TYPE.match(base_media_type(name)):
                    raise InvalidArtifactType(f"unknown artifact type {raw.strip()!r}", hint=_HINT)
                if name not in names:
                    names.append(name)
        if not names:
            return None
        return cls(tuple(names))

    def wants(self, artifact_type: str) -> bool:
        """Whether a referrer of ``artifact_type`` is to be carried."""
        if self.everything:
            return True
        base = base_media_type(artifact_type)
        kind = artifact_kind(base)
        return any(name in (base, kind) for name in self.names)

    def cosign_suffixes(self) -> tuple[str, ...]:
        """The cosign tag suffixes worth looking at for this filter."""
        if self.everything:
            return COSIGN_SUFFIXES
        kinds = {name if name in KINDS else artifact_kind(name) for name in self.names}
        return tuple(s for s in COSIGN_SUFFIXES if s in kinds)

    def __str__(self) -> str:
        return ",".join(self.names) if self.names else "all"


#: What a caller may say about referrers: True (all), False/None (none), names, or a filter.
ReferrersArg = bool | str | Sequence[str] | ArtifactFilter | None


@attrs.frozen
class ReferrerChoice:
    """Which referrers travel with an image, and whether they must.

    Attributes:
        types: the artifact types carried.
        optional: best effort: a referrer that cannot be carried is reported, not fatal.
    """

    types: ArtifactFilter = ArtifactFilter()
    optional: bool = False

    @classmethod
    def parse(cls, referrers: ReferrersArg, optional: bool = False) -> ReferrerChoice | None:
        """From the ``referrers=``/``referrers_optional=`` pair of the public calls; None
        when no referrers are wanted.

        Raises:
            InvalidArtifactType: a name is neither a short name nor a media type.
        """
        types = ArtifactFilter.parse(referrers)
        return None if types is None else cls(types, optional)
