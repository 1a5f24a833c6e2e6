"""RegistryClient listings and request paths against what a hostile registry sends: endless
or self-pointing pages, a Link to another host, names that would climb out of a path, bodies
that are not lists. One handler per case."""

from __future__ import annotations

import base64
import json
import tracemalloc
from collections.abc import Sequence

import httpx
import pytest

from imgmirror import errors
from imgmirror.errors import ImgmirrorError, ReferrerError
from imgmirror.model.digest import Digest
from imgmirror.transport import client as client_module
from tests.unit.test_client import MANIFEST, make_client, ping_ok

SUBJECT = Digest.of(b"image")
# What the client raises, named through the module so that this file runs against code that
# predates them (each test then fails by its assertion, not by an import error).
ListingError = getattr(errors, "ListingError", ImgmirrorError)
UnsafeName = getattr(errors, "UnsafeName", ImgmirrorError)


def tags_page(tags: Sequence[object], link: str | None = None) -> httpx.Response:
    headers = {"Link": f'<{link}>; rel="next"'} if link else {}
    return httpx.Response(200, json={"name": "app", "tags": tags}, headers=headers)


@pytest.mark.timeout(60)
def test_endless_distinct_pages_stop_at_the_page_cap(monkeypatch):
    monkeypatch.setattr(client_module, "MAX_LIST_PAGES", 50, raising=False)
    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        served.append(str(request.url))
        page = int(request.url.params.get("page", "0"))
        return tags_page([f"t{page}"], f"/v2/app/tags/list?page={page + 1}")

    with pytest.raises(ListingError, match=r"tag list of app at registry\.test: more than 50 page"):
        make_client(handler).list_tags("app")
    assert len(served) == 50


@pytest.mark.timeout(60)
def test_the_default_caps_end_an_endless_listing_in_flat_memory():
    """1,000 distinct tags a page, a new Link every time: the entry cap ends it after about
    100 pages, before the listing holds more than 100,000 names."""
    pages = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal pages
        if (ping := ping_ok(request)) is not None:
            return ping
        pages += 1
        tags = [f"tag-{pages}-{i}" for i in range(1000)]
        return tags_page(tags, f"/v2/app/tags/list?last=tag-{pages}")

    tracemalloc.start()
    try:
        with pytest.raises(ListingError, match="more than 100000 entries"):
            make_client(handler).list_tags("app")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pages == 101
    assert peak < 64 * 1024 * 1024


@pytest.mark.parametrize(
    "links",
    [
        {"": "/v2/app/tags/list?n=1000"},  # the first page points at itself
        {
            "": "/v2/app/tags/list?p=2",
            "p=2": "/v2/app/tags/list?p=3",
            "p=3": "/v2/app/tags/list?p=2",
        },
    ],
)
@pytest.mark.timeout(60)
def test_a_link_back_to_a_page_already_read_is_refused(links):
    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        served.append(str(request.url))
        key = next((k for k in links if k and k in str(request.url)), "")
        return tags_page(["a"], links[key])

    with pytest.raises(ListingError, match="points back to a page already read"):
        make_client(handler).list_tags("app")
    assert len(served) == len(links)


def test_a_link_to_another_host_gets_no_credentials():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "other.test":
            return httpx.Response(200, json={"tags": ["c"]})
        if request.url.path == "/v2/" and "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return tags_page(["a", "b"], "https://other.test/v2/app/tags/list?last=b")

    client = make_client(handler, credential="user:secret")
    assert client.list_tags("app") == ["a", "b", "c"]

    basic = "Basic " + base64.b64encode(b"user:secret").decode()
    first = next(r for r in seen if r.url.path == "/v2/app/tags/list")
    assert first.headers.get("authorization") == basic
    [other] = [r for r in seen if r.url.host == "other.test"]
    assert "authorization" not in other.headers


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'["a", "b"]', "a page is not a JSON object"),
        (b'{"tags": "a"}', "its 'tags' member is not a list"),
        (b'{"tags": {"a": 1}}', "its 'tags' member is not a list"),
        (b"not json", "a page is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "a page is not JSON"),
    ],
)
def test_a_page_that_is_no_tag_list_is_one_error(body, problem):
    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        return httpx.Response(200, content=body)

    with pytest.raises(ListingError) as caught:
        make_client(handler).list_tags("app")
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_listed_names_that_are_not_tags_are_left_out_and_counted():
    hostile = ["../../../../victim/manifests/latest", 7, None, "x" * 100_000, "a/b", "%2e", "?q"]

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        return tags_page(["1.0", *hostile, "1.0", "v2"])

    listing = make_client(handler).tag_listing("app")

    assert listing.names == ("1.0", "v2")
    assert listing.rejected == len(hostile)
    problem = listing.problem()
    assert problem is not None
    assert problem.startswith("the registry listed 7 names that are not valid tags, left out: ")
    assert "'../../../../victim/manifests/latest' is not a valid tag" in problem
    assert "a JSON number (not a string) is not a valid tag" in problem
    assert problem.endswith("; and 4 more")


def test_catalog_names_are_checked_against_the_repository_grammar():
    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        names = ["app", "team/app", "../etc", "Upper", "a//b", "\x1b[2Jx", "ok"]
        return httpx.Response(200, json={"repositories": names})

    listing = make_client(handler).catalog_listing()
    assert listing.names == ("app", "team/app", "ok")
    assert listing.rejected == 4
    assert "\x1b" not in (listing.problem() or "")


@pytest.mark.parametrize(
    ("repo", "ref"),
    [
        ("app", "../../victim/manifests/latest"),
        ("app", "a/b"),
        ("app", ".."),
        ("app", "%2e%2e"),
        ("app", "latest?x=1"),
        ("app", "latest#frag"),
        ("app", "sha256:../../x"),
        ("a/../b", "latest"),
        ("a/./b", "latest"),
        ("a%2fb", "latest"),
        ("app?x", "latest"),
        ("/app", "latest"),
        ("app#x", "latest"),
    ],
)
def test_a_path_segment_that_would_change_the_path_is_refused_before_sending(repo, ref):
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        sent.append(str(request.url))
        return httpx.Response(201, content=MANIFEST)

    client = make_client(handler)
    for call in (
        lambda: client.get_manifest(repo, ref),
        lambda: client.head_manifest(repo, ref),
        lambda: client.put_manifest(
            repo, ref, MANIFEST, "application/vnd.oci.image.manifest.v1+json"
        ),
    ):
        with pytest.raises(UnsafeName):
            call()
    assert sent == []


def test_repositories_in_upload_mount_and_listing_paths_are_checked():
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        sent.append(str(request.url))
        return httpx.Response(404)

    client = make_client(handler)
    with pytest.raises(UnsafeName):
        client.start_upload("../victim")
    with pytest.raises(UnsafeName):
        client.mount_blob("app", SUBJECT, "../victim")
    with pytest.raises(UnsafeName):
        client.list_tags("a/../../b")
    with pytest.raises(UnsafeName):
        client.blob_exists("..", SUBJECT)
    assert sent == []


def test_referrers_pages_repeating_their_link_are_refused():
    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        page = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
        link = f'</v2/repo/referrers/{SUBJECT}>; rel="next"'
        return httpx.Response(200, content=json.dumps(page).encode(), headers={"Link": link})

    with pytest.raises(ReferrerError, match="points back to a page already read"):
        make_client(handler).list_referrers("repo", SUBJECT)
