"""The distribution API for one registry: one method per endpoint.

[RegistryClient][] adds the endpoints to a [Connection][imgmirror.transport.connection.Connection]:
manifests
(verified against the digest asked for), blobs (streamed and verified as the bytes arrive,
redirects followed without credentials), uploads, cross-repository mounts and tag listing.

Request paths are built from checked values only: a repository must follow the reference
grammar and a tag or digest its own
([check_identifier][imgmirror.model.reference.check_identifier]), so
no string from a registry can change a path (``..``, ``/``, ``%``, ``?``, ``#`` are refused
before anything is sent). Listings (tags, catalog, referrers) follow ``Link`` pages within caps
on pages and entries, refuse a ``Link`` that repeats, and check every listed name.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

from imgmirror.errors import (
    ImgmirrorError,
    ListingError,
    NetworkError,
    NotFound,
    ReferrerError,
    RegistryError,
    ReplyTooLarge,
    TransferStalled,
    UnsafeName,
    VerificationError,
    is_transient,
)
from imgmirror.model import mediatypes
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json
from imgmirror.model.listing import Listing, NameCollector
from imgmirror.model.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from imgmirror.model.reference import check_identifier, check_repository
from imgmirror.model.referrers import Referrer, referrers_from_index
from imgmirror.transport.connection import Connection, api_host
from imgmirror.transport.download import BlobDownload
from imgmirror.transport.stall import StallWatch
from imgmirror.transport.upload import ChunkedUpload, refused_monolithic
from imgmirror.transport.urls import resolve, with_query

__all__ = [
    "MAX_LIST_ENTRIES",
    "MAX_LIST_PAGES",
    "MAX_REFERRERS_ENTRIES",
    "MAX_REFERRERS_PAGE",
    "MAX_REFERRERS_PAGES",
    "ManifestPut",
    "Mount",
    "RegistryClient",
    "api_host",
]

log = logging.getLogger("imgmirror")

#: Most pages and entries of a tag list or catalog (a page is capped at
#: ``ClientOptions.max_manifest_bytes``).
MAX_LIST_PAGES = 1000
MAX_LIST_ENTRIES = 100_000
#: Largest referrers API page we read, most pages we follow and most entries we keep.
MAX_REFERRERS_PAGE = 4 * 1024 * 1024
MAX_REFERRERS_PAGES = 100
MAX_REFERRERS_ENTRIES = 10_000


@attrs.frozen
class _Paging:
    """How one listing is read: its caps, and the error a broken listing raises."""

    what: str
    max_pages: int
    max_entries: int
    page_bytes: int
    error: Callable[[str], ImgmirrorError]
    accept: str | None = None


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


@attrs.frozen
class Mount:
    """Outcome of a cross-repository mount: done, or an upload session to continue on."""

    mounted: bool
    location: str | None = None


@attrs.frozen
class ManifestPut:
    """What a manifest PUT stored: the digest, and the ``OCI-Subject`` the registry answered
    with (a registry that indexes referrers itself names the manifest's subject there)."""

    digest: Digest
    subject: Digest | None = None


def _whole(chunks: Iterable[bytes], size: int) -> bytes:
    """The bytes of a small blob, at most ``size + 1`` of them (the upload refuses more)."""
    parts: list[bytes] = []
    held = 0
    for chunk in chunks:
        parts.append(chunk)
        held += len(chunk)
        if held > size:
            break
    return b"".join(parts)


def _manifest_not_found(registry: str, repo: str, ref: str, code: str | None) -> tuple[str, str]:
    """What a 404 on a manifest means: no such repository (``NAME_UNKNOWN``), or no such
    tag or digest in it (``MANIFEST_UNKNOWN``); other registries may not say which."""
    wanted = f"{repo}@{ref}" if ":" in ref else f"{repo}:{ref}"
    what = "digest" if ":" in ref else "tag"
    if code == "NAME_UNKNOWN":
        return (
            f"repository {registry}/{repo} not found (looking for {wanted})",
            "check the repository name (and that these credentials may see it)",
        )
    if code == "MANIFEST_UNKNOWN":
        return (
            f"{what} {ref} not found in {registry}/{repo}",
            f"the repository exists; check the {what}",
        )
    return f"{registry}/{wanted} not found", "check the repository name and the tag or digest"


class RegistryClient(Connection):
    """Speaks the distribution API to one registry; built like a [Connection][]."""

    def _url(self, repo: str, kind: str, ref: str) -> str:
        """``/v2/<repo>/<kind>/<ref>``, from a checked repository and tag or digest."""
        try:
            return f"{self._repo_url(repo)}/{kind}/{check_identifier(ref)}"
        except UnsafeName as exc:
            raise self._with_role(exc) from None

    def _repo_url(self, repo: str) -> str:
        """``/v2/<repo>``, the repository checked against the reference grammar.

        Raises:
            UnsafeName: ``repo`` is no repository name; nothing is sent.
        """
        try:
            return f"{self.base_url}/v2/{check_repository(repo)}"
        except UnsafeName as exc:
            raise self._with_role(exc) from None

    def get_manifest(self, repo: str, ref: str) -> ImageManifest | ImageIndex:
        """Fetch a manifest or index by tag or digest, verified against the digest if given.

        Raises:
            NotFound: no such tag or digest.
            VerificationError: the bytes do not hash to the requested digest.
            UnsupportedMediaType: schema 1 or a type that is not a manifest.
        """
        raw, content_type = self.get_manifest_bytes(repo, ref)
        return parse_manifest(raw, content_type)

    def get_manifest_bytes(
        self, repo: str, ref: str, accept: Sequence[str] = mediatypes.MANIFEST_ACCEPT
    ) -> tuple[bytes, str | None]:
        """The exact bytes and ``Content-Type`` of a manifest, not parsed (``inspect`` asks
        for schema 1 and any other type too); verified against ``ref`` when it is a digest.

        Raises:
            NotFound: no such tag or digest.
            VerificationError: the bytes do not hash to the requested digest.
        """
        url = self._url(repo, "manifests", ref)
        attempts = self.options.retry.start(clock=self.clock)
        watch = self.stall_watch()  # one stall window for every try
        while True:
            try:
                raw, content_type = self._manifest_once(repo, ref, url, accept, watch)
                break
            except NetworkError as exc:  # the reply broke off: a GET may be sent again
                delay = attempts.next_delay() if is_transient(exc) else None
                if delay is None:
                    raise
                self.sleep(delay)
        if ref.startswith(("sha256:", "sha512:")):
            expected = Digest.parse(ref)
            actual = Digest.of(raw, expected.algorithm)
            if actual != expected:
                raise VerificationError(f"manifest {repo}@{ref}", str(expected), str(actual))
        return raw, content_type

    def _manifest_once(
        self, repo: str, ref: str, url: str, accept: Sequence[str], watch: StallWatch
    ) -> tuple[bytes, str | None]:
        headers = {"Accept": ", ".join(accept)}
        response = self.request(
            "GET", url, scopes=[_pull(repo)], headers=headers, stream=True, watch=watch
        )
        if response.status_code == 404:
            error = self.fail(response, "GET", url)
            code = error.code
            if code != "NAME_UNKNOWN":
                code = {True: "MANIFEST_UNKNOWN", False: "NAME_UNKNOWN", None: None}[
                    self._repository_exists(repo)
                ]
            message, hint = _manifest_not_found(self.registry, repo, ref, code)
            raise self._with_role(
                NotFound(message, status=404, method="GET", url=url, code=error.code, hint=hint)
            )
        self.expect(response, "GET", url)
        cap = self.options.max_manifest_bytes
        try:
            raw = self.read_body(response, url, cap)
        except ReplyTooLarge as exc:
            exc.message = f"manifest {self.registry}/{repo}:{ref} is larger than {cap} bytes"
            exc.hint = (
                "containerd refuses manifests over 4 MiB too; raise "
                "ClientOptions.max_manifest_bytes only if this one is expected"
            )
            raise
        return raw, response.headers.get("content-type")

    def _repository_exists(self, repo: str) -> bool | None:
        """After a manifest 404: does the repository exist (None: cannot tell)? The
        distribution registry answers ``MANIFEST_UNKNOWN`` either way; its tag list tells."""
        url = f"{self._repo_url(repo)}/tags/list?n=1"
        try:
            response = self.request("GET", url, scopes=[_pull(repo)])
        except ImgmirrorError:
            return None
        response.close()
        return {200: True, 404: False}.get(response.status_code)

    def head_manifest(self, repo: str, ref: str) -> Descriptor | None:
        """Resolve a tag or digest without downloading, or None if it does not exist."""
        url = self._url(repo, "manifests", ref)
        headers = {"Accept": ", ".join(mediatypes.MANIFEST_ACCEPT)}
        response = self.request("HEAD", url, scopes=[_pull(repo)], headers=headers)
        if response.status_code == 404:
            return None
        self.expect(response, "HEAD", url)
        digest = response.headers.get("docker-content-digest")
        media_type = (response.headers.get("content-type") or "").split(";")[0].strip()
        if not digest or not media_type:
            manifest = self.get_manifest(repo, ref)
            return Descriptor(
                media_type=manifest.media_type, digest=manifest.digest, size=len(manifest.raw)
            )
        return Descriptor(
            media_type=media_type,
            digest=Digest.parse(digest),
            size=int(response.headers.get("content-length", "0")),
        )

    def blob_exists(self, repo: str, digest: Digest, scopes: Sequence[str] = ()) -> bool:
        """``HEAD`` a blob. Errors other than transport failures count as "not there"."""
        url = self._url(repo, "blobs", str(digest))
        response = self.request("HEAD", url, scopes=scopes or [_pull(repo)])
        response.close()
        return response.status_code == 200

    def blob_url(self, repo: str, digest: Digest) -> str:
        """The registry URL of a blob."""
        return self._url(repo, "blobs", str(digest))

    @contextlib.contextmanager
    def open_blob(self, repo: str, descriptor: Descriptor) -> Iterator[Iterator[bytes]]:
        """Stream a blob, following redirects, verified against ``descriptor`` as it flows.

        Redirects to other hosts (object storage, CDNs) are followed without credentials. A
        download that breaks off resumes with ``Range`` from the last verified byte, as the
        retry policy allows (see [BlobDownload][imgmirror.transport.download.BlobDownload]).

        Raises:
            NotFound: the registry does not have the blob.
            VerificationError: (while iterating) wrong size or digest.
            NetworkError: (while iterating) the transfer broke off for good.
        """
        download = BlobDownload(self, repo, descriptor, self.blob_url(repo, descriptor.digest))
        try:
            download.open()
            yield download.chunks()
        finally:
            download.close()

    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> Mount:
        """Ask the registry to link a blob from another repository of the same registry.

        A 202 opens an upload session instead (returned as ``location``); any error means
        "not mounted" and the caller uploads normally.
        """
        url = f"{self._repo_url(repo)}/blobs/uploads/"
        url = with_query(url, {"mount": str(digest), "from": check_repository(from_repo)})
        response = self.request(
            "POST",
            url,
            scopes=[_push(repo), _pull(from_repo)],
            headers={"Content-Length": "0"},
            content=b"",
        )
        response.close()
        if response.status_code == 201:
            return Mount(mounted=True)
        if response.status_code == 202 and "location" in response.headers:
            return Mount(
                mounted=False, location=self.location(url, response.headers["location"], response)
            )
        log.debug("mount of %s from %s refused: HTTP %s", digest, from_repo, response.status_code)
        return Mount(mounted=False)

    def start_upload(self, repo: str) -> str:
        """Open an upload session; returns its absolute location."""
        url = f"{self._repo_url(repo)}/blobs/uploads/"
        response = self.request(
            "POST", url, scopes=[_push(repo)], headers={"Content-Length": "0"}, content=b""
        )
        self.expect(response, "POST", url)
        response.close()
        location = response.headers.get("location")
        if not location:
            raise RegistryError(
                f"{self.host} opened an upload without a Location header",
                status=response.status_code,
                method="POST",
                url=url,
            )
        return self.location(url, location, response)

    def upload_blob(
        self,
        repo: str,
        descriptor: Descriptor,
        chunks: Iterable[bytes],
        *,
        location: str | None = None,
    ) -> None:
        """Upload a blob into an upload session (``location``, or a new one).

        Blobs up to ``ClientOptions.monolithic_bytes`` go in one ``PUT`` (the chunked path on
        a fresh session if the registry refuses that); larger ones as a streamed ``PATCH``,
        resumed after a break (see [ChunkedUpload][imgmirror.transport.upload.ChunkedUpload]), and a
        closing ``PUT``.
        ``chunks`` is consumed once, as it is sent; beyond the replay buffer nothing is held.
        """
        if location is None:
            location = self.start_upload(repo)
        if descriptor.size <= self.options.monolithic_bytes:
            data = _whole(chunks, descriptor.size)
            try:
                self._put_whole(repo, descriptor, data, location)
                return
            except (RegistryError, NetworkError) as exc:
                if isinstance(exc, TransferStalled) or (
                    isinstance(exc, RegistryError) and not refused_monolithic(exc)
                ):
                    raise  # a stall, or a refusal the chunked path would meet too
                log.debug("monolithic upload of %s refused (%s); chunked", descriptor.digest, exc)
            location = self.start_upload(repo)
            chunks = [data]
        scopes = [_push(repo)]
        stored = functools.partial(self.blob_exists, repo, descriptor.digest, scopes)
        ChunkedUpload(self, repo, descriptor, location, stored).send(chunks)

    def _put_whole(self, repo: str, descriptor: Descriptor, data: bytes, location: str) -> None:
        """Close the session with one ``PUT`` carrying the whole blob."""
        url = with_query(location, {"digest": str(descriptor.digest)})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        # A one-shot body: a PUT that broke may have left bytes behind; never send it twice.
        response = self.request("PUT", url, scopes=[_push(repo)], headers=headers, content=[data])
        self.expect(response, "PUT", url, ok=(201, 204))

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> Digest:
        """Store manifest bytes unchanged under a tag or digest; returns their digest."""
        return self.store_manifest(repo, ref, raw, media_type).digest

    def store_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> ManifestPut:
        """`put_manifest`, also returning the ``OCI-Subject`` header of the reply."""
        url = self._url(repo, "manifests", ref)
        response = self.request(
            "PUT", url, scopes=[_push(repo)], headers={"Content-Type": media_type}, content=raw
        )
        self.expect(response, "PUT", url)
        response.close()
        digest = Digest.of(raw)
        returned = response.headers.get("docker-content-digest")
        if returned and returned != str(digest):
            raise VerificationError(f"manifest {repo}:{ref} at {self.host}", str(digest), returned)
        subject = response.headers.get("oci-subject")
        try:
            return ManifestPut(digest, Digest.parse(subject.strip()) if subject else None)
        except ValueError:
            log.debug("ignoring malformed OCI-Subject %r from %s", subject, self.host)
            return ManifestPut(digest)

    def list_referrers(
        self, repo: str, subject: Digest, artifact_type: str | None = None
    ) -> tuple[Referrer, ...] | None:
        """The referrers API (``GET /v2/<repo>/referrers/<digest>``), ``Link`` pages followed.

        Returns None when the registry does not serve the API (404). With ``artifact_type``,
        the registry is asked to filter; entries it did not filter out are dropped here.

        Raises:
            ReferrerError: a page is not an OCI index or is larger than 4 MiB, there are more
                than 100 pages or 10,000 entries, or a ``Link`` repeats.
        """
        first = self._url(repo, "referrers", str(subject))
        if artifact_type:
            first = with_query(first, {"artifactType": artifact_type})
        what = f"referrers of {repo}@{subject} at {self.host}"
        paging = _Paging(
            what, MAX_REFERRERS_PAGES, MAX_REFERRERS_ENTRIES, MAX_REFERRERS_PAGE,
            lambda problem: ReferrerError(f"{what}: {problem}"), mediatypes.OCI_INDEX,
        )  # fmt: skip
        found: list[Referrer] = []
        pages = 0
        for raw in self._pages(first, [_pull(repo)], paging, absent=(404, 405)):
            pages += 1
            found.extend(referrers_from_index(raw, subject, what))
            if len(found) > MAX_REFERRERS_ENTRIES:
                raise paging.error(f"more than {MAX_REFERRERS_ENTRIES} entries")
        if not pages:
            return None
        if artifact_type:
            found = [r for r in found if r.artifact_type == artifact_type]
        return tuple(found)

    def _pages(
        self, url: str, scopes: Sequence[str], paging: _Paging, absent: Sequence[int] = ()
    ) -> Iterator[bytes]:
        """The body of each page of a listing, following ``Link: <...>; rel="next"``.

        At most ``paging.max_pages`` pages of ``paging.page_bytes`` each; a ``Link`` to a page
        already read is refused. A ``Link`` to another host is followed without credentials
        ([request][imgmirror.transport.connection.Connection.request] sends them to the registry's
        own host only).
        Nothing is yielded when the first page answers a status in ``absent``.
        """
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if len(seen) == paging.max_pages:
                raise self._with_role(paging.error(f"more than {paging.max_pages} pages"))
            seen.add(next_url)
            headers = {"Accept": paging.accept} if paging.accept else None
            response = self.request("GET", next_url, scopes=scopes, headers=headers, stream=True)
            if response.status_code in absent and len(seen) == 1:
                response.close()
                return
            self.expect(response, "GET", next_url)
            try:
                raw = self.read_body(response, next_url, paging.page_bytes)
            except ReplyTooLarge:
                problem = f"a page is larger than {paging.page_bytes} bytes"
                raise self._with_role(paging.error(problem)) from None
            yield raw
            link = response.links.get("next", {}).get("url")
            next_url = resolve(next_url, link) if link else None
            if next_url in seen:
                problem = "its Link header points back to a page already read"
                raise self._with_role(paging.error(problem))

    def _listing(self, url: str, scopes: Sequence[str], key: str, paging: _Paging) -> Listing:
        """The names of a paginated listing (``key``: ``tags`` or ``repositories``), checked."""
        kind = "tag" if key == "tags" else "repository name"
        names = NameCollector(kind)
        for raw in self._pages(url, scopes, paging):
            try:
                doc = load_json(raw)
            except ValueError:
                raise self._with_role(paging.error("a page is not JSON")) from None
            if not isinstance(doc, dict):
                raise self._with_role(paging.error("a page is not a JSON object"))
            entries = doc.get(key)
            if entries is None:
                entries = []
            if not isinstance(entries, list):
                raise self._with_role(paging.error(f"its {key!r} member is not a list"))
            names.add(entries)
            if names.count > paging.max_entries:
                raise self._with_role(paging.error(f"more than {paging.max_entries} entries"))
        return names.listing()

    def _list_paging(self, what: str) -> _Paging:
        def error(problem: str) -> ListingError:
            return ListingError(
                f"{what} at {self.host}: {problem}",
                hint="the registry's listing cannot be used; report it to the registry's owner",
            )

        cap = self.options.max_manifest_bytes
        return _Paging(what, MAX_LIST_PAGES, MAX_LIST_ENTRIES, cap, error)

    def tag_listing(self, repo: str, page_size: int = 1000) -> Listing:
        """The tags of a repository, following ``Link`` pagination; names that are not valid
        tags are counted in ``rejected``, never returned.

        Raises:
            NotFound: no such repository.
            ListingError: a page is not a JSON object with a ``tags`` list or is larger than
                ``max_manifest_bytes``, more than 1000 pages or 100,000 entries, a ``Link``
                that repeats.
        """
        url = f"{self._repo_url(repo)}/tags/list?n={page_size}"
        return self._listing(url, [_pull(repo)], "tags", self._list_paging(f"tag list of {repo}"))

    def list_tags(self, repo: str, page_size: int = 1000) -> list[str]:
        """The valid tags of a repository (`tag_listing`; what was left out is logged)."""
        return self._names(self.tag_listing(repo, page_size), f"{self.registry}/{repo}")

    def catalog_listing(self, page_size: int = 1000) -> Listing:
        """Every repository of the registry (``/v2/_catalog``), where the registry allows it;
        names that are not valid repository names are counted in ``rejected``.

        Raises:
            ListingError: as for `tag_listing`.
        """
        url = f"{self.base_url}/v2/_catalog?n={page_size}"
        return self._listing(
            url, ["registry:catalog:*"], "repositories", self._list_paging("catalog")
        )

    def catalog(self, page_size: int = 1000) -> list[str]:
        """The valid repository names of `catalog_listing` (what was left out is logged)."""
        return self._names(self.catalog_listing(page_size), self.registry)

    @staticmethod
    def _names(listing: Listing, where: str) -> list[str]:
        problem = listing.problem()
        if problem:
            log.warning("%s: %s", where, problem)
        return list(listing.names)
