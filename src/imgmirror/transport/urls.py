"""Registry URLs on the request path, built and resolved with string operations where exact.

Every request used to parse its URL with `httpx.URL` several times (authorization,
``Location`` resolution, query parameters), and upload locations carry a long ``_state``
query. These helpers give the same results for the URLs registries send without a full parse;
anything unusual (a relative path without a leading ``/``, a fragment) goes to httpx.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import httpx

__all__ = ["origin", "resolve", "with_query"]


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def resolve(url: str, location: str) -> str:
    """``location`` (a ``Location`` header sent in reply to ``url``) as an absolute URL."""
    if "#" not in location:
        if location.startswith(("http://", "https://")):
            return location
        if location.startswith("/") and not location.startswith("//"):
            return origin(url) + location
    return str(httpx.URL(url).join(location))


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` appended to its query; the query it has is kept as sent."""
    if "#" in url:
        return str(httpx.URL(url).copy_merge_params(dict(params)))
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
