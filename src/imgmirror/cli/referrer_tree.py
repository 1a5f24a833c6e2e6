"""The referrer tree as text: shared by ``imgmirror referrers`` and ``inspect --referrers``.

Each line: artifact type, digest, size (and the cosign tag it hangs on), then its
annotations; referrers of referrers nested below, child manifests of an index indented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgmirror.cli.terminal import human_bytes

if TYPE_CHECKING:
    from imgmirror.model.referrers import ReferrerNode
    from imgmirror.referrers.discover import ReferrerListing

__all__ = ["render_listing"]


def _line(node: ReferrerNode, prefix: str, last: bool) -> list[str]:
    referrer = node.referrer
    branch, below = ("└── ", "    ") if last else ("├── ", "│   ")
    tag = f"  (tag {referrer.tag})" if referrer.tag else ""
    lines = [
        f"{prefix}{branch}{referrer.artifact_type}  {referrer.digest}  "
        f"{human_bytes(referrer.descriptor.size)}{tag}"
    ]
    inner = prefix + below
    for key, value in sorted(referrer.descriptor.annotations.items()):
        lines.append(f"{inner}{'│ ' if node.children else '  '} {key}={value}")
    for i, child in enumerate(node.children):
        lines.extend(_line(child, inner, i == len(node.children) - 1))
    return lines


def render_listing(listing: ReferrerListing, indent: str = "") -> list[str]:
    """The referrer tree of ``listing`` (``referrers`` and ``inspect --referrers``): the
    top manifest's referrers, then each child manifest that has some, indented."""
    lines: list[str] = []
    for digest, media_type in listing.subjects:
        nodes = listing.under(digest)
        top = str(digest) == listing.digest
        prefix = indent if top else indent + "    "
        if not top:
            if not nodes:
                continue
            lines.append(f"{indent}  {media_type}  {digest}")
        for i, node in enumerate(nodes):
            lines.extend(_line(node, prefix, i == len(nodes) - 1))
    if not listing.nodes:
        lines.append(f"{indent}  (no referrers)")
    return lines
