"""A registry front that serves the OCI 1.1 referrers API over a real distribution registry.

The distribution registry the tests run (2.8) has no referrers API. :class:`ReferrersFront`
listens on loopback and proxies every request to it, except that it

* answers ``GET /v2/<name>/referrers/<digest>[?artifactType=...]`` with an OCI index of the
  manifests pushed through it whose ``subject`` is ``<digest>`` (distribution-spec 1.1
  "Listing Referrers"), ``OCI-Filters-Applied: artifactType`` when it filtered, and
  ``Link: <...>; rel="next"`` pages when ``page_size`` is set;
* sets ``OCI-Subject: <digest>`` on the reply to a manifest PUT whose body has a ``subject``.

``override_referrers`` makes it serve fixed bytes instead (a broken registry). Independent of
imgmirror on purpose: tests must not build their world with the code under test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .registry import Registry

__all__ = ["ReferrersFront"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_HOP = {"host", "connection", "transfer-encoding", "content-length", "keep-alive"}


def _read_chunked(handler: BaseHTTPRequestHandler) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(handler.rfile.read(size))
        handler.rfile.readline()


class ReferrersFront:
    """A running front; ``url``/``host`` like a :class:`Registry`, ``stop()`` to end it."""

    def __init__(self, upstream: Registry, *, page_size: int = 0) -> None:
        self.upstream = upstream
        self.page_size = page_size
        self.override_referrers: bytes | None = None
        self.referrers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.http = httpx.Client(base_url=upstream.url, trust_env=False, timeout=30.0)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def as_registry(self) -> Registry:
        """A :class:`Registry` value describing the front (for the seeding client)."""
        return dataclasses.replace(
            self.upstream, name=f"{self.upstream.name}-front", port=self.port, process=None
        )

    def ref(self, repo: str, tag_or_digest: str = "latest") -> str:
        sep = "@" if ":" in tag_or_digest else ":"
        return f"{self.host}/{repo}{sep}{tag_or_digest}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()

    def record(self, repo: str, raw: bytes, media_type: str) -> str | None:
        """Index a manifest pushed through the front; returns its subject digest, if any."""
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if not isinstance(subject, dict) or "digest" not in subject:
            return None
        entry: dict[str, Any] = {
            "mediaType": media_type,
            "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
            "size": len(raw),
        }
        artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if artifact_type:
            entry["artifactType"] = artifact_type
        if doc.get("annotations"):
            entry["annotations"] = doc["annotations"]
        with self.lock:
            listed = self.referrers.setdefault((repo, subject["digest"]), [])
            if entry["digest"] not in {e["digest"] for e in listed}:
                listed.append(entry)
        return str(subject["digest"])

    def listing(self, repo: str, digest: str, query: str) -> tuple[bytes, dict[str, str]]:
        """The body and extra headers of one referrers API page."""
        if self.override_referrers is not None:
            return self.override_referrers, {}
        params = parse_qs(query)
        with self.lock:
            entries = list(self.referrers.get((repo, digest), []))
        headers: dict[str, str] = {}
        wanted = params.get("artifactType", [None])[0]
        if wanted:
            entries = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        if self.page_size:
            page = int(params.get("page", ["0"])[0])
            start = page * self.page_size
            if start + self.page_size < len(entries):
                extra = f"&artifactType={wanted}" if wanted else ""
                next_url = f"/v2/{repo}/referrers/{digest}?page={page + 1}{extra}"
                headers["Link"] = f'<{next_url}>; rel="next"'
            entries = entries[start : start + self.page_size]
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return json.dumps(body).encode(), headers


def _handler_for(front: ReferrersFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                return _read_chunked(self)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            length = headers.get("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _proxy(self) -> None:
            parts = urlsplit(self.path)
            with front.lock:
                front.requests.append((self.command, parts.path))
            body = self._body()
            found = _REFERRERS.match(parts.path)
            if found and self.command == "GET":
                page, extra = front.listing(found["name"], found["digest"], parts.query)
                self._reply(200, {"Content-Type": OCI_INDEX, **extra}, page)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream = front.http.request(self.command, self.path, headers=headers, content=body)
            out = {
                k: v.replace(front.upstream.url, front.url)
                for k, v in upstream.headers.items()
                if k.lower() not in _HOP | {"content-encoding"}
            }
            if self.command == "HEAD":
                out["Content-Length"] = upstream.headers.get("content-length", "0")
            manifest = _MANIFEST.match(parts.path)
            if manifest and self.command == "PUT" and upstream.status_code == 201:
                media_type = self.headers.get("content-type", "")
                subject = front.record(manifest["name"], body, media_type)
                if subject:
                    out["OCI-Subject"] = subject
            self._reply(upstream.status_code, out, upstream.content)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _proxy

    return Handler
