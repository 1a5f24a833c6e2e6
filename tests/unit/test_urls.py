"""Registry URLs built and resolved by string operations agree with httpx's full parse."""

from __future__ import annotations

import httpx
import pytest

from imgmirror.transport.urls import origin, resolve, with_query

BASE = "https://reg.example:5000/v2/app/blobs/uploads/"


@pytest.mark.parametrize(
    "location",
    [
        "https://reg.example:5000/v2/app/blobs/uploads/u1?_state=a%2Bb%3D&x=1",
        "/v2/app/blobs/uploads/u2?_state=abc",
        "http://other.example/upload/u3",
        "u4?_state=1",  # relative to the directory of the request
        "../elsewhere",
        "//cdn.example/blob",  # network-path reference: the request's scheme
        "/v2/app/blobs/uploads/u5#frag",
    ],
)
def test_resolve_matches_httpx_join(location: str) -> None:
    assert httpx.URL(resolve(BASE, location)) == httpx.URL(BASE).join(location)


def test_resolve_keeps_an_absolute_location_as_sent() -> None:
    location = "https://reg.example:5000/v2/a/blobs/uploads/u?_state=AbC%2Fd%3D%3D"
    assert resolve(BASE, location) == location


def test_origin() -> None:
    assert origin(BASE) == "https://reg.example:5000"
    assert origin("http://[::1]:80/v2/") == "http://[::1]:80"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://r/v2/a/blobs/uploads/u", "https://r/v2/a/blobs/uploads/u?digest=sha256%3Aab"),
        (
            "https://r/v2/a/blobs/uploads/u?_state=x%2By",
            "https://r/v2/a/blobs/uploads/u?_state=x%2By&digest=sha256%3Aab",
        ),
    ],
)
def test_with_query_appends_and_keeps_the_query_as_sent(url: str, expected: str) -> None:
    assert with_query(url, {"digest": "sha256:ab"}) == expected
    assert httpx.URL(expected).params["digest"] == "sha256:ab"


def test_with_query_encodes_each_value() -> None:
    url = with_query("http://r/v2/b/blobs/uploads/", {"mount": "sha256:1", "from": "a/b c"})
    assert httpx.URL(url).params == httpx.QueryParams({"mount": "sha256:1", "from": "a/b c"})


def test_with_query_on_a_url_with_a_fragment_goes_through_httpx() -> None:
    url = with_query("http://r/u?x=1#f", {"digest": "sha256:1"})
    assert httpx.URL(url).params == httpx.QueryParams({"x": "1", "digest": "sha256:1"})
