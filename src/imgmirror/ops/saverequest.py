"""What ``save`` is asked for: image arguments parsed into a source and an archive name.

An image argument is ``"IMAGE[=NAME]"``, ``(image, name)``, or an [ImageRequest][], which
can also carry platforms of its own (a sync file entry's ``platforms:`` in ``save -f``).
Pure: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from imgmirror.errors import InvalidReference
from imgmirror.model.digest import Digest
from imgmirror.model.platform import Platform, PlatformsArg, parse_platforms
from imgmirror.model.reference import Reference

__all__ = [
    "ALL_PLATFORMS",
    "ImageArg",
    "ImageRequest",
    "digest_tag",
    "every_platform",
    "own_platforms",
    "parse_image_arg",
]

#: ``platforms="all"``: every platform of an index (the whole index, digests kept).
ALL_PLATFORMS = "all"


def every_platform(value: PlatformsArg | Sequence[str]) -> bool:
    """Whether ``value`` is ``"all"`` (or ``["all"]``): every platform of an index."""
    if isinstance(value, str):
        return value == ALL_PLATFORMS
    return value is not None and not isinstance(value, Platform) and list(value) == ["all"]


def _platform_names(value: PlatformsArg) -> tuple[str, ...] | None:
    if every_platform(value):
        return (ALL_PLATFORMS,)
    parsed = parse_platforms(value)
    return None if parsed is None else tuple(str(p) for p in parsed)


@attrs.frozen
class ImageRequest:
    """One image to save, optionally under another name and with platforms of its own.

    Attributes:
        image: the reference to read.
        name: the name loaders give it (default: the image's own; a NAME without a tag takes
            the image's tag).
        platforms: the platforms to take from this image's index, instead of the
            ``platforms`` of the call (``"linux/arm64"``, a list, or ``"all"`` for the whole
            index); None: the call's.
    """

    image: str
    name: str | None = None
    platforms: tuple[str, ...] | None = attrs.field(default=None, converter=_platform_names)


ImageArg = str | tuple[str, str] | ImageRequest


def digest_tag(digest: Digest) -> str:
    """The tag an image given only by digest is saved under: ``sha256-<12 hex>``."""
    return f"{digest.algorithm}-{digest.hex[:12]}"


def own_platforms(arg: ImageArg) -> Sequence[str] | None:
    """The platforms an argument asks for itself (None: those of the call)."""
    return arg.platforms if isinstance(arg, ImageRequest) else None


def parse_image_arg(arg: ImageArg) -> tuple[Reference, Reference, bool]:
    """``IMAGE[=NAME]`` (or ``(image, name)``) -> (source, archive name, name came from digest).

    A NAME without a tag takes the source's tag; a source given only by digest gets the tag
    [digest_tag][] so that loaders accept it.

    Raises:
        InvalidReference: IMAGE or NAME does not parse, or NAME has a digest.
    """
    if isinstance(arg, ImageRequest):
        text, name_text = arg.image, arg.name or ""
    elif isinstance(arg, tuple):
        text, name_text = arg
    else:
        text, _, name_text = arg.partition("=")
    source = Reference.parse(text)
    if not name_text:
        name, explicit_tag = source, source.tag is not None
    else:
        name = Reference.parse(name_text)
        if name.digest is not None:
            raise InvalidReference(
                f"invalid name {name_text!r}: an archive name cannot have a digest",
                hint="give NAME as repository[:tag]",
            )
        last = name_text.rsplit("/", 1)[-1]
        explicit_tag = ":" in last
        if not explicit_tag and source.tag is not None:
            name = name.with_tag(source.tag)
            explicit_tag = True
    if explicit_tag and name.tag is not None:
        return source, attrs.evolve(name, digest=None), False
    assert source.digest is not None
    return source, name.with_tag(digest_tag(source.digest)), True
