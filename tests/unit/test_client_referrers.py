"""RegistryClient.list_referrers and store_manifest: what a real registry will not show on
demand (oversized or endless pages, unfiltered answers), one handler per case."""

from __future__ import annotations

import json

import httpx
import pytest

from imgmirror.errors import ReferrerError
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.transport import client as client_module
from tests.unit.test_client import make_client

SUBJECT = Digest.of(b"image")
SBOM = Digest.of(b"sbom")
SIG = Digest.of(b"sig")


def _entry(digest: Digest, artifact_type: str) -> dict[str, object]:
    return {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": str(digest),
        "size": 10,
        "artifactType": artifact_type,
    }


def _page(*entries: dict[str, object]) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": list(entries)}
    return json.dumps(doc).encode()


def test_pages_are_followed_and_an_unapplied_filter_is_applied_here() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/v2/":
            return httpx.Response(200)
        if "page=2" in str(request.url):
            return httpx.Response(200, content=_page(_entry(SIG, "application/x-sig")))
        link = f'</v2/repo/referrers/{SUBJECT}?page=2>; rel="next"'
        sbom = _entry(SBOM, "application/spdx+json")
        return httpx.Response(200, content=_page(sbom), headers={"Link": link})

    client = make_client(handler)
    everything = client.list_referrers("repo", SUBJECT)
    assert everything is not None
    assert [r.digest for r in everything] == [SBOM, SIG]
    filtered = client.list_referrers("repo", SUBJECT, "application/spdx+json")
    assert filtered is not None
    assert [r.digest for r in filtered] == [SBOM]
    assert "artifactType=application%2Fspdx%2Bjson" in seen[-2]


def test_no_api_is_none_and_a_non_index_is_refused() -> None:
    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.path == "/v2/" else 404)

    assert make_client(missing).list_referrers("repo", SUBJECT) is None

    def image(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(
            200, content=b'{"mediaType": "%s"}' % mediatypes.OCI_MANIFEST.encode()
        )

    with pytest.raises(ReferrerError, match="not an OCI index"):
        make_client(image).list_referrers("repo", SUBJECT)


def test_pages_are_bounded_in_size_and_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_REFERRERS_PAGE", 100)
    monkeypatch.setattr(client_module, "MAX_REFERRERS_PAGES", 3)

    def big(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(200, content=_page(*[_entry(SBOM, "x/y")] * 5))

    with pytest.raises(ReferrerError, match="larger than 100 bytes"):
        make_client(big).list_referrers("repo", SUBJECT)
    calls: list[int] = []

    def endless(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        calls.append(1)
        link = f'</v2/repo/referrers/{SUBJECT}?page={len(calls)}>; rel="next"'
        return httpx.Response(200, content=_page(), headers={"Link": link})

    monkeypatch.setattr(client_module, "MAX_REFERRERS_PAGE", 4096)
    with pytest.raises(ReferrerError, match="more than 3 pages"):
        make_client(endless).list_referrers("repo", SUBJECT)
    assert len(calls) == 3


def test_store_manifest_reports_the_oci_subject_header() -> None:
    raw = b'{"schemaVersion": 2}'
    answers = iter([str(SUBJECT), "not-a-digest", None])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(200)
        subject = next(answers)
        headers = {"OCI-Subject": subject} if subject else {}
        return httpx.Response(
            201, headers={"Docker-Content-Digest": str(Digest.of(raw)), **headers}
        )

    client = make_client(handler)
    put = client.store_manifest("repo", "t", raw, mediatypes.OCI_MANIFEST)
    assert (put.digest, put.subject) == (Digest.of(raw), SUBJECT)
    assert client.store_manifest("repo", "t", raw, mediatypes.OCI_MANIFEST).subject is None
    assert client.put_manifest("repo", "t", raw, mediatypes.OCI_MANIFEST) == Digest.of(raw)
