"""Parse a sync file (YAML) or a plain image list into checked [SyncEntry][] values.

Everything is checked here, before any registry is contacted: YAML syntax and its bounds
(size, depth, aliases: [imgmirror.model.documents][imgmirror.model.documents]), unknown or
duplicate keys, references, regexes, semver ranges, platforms and destinations. Every error
is an [InvalidSyncFile][imgmirror.errors.InvalidSyncFile] naming ``file:line`` (taken from the YAML
node marks). docs/sync.md documents every key. This module does no I/O: callers pass text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import attrs
import yaml

from imgmirror.errors import ImgmirrorError, InvalidSyncFile
from imgmirror.model.artifacts import ArtifactFilter, ReferrerChoice
from imgmirror.model.documents import MAX_FILE_BYTES, DocumentLimit, compose_yaml
from imgmirror.model.linregex import LinearRegex, LinearRegexError
from imgmirror.model.naming import Prefix, under_prefix
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.syncing.semver import SemverError, parse_range
from imgmirror.syncing.tagselect import TagSelector
from imgmirror.verify.policy import Policy
from imgmirror.verify.policyfile import policy_from_node

__all__ = ["SyncEntry", "SyncSpec", "listed_references", "parse_image_list", "parse_sync_file"]

_TOP_KEYS = ("defaults", "images")
_REFERRER_KEYS = ("referrers", "referrers-optional")
_DEFAULT_KEYS = ("to", "keep-registry", "platforms", "authfile", "verify", *_REFERRER_KEYS)
_SELECT_KEYS = ("tags", "tags-regex", "exclude-regex", "semver", "newest", "all-tags")
_ENTRY_KEYS = (
    "image", "repository", "to", "keep-registry", "platforms", "verify", *_REFERRER_KEYS,
    *_SELECT_KEYS,
)  # fmt: skip


@attrs.frozen
class SyncEntry:
    """One entry: an image (``selector`` None) or a repository with tag filters.

    Attributes:
        source: the image; for a repository entry, tag and digest are None.
        prefix: where images go under the naming rule, unless ``target`` is set.
        target: an explicit destination (for a repository entry, a repository whose tag
            is replaced by each selected tag).
        origin: ``file:line`` of the entry, for messages.
        referrers: which referrers to carry with each image, and whether they must (None:
            none).
        verify: the verification policy each image must meet (None: none).
    """

    source: Reference
    selector: TagSelector | None
    prefix: Prefix | None
    target: Reference | None
    keep_registry: bool
    platforms: tuple[Platform, ...] | None
    origin: str
    referrers: ReferrerChoice | None = None
    verify: Policy | None = None

    @property
    def key(self) -> str:
        """A stable text naming the entry (what shards hash), independent of file order."""
        what = self.selector.describe() if self.selector else self.source.identifier
        where = str(self.target or self.prefix)
        return f"{self.source.name}|{what}|{where}|{self.keep_registry}"

    def destination(self, source: Reference) -> Reference:
        """Where one selected image (``source``, with its tag or digest) goes."""
        if self.target is not None:
            if self.selector is None and self.target.tag is None:
                return attrs.evolve(self.target, tag=source.tag, digest=source.digest)
            if self.selector is not None:
                return attrs.evolve(self.target, tag=source.tag, digest=None)
            return self.target
        assert self.prefix is not None
        return under_prefix(source, self.prefix, keep_registry=self.keep_registry)


@attrs.frozen
class SyncSpec:
    """A whole sync file: its entries in file order and an optional ``authfile``."""

    entries: tuple[SyncEntry, ...]
    authfile: str | None = None
    origin: str = "<sync file>"


def _fail(origin: str, node: yaml.Node | None, message: str) -> InvalidSyncFile:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return InvalidSyncFile(f"{origin}{line}: {message}")


def _mapping(origin: str, node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict:  # type: ignore[type-arg]
    if not isinstance(node, yaml.MappingNode):
        raise _fail(origin, node, f"{what} must be a mapping")
    found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in allowed:
            raise _fail(
                origin,
                key_node,
                f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})",
            )
        if key in found:
            raise _fail(origin, key_node, f"duplicate key {key!r} in {what}")
        found[key] = (key_node, value_node)
    return found


def _scalar(origin: str, node: yaml.Node, kind: type, key: str) -> object:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(origin, node, f"{key} must be a single value")
    if kind is bool:
        if node.tag != "tag:yaml.org,2002:bool":
            raise _fail(origin, node, f"{key} must be true or false, not {node.value!r}")
        return node.value.lower() in ("true", "yes", "on", "y")
    if kind is int:
        if node.tag != "tag:yaml.org,2002:int" or int(node.value, 0) < 1:
            raise _fail(origin, node, f"{key} must be a whole number of at least 1")
        return int(node.value, 0)
    if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int"):
        raise _fail(origin, node, f"{key} must be text, not {node.value!r}")
    if not node.value.strip():
        raise _fail(origin, node, f"{key} is empty")
    return node.value


def _strings(origin: str, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(origin, node, f"{key} must be a list")
    return [(str(_scalar(origin, item, str, key)), item) for item in node.value]


def _platforms(origin: str, node: yaml.Node) -> tuple[Platform, ...]:
    try:
        return tuple(Platform.parse(text) for text, _ in _strings(origin, node, "platforms"))
    except ImgmirrorError as exc:
        raise _fail(origin, node, str(exc)) from None


def _regex(origin: str, node: yaml.Node, key: str) -> LinearRegex:
    text = str(_scalar(origin, node, str, key))
    try:
        return LinearRegex.compile(text)
    except LinearRegexError as exc:
        raise _fail(
            origin,
            node,
            f"{key} {text!r} is not a valid regex for RE2: {exc} (tags are matched in linear "
            "time, as skopeo and regsync do; RE2 has no lookaround or backreferences)",
        ) from None


def _reference(origin: str, node: yaml.Node, key: str) -> Reference:
    text = str(_scalar(origin, node, str, key))
    try:
        ref = Reference.parse(text.strip())
    except ImgmirrorError as exc:
        raise _fail(origin, node, str(exc)) from None
    if key == "repository":
        last = text.rsplit("/", 1)[-1]
        if ":" in last or "@" in last:
            raise _fail(
                origin, node, f"repository {text!r} must not carry a tag or digest; use tags:"
            )
        ref = attrs.evolve(ref, tag=None, digest=None)
    return ref


def _selector(origin: str, fields: dict, node: yaml.Node) -> TagSelector:  # type: ignore[type-arg]
    def get(key: str) -> yaml.Node | None:
        return fields[key][1] if key in fields else None

    tags_node, all_node, newest_node = get("tags"), get("all-tags"), get("newest")
    semver_node = get("semver")
    semver = None
    if semver_node is not None:
        try:
            semver = parse_range(str(_scalar(origin, semver_node, str, "semver")))
        except SemverError as exc:
            raise _fail(origin, semver_node, str(exc)) from None
    tags = []
    for tag, tag_node in _strings(origin, tags_node, "tags") if tags_node else []:
        try:
            Reference("x.io", "x").with_tag(tag)
        except ImgmirrorError:
            raise _fail(origin, tag_node, f"{tag!r} is not a valid tag") from None
        tags.append(tag)
    selector = TagSelector(
        tags=tuple(tags),
        all_tags=bool(_scalar(origin, all_node, bool, "all-tags")) if all_node else False,
        tags_regex=_regex(origin, fields["tags-regex"][1], "tags-regex")
        if "tags-regex" in fields
        else None,
        exclude_regex=_regex(origin, fields["exclude-regex"][1], "exclude-regex")
        if "exclude-regex" in fields
        else None,
        semver=semver,
        newest=int(_scalar(origin, newest_node, int, "newest")) if newest_node else None,  # type: ignore[call-overload]
    )
    if not (selector.tags or selector.all_tags or selector.tags_regex or selector.semver):
        raise _fail(
            origin,
            node,
            "a repository entry needs tags, tags-regex, semver or all-tags: true",
        )
    return selector


def _referrers(origin: str, node: yaml.Node) -> ArtifactFilter | None:
    """``referrers:``: true/all, false, or artifact types (a list or comma-separated)."""
    value: bool | str | list[str]
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        value = bool(_scalar(origin, node, bool, "referrers"))
    elif isinstance(node, yaml.SequenceNode):
        value = [text for text, _ in _strings(origin, node, "referrers")]
    else:
        value = str(_scalar(origin, node, str, "referrers"))
    try:
        return ArtifactFilter.parse(value)
    except ImgmirrorError as exc:
        raise _fail(origin, node, f"referrers: {exc.message}; use true, false, sig, att, sbom "
                    "or media types") from None  # fmt: skip


@attrs.frozen
class _Referrers:
    """``referrers:`` and ``referrers-optional:`` as a mapping sets them (None: not set)."""

    wanted: ArtifactFilter | None = None
    optional: bool = False
    given: bool = False

    @classmethod
    def read(cls, origin: str, fields: dict, base: _Referrers) -> _Referrers:  # type: ignore[type-arg]
        optional_node = fields["referrers-optional"][1] if "referrers-optional" in fields else None
        optional = (
            bool(_scalar(origin, optional_node, bool, "referrers-optional"))
            if optional_node is not None
            else base.optional
        )
        if "referrers" in fields:
            return cls(_referrers(origin, fields["referrers"][1]), optional, True)
        if optional and base.wanted is None:  # best effort alone means every referrer
            return cls(ArtifactFilter(), optional, True)
        return cls(base.wanted, optional, base.given)

    @property
    def choice(self) -> ReferrerChoice | None:
        return None if self.wanted is None else ReferrerChoice(self.wanted, self.optional)


@attrs.frozen
class _Defaults:
    prefix: Prefix | None = None
    keep_registry: bool = False
    platforms: tuple[Platform, ...] | None = None
    authfile: str | None = None
    referrers: _Referrers = attrs.field(factory=_Referrers)
    verify: Policy | None = None


def _verify(origin: str, fields: dict, given: Policy | None, base: Policy | None) -> Policy | None:  # type: ignore[type-arg]
    """``verify:`` of a mapping (``given``, the CLI's policy, wins; else ``base``)."""
    if given is not None:
        return given
    if "verify" not in fields:
        return base
    folder = None if origin.startswith("<") else os.path.dirname(origin) or "."
    return policy_from_node(fields["verify"][1], origin, base=folder, error=InvalidSyncFile)


def _prefix(origin: str, node: yaml.Node | None, text: str) -> Prefix:
    try:
        return Prefix.parse(text)
    except ImgmirrorError as exc:
        raise _fail(origin, node, str(exc)) from None


def _defaults(
    origin: str,
    node: yaml.Node | None,
    to: str | None,
    referrers: _Referrers,
    verify: Policy | None = None,
) -> _Defaults:
    fields = _mapping(origin, node, _DEFAULT_KEYS, "defaults") if node is not None else {}
    prefix = None
    if "to" in fields:
        prefix = _prefix(origin, fields["to"][1], str(_scalar(origin, fields["to"][1], str, "to")))
    if to is not None:
        prefix = _prefix(origin, None, to)
    keep = fields.get("keep-registry")
    return _Defaults(
        prefix=prefix,
        keep_registry=bool(_scalar(origin, keep[1], bool, "keep-registry")) if keep else False,
        platforms=_platforms(origin, fields["platforms"][1]) if "platforms" in fields else None,
        authfile=str(_scalar(origin, fields["authfile"][1], str, "authfile"))
        if "authfile" in fields
        else None,
        referrers=referrers if referrers.given else _Referrers.read(origin, fields, _Referrers()),
        verify=_verify(origin, fields, verify, None),
    )


def _destination(
    origin: str, node: yaml.Node, repository: bool
) -> tuple[Prefix | None, Reference | None]:
    text = str(_scalar(origin, node, str, "to")).strip()
    if text.endswith("/"):
        return _prefix(origin, node, text), None
    target = _reference(origin, node, "repository" if repository else "to")
    last = text.rsplit("/", 1)[-1]
    if not repository and ":" not in last and "@" not in last:
        target = attrs.evolve(target, tag=None)
    return None, target


_NO_DESTINATION = "no destination: set defaults.to or to: here, or give a destination prefix"


def _entry(origin: str, node: yaml.Node, defaults: _Defaults) -> SyncEntry:
    where = f"{origin}:{node.start_mark.line + 1}"
    if isinstance(node, yaml.ScalarNode):
        source = _reference(origin, node, "image")
        if defaults.prefix is None:
            raise _fail(origin, node, _NO_DESTINATION)
        return SyncEntry(
            source, None, defaults.prefix, None, defaults.keep_registry, defaults.platforms, where,
            defaults.referrers.choice, defaults.verify,
        )  # fmt: skip
    fields = _mapping(origin, node, _ENTRY_KEYS, "an images entry")
    if ("image" in fields) == ("repository" in fields):
        raise _fail(origin, node, "an entry needs exactly one of image: or repository:")
    is_repo = "repository" in fields
    source = _reference(
        origin,
        fields["repository" if is_repo else "image"][1],
        "repository" if is_repo else "image",
    )
    if not is_repo:
        extra = [k for k in _SELECT_KEYS if k in fields]
        if extra:
            raise _fail(origin, fields[extra[0]][0], f"{extra[0]} applies to repository: entries")
    prefix, target = defaults.prefix, None
    if "to" in fields:
        prefix, target = _destination(origin, fields["to"][1], is_repo)
    if prefix is None and target is None:
        raise _fail(origin, node, _NO_DESTINATION)
    keep = fields.get("keep-registry")
    referrers = _Referrers.read(origin, fields, defaults.referrers)
    return SyncEntry(
        source=source,
        selector=_selector(origin, fields, node) if is_repo else None,
        prefix=prefix,
        target=target,
        keep_registry=bool(_scalar(origin, keep[1], bool, "keep-registry"))
        if keep
        else defaults.keep_registry,
        platforms=_platforms(origin, fields["platforms"][1])
        if "platforms" in fields
        else defaults.platforms,
        origin=where,
        referrers=referrers.choice,
        verify=_verify(origin, fields, None, defaults.verify),
    )


def parse_sync_file(
    text: str,
    origin: str = "<sync file>",
    *,
    to: str | None = None,
    referrers: ReferrerChoice | None = None,
    verify: Policy | None = None,
) -> SyncSpec:
    """Parse a sync file; ``to`` (the ``--to`` option) replaces ``defaults.to``, and
    ``referrers`` (``--referrers``, ``--referrers-optional``) replaces ``defaults.referrers``
    and ``defaults.referrers-optional``; an entry's own keys win. ``verify`` (``--policy``,
    ``--verify-key``) replaces ``defaults.verify``; an entry's own ``verify:`` (a policy, or
    ``false``) still wins.

    Raises:
        InvalidSyncFile: anything wrong, naming ``origin:line``.
    """
    if len(text) > MAX_FILE_BYTES:
        raise InvalidSyncFile(
            f"{origin}: the file is larger than {MAX_FILE_BYTES >> 20} MiB",
            hint="split it into several sync files",
        )
    try:
        root = compose_yaml(text)
    except DocumentLimit as exc:
        line = f":{exc.line}" if exc.line is not None else ""
        raise InvalidSyncFile(
            f"{origin}{line}: {exc}", hint="a sync file needs far less; check what wrote it"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidSyncFile(f"{origin}{line}: YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidSyncFile(f"{origin}: YAML syntax error: {exc}") from None
    if root is None:
        raise InvalidSyncFile(f"{origin}: the file is empty; it needs an images: list")
    fields = _mapping(origin, root, _TOP_KEYS, "the top level")
    if "images" not in fields:
        raise _fail(origin, root, "the file needs an images: list")
    option = _Referrers(referrers.types, referrers.optional, True) if referrers else _Referrers()
    defaults = _defaults(
        origin, fields["defaults"][1] if "defaults" in fields else None, to, option, verify
    )
    images = fields["images"][1]
    if not isinstance(images, yaml.SequenceNode) or not images.value:
        raise _fail(origin, images, "images: must be a non-empty list")
    entries = tuple(_entry(origin, node, defaults) for node in images.value)
    return SyncSpec(entries, defaults.authfile, origin)


def listed_references(text: str, origin: str) -> Iterator[tuple[int, str, Reference]]:
    """The references of a plain list, one a line (``#`` comments and blank lines left out),
    with each line's number and text: what an image list and a lock hold.

    Raises:
        InvalidSyncFile: the list is too large, or a line is not a reference.
    """
    if len(text) > MAX_FILE_BYTES:
        raise InvalidSyncFile(
            f"{origin}: the list is larger than {MAX_FILE_BYTES >> 20} MiB",
            hint="split it into several lists",
        )
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        try:
            yield number, content, Reference.parse(content)
        except ImgmirrorError as exc:
            raise InvalidSyncFile(f"{origin}:{number}: {exc}") from None


def parse_image_list(
    text: str,
    origin: str,
    *,
    to: str,
    keep_registry: bool = False,
    platforms: tuple[Platform, ...] | None = None,
    referrers: ReferrerChoice | None = None,
) -> SyncSpec:
    """Parse a plain list: one reference per line, ``#`` comments and blank lines ignored
    (what ``kubeadm config images list`` prints). Every image goes under the prefix ``to``.

    Raises:
        InvalidSyncFile: a line is not a reference, the prefix is bad, or the list is empty.
    """
    try:
        prefix = Prefix.parse(to)
    except ImgmirrorError as exc:
        raise InvalidSyncFile(str(exc)) from None
    entries = []
    for number, _, source in listed_references(text, origin):
        entries.append(
            SyncEntry(
                source,
                None,
                prefix,
                None,
                keep_registry,
                platforms,
                f"{origin}:{number}",
                referrers,
            )
        )
    if not entries:
        raise InvalidSyncFile(f"{origin}: the list names no image")
    return SyncSpec(tuple(entries), None, origin)
