"""An independent, minimal registry client for setting up and checking test registries.

Deliberately does not use imgmirror: tests must not trust the code under test to build their
world. Plain httpx; monolithic uploads (POST, then PUT ``<Location>&digest=``); Basic or
Bearer auth from the 401 challenge; TLS through the registry's CA (and client cert for mTLS).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from .images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    Image,
    Index,
    digest_of,
)
from .registry import Registry

__all__ = ["MANIFEST_ACCEPT", "RegistryClient", "SeedError", "parse_challenge", "seed"]

MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


class SeedError(AssertionError):
    """A registry request made by the test harness failed."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Parse one ``WWW-Authenticate`` value into ``(scheme, params)`` (lower-cased keys)."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for m in _PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


class RegistryClient:
    """Just enough of the registry API to seed and inspect test registries."""

    def __init__(
        self,
        registry: Registry,
        creds: tuple[str, str] | None = None,
        *,
        anonymous: bool = False,
        timeout: float = 30.0,
    ) -> None:
        """``creds`` default to ``registry.default_creds``; ``anonymous=True`` sends none."""
        self.registry = registry
        self.creds = None if anonymous else (creds or registry.default_creds)
        self.http = httpx.Client(
            base_url=registry.url, verify=registry.verify(), timeout=timeout, trust_env=False
        )
        self._auth: dict[str, str] = {}  # scope key -> Authorization value
        self._basic: str | None = None
        self.requests: list[tuple[str, str, int]] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth --------------------------------------------------------------------------------

    def _basic_value(self) -> str:
        if self.creds is None:
            raise SeedError(f"{self.registry.describe()} wants credentials; none given")
        raw = f"{self.creds[0]}:{self.creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def token(self, challenge: Mapping[str, str], scopes: Iterable[str]) -> str:
        """Fetch a bearer token from the challenge's realm (Basic creds if we have them)."""
        params: list[tuple[str, str | int | float | bool | None]] = []
        if "service" in challenge:
            params.append(("service", challenge["service"]))
        params += [("scope", s) for s in scopes]
        headers = {"Authorization": self._basic_value()} if self.creds else {}
        response = httpx.get(
            challenge["realm"], params=params, headers=headers, timeout=30.0, trust_env=False
        )
        if response.status_code != 200:
            raise SeedError(
                f"token request to {challenge['realm']} failed: {response.status_code} "
                f"{response.text[:500]}"
            )
        body = response.json()
        token: str = body.get("token") or body["access_token"]
        return token

    def request(
        self,
        method: str,
        url: str,
        *,
        scope_repo: str | None = None,
        push: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, authenticating on 401 and retrying once. Bodies must be bytes."""
        key = f"{scope_repo}:{'push' if push else 'pull'}"
        headers = dict(kwargs.pop("headers", {}) or {})
        auth = self._basic or self._auth.get(key)
        if auth:
            headers["Authorization"] = auth
        response = self.http.request(method, url, headers=headers, **kwargs)
        if response.status_code == 401 and "www-authenticate" in response.headers:
            scheme, params = parse_challenge(response.headers["www-authenticate"])
            if scheme == "basic":
                self._basic = self._basic_value()
                headers["Authorization"] = self._basic
            elif scheme == "bearer":
                actions = "pull,push" if push else "pull"
                scopes = [f"repository:{scope_repo}:{actions}"] if scope_repo else []
                if "scope" in params and params["scope"] not in scopes:
                    scopes.append(params["scope"])
                value = "Bearer " + self.token(params, scopes)
                self._auth[key] = value
                headers["Authorization"] = value
            else:
                raise SeedError(f"unsupported challenge {response.headers['www-authenticate']}")
            response = self.http.request(method, url, headers=headers, **kwargs)
        self.requests.append((method, str(response.url), response.status_code))
        return response

    @staticmethod
    def _check(response: httpx.Response, *ok: int) -> httpx.Response:
        if response.status_code not in ok:
            raise SeedError(
                f"{response.request.method} {response.request.url} -> {response.status_code}: "
                f"{response.text[:1000]}"
            )
        return response

    # -- blobs -------------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope_repo=repo)
        return r.status_code == 200

    def push_blob(self, repo: str, blob: Blob | bytes, *, check_exists: bool = True) -> str:
        """Monolithic upload: POST -> 202 Location, PUT Location(+digest) -> 201."""
        data = blob.data if isinstance(blob, Blob) else blob
        digest = digest_of(data)
        if check_exists and self.blob_exists(repo, digest):
            return digest
        start = self._check(
            self.request(
                "POST",
                f"/v2/{repo}/blobs/uploads/",
                scope_repo=repo,
                push=True,
                headers={"Content-Length": "0"},
            ),
            202,
        )
        # Location may be relative (relativeurls) and carries _state in its query: merge.
        location = start.request.url.join(start.headers["location"])
        put_url = location.copy_merge_params({"digest": digest})
        self._check(
            self.request(
                "PUT",
                str(put_url),
                scope_repo=repo,
                push=True,
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            ),
            201,
        )
        return digest

    def get_blob(self, repo: str, digest: str) -> bytes:
        r = self._check(self.request("GET", f"/v2/{repo}/blobs/{digest}", scope_repo=repo), 200)
        return r.content

    # -- manifests ---------------------------------------------------------------------------

    def push_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        r = self._check(
            self.request(
                "PUT",
                f"/v2/{repo}/manifests/{reference}",
                scope_repo=repo,
                push=True,
                content=raw,
                headers={"Content-Type": media_type},
            ),
            201,
        )
        digest = digest_of(raw)
        served = r.headers.get("docker-content-digest")
        if served and served != digest:
            raise SeedError(f"registry computed {served} for a manifest with digest {digest}")
        return digest

    def get_manifest(
        self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT
    ) -> tuple[bytes, str]:
        """``(raw bytes, content type)``."""
        r = self._check(
            self.request(
                "GET",
                f"/v2/{repo}/manifests/{reference}",
                scope_repo=repo,
                headers={"Accept": accept},
            ),
            200,
        )
        return r.content, r.headers.get("content-type", "")

    def manifest_exists(self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT) -> bool:
        r = self.request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scope_repo=repo,
            headers={"Accept": accept},
        )
        return r.status_code == 200

    def assert_complete(self, repo: str, reference: str) -> str:
        """``repo:reference`` is there with every child manifest and blob; returns its digest."""
        raw, _ = self.get_manifest(repo, reference)
        doc = json.loads(raw)
        for child in doc.get("manifests") or []:
            self.assert_complete(repo, child["digest"])
        for blob in [doc.get("config"), *(doc.get("layers") or [])]:
            if blob is not None:
                assert self.blob_exists(repo, blob["digest"]), (
                    f"{repo}:{reference} points at missing blob {blob['digest']}"
                )
        return digest_of(raw)

    def tags(self, repo: str) -> list[str]:
        r = self._check(self.request("GET", f"/v2/{repo}/tags/list", scope_repo=repo), 200)
        tags: list[str] = r.json().get("tags") or []
        return tags

    def delete_manifest(self, repo: str, digest: str) -> None:
        self._check(
            self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope_repo=repo, push=True),
            202,
        )

    # -- whole images --------------------------------------------------------------------------

    def push_image(self, repo: str, image: Image, tag: str | None = None) -> str:
        """Blobs, then the manifest by digest, then (optionally) by tag."""
        for blob in image.blobs:
            self.push_blob(repo, blob)
        self.push_manifest(repo, image.digest, image.manifest, image.media_type)
        if tag:
            self.push_manifest(repo, tag, image.manifest, image.media_type)
        return image.digest

    def push_index(self, repo: str, index: Index, tag: str | None = None) -> str:
        """Every child image by digest, then the index by digest and (optionally) tag."""
        for image in index.images:
            self.push_image(repo, image)
        self.push_manifest(repo, index.digest, index.manifest, index.media_type)
        if tag:
            self.push_manifest(repo, tag, index.manifest, index.media_type)
        return index.digest

    def push(self, repo: str, item: Image | Index, tag: str | None = None) -> str:
        if isinstance(item, Index):
            return self.push_index(repo, item, tag)
        return self.push_image(repo, item, tag)


def seed(
    registry: Registry,
    repo: str,
    tag: str | None,
    image_or_index: Image | Index,
    creds: tuple[str, str] | None = None,
) -> str:
    """Push an image or index (all children and blobs) to ``registry/repo:tag``.

    ``creds`` default to ``registry.default_creds``. Returns the top-level manifest digest.
    """
    with RegistryClient(registry, creds) as client:
        return client.push(repo, image_or_index, tag)
