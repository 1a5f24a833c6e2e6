"""The imgmirror exception tree, and the pure mapping of registry error bodies onto it.

Every exception imgmirror raises on purpose derives from [ImgmirrorError][]. Each carries
a ``hint`` (what the user should do, or ``None``) and renders as one line,
``"<message>; <hint>"``, so the CLI can print ``str(exc)`` as-is. This module does no I/O.

```
ImgmirrorError                     .message, .hint, .role ("source"/"destination" or None),
                                   .setting (the parameter to change, e.g. "authfile")
├── InvalidReference (ValueError)  an image reference string does not parse
│   └── UnsafeName                 a repository, tag or digest that would change a request's
│                                  path (a listed name, a path segment with / .. % ? #)
├── InvalidDigest (ValueError)     a digest string does not parse / unsupported algorithm
├── InvalidPlatform (ValueError)   a platform string or object does not parse
├── InvalidSyncFile (ValueError)   a sync file or image list: file, line and what is wrong
├── SemverError (ValueError)       a version or semver range does not parse
├── ShardError (ValueError)        a shard is not I/N, or --shards has no index to read
├── NoTagsSelected (ValueError)    a sync entry's tag filters match none of the source's tags
├── ManifestError
│   ├── UnsupportedMediaType       schema 1, unknown manifest types
│   ├── InvalidManifest (ValueError) malformed JSON or missing fields
│   └── PlatformNotFound           .available: tuple[str, ...]
├── VerificationError              .what, .expected, .actual (digest or size mismatch)
├── CredentialsError               bad creds string, failing credential helper, bad authfile,
│   │                              unusable token response or token realm
│   └── ArchiveNamesNeedConsent    explicit credentials for registries an archive names
│                                  .registries
├── ArchiveError                   unsafe path, missing blob, bad manifest.json, corrupt layer
├── ReferrerError                  a signature/SBOM/attestation cannot be found or carried
│   └── InvalidArtifactType (ValueError) an unknown artifact type name (not sig/att/sbom)
├── ListingError                   a tag list or catalog that cannot be used: not a list, more
│                                  pages or entries than the caps, a Link that repeats
├── InvalidPolicy (ValueError)     a verification policy, key or trusted root cannot be used
├── PolicyRefused                  the verification policy refused an image  .image, .digest
├── TransferCancelled              stopped: the operation failed elsewhere or was interrupted
├── QuotaExhausted                 a registry's pull quota would run out (on_quota="stop")
├── TLSConfigError                 a CA file or a certs.d file is missing or not PEM
├── KubernetesError                a kubeconfig that cannot be used, or a Kubernetes API
│                                  server's refusal or error   .status (None: no reply)
├── NetworkError                   connection refused, DNS, timeout (wraps httpx errors)
│   ├── TransferStalled            under the floor rate for the timeout (never retried)
│   └── TLSVerificationError       .host
└── RegistryError                  .status, .method, .url (redacted), .code, .detail
    ├── ReplyTooLarge              a reply body over its cap (never truncated)   .limit
    ├── InsecureLocation           an HTTPS registry pointed at itself over plain HTTP
    ├── AuthenticationError        401 / UNAUTHORIZED / token endpoint refused the credentials
    ├── PermissionDenied           403 / DENIED
    ├── NotFound                   404 / *_UNKNOWN
    └── RateLimited                429 / TOOMANYREQUESTS   .retry_after
```
"""

from __future__ import annotations

import http
import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ArchiveError",
    "ArchiveNamesNeedConsent",
    "AuthenticationError",
    "CredentialsError",
    "ImgmirrorError",
    "InsecureLocation",
    "InvalidArtifactType",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidPlatform",
    "InvalidPolicy",
    "InvalidReference",
    "InvalidSyncFile",
    "KubernetesError",
    "ListingError",
    "ManifestError",
    "NetworkError",
    "NoTagsSelected",
    "NotFound",
    "PermissionDenied",
    "PlatformNotFound",
    "PolicyRefused",
    "QuotaExhausted",
    "RateLimited",
    "ReferrerError",
    "RegistryError",
    "ReplyTooLarge",
    "SemverError",
    "ShardError",
    "TLSConfigError",
    "TLSVerificationError",
    "TransferCancelled",
    "TransferStalled",
    "UnsafeName",
    "UnsupportedMediaType",
    "VerificationError",
    "credentials_hint",
    "is_transient",
    "printable",
    "quoted",
    "redact_url",
    "registry_error_from_response",
]

# Status codes worth retrying (DIST api.md: 502/503/504; 408 and 429 are transient by definition).
_TEMPORARY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_TEMPORARY_CODES = frozenset({"TOOMANYREQUESTS", "UNAVAILABLE"})
_MAX_TEXT = 300  # longest piece of a registry-supplied text we put into a message
_JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on escaped: ESC, BEL, CR and the
    other C0/C1 controls, bidi overrides, lone surrogates (``\\x1b``, ``\\u202e``); the rest
    as it is. For anything a registry or a file sent that is printed or put into a message.
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode()
        for ch in text
    )


def quoted(value: object, limit: int = 80) -> str:
    """An untrusted value for a message: quoted, escaped ([printable][]) and at most
    ``limit`` characters of it; a value that is not a string is named by its type."""
    if not isinstance(value, str):
        kind = _JSON_TYPES.get(type(value), type(value).__name__)
        return f"a JSON {kind} (not a string)"
    if len(value) <= limit:
        return f"'{printable(value)}'"
    return f"'{printable(value[:limit])}…' ({len(value)} characters)"


def _one_line(text: str) -> str:
    return printable(" ".join(text.split()))


class ImgmirrorError(Exception):
    """Root of every error imgmirror raises on purpose.

    Args:
        message: What failed, naming the object involved.
        hint: What the user should do about it, if anything useful can be said.

    Attributes:
        role: Which side of the operation failed, ``"source"`` or ``"destination"`` (or
            ``"registry"`` for commands that read one registry), when it matters: the CLI
            names the matching credentials option. None otherwise.
        setting: The keyword parameter the hint tells the caller to change (``"authfile"``,
            ``"src_creds"``, ``"platforms"``...), named as such in the hint; the CLI puts its
            option's name in its place. None otherwise. Messages never name CLI options.
    """

    role: str | None = None
    setting: str | None = None

    def __init__(
        self, message: str, *, hint: str | None = None, setting: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if setting is not None:
            self.setting = setting

    def __str__(self) -> str:
        if self.hint:
            return _one_line(f"{self.message}; {self.hint}")
        return _one_line(self.message)


class InvalidReference(ImgmirrorError, ValueError):
    """An image reference string does not follow the distribution grammar."""


class UnsafeName(InvalidReference):
    """A repository, tag or digest that would change a request's path: a name a registry
    listed that the reference grammar does not allow, or a path segment holding ``/``, ``..``,
    ``%``, ``?`` or ``#``. Refused before any request is sent."""


class InvalidSyncFile(ImgmirrorError, ValueError):
    """A sync file or image list is malformed; the message names the file and line."""


class SemverError(ImgmirrorError, ValueError):
    """A version or semver range does not parse (the message says where)."""


class ShardError(ImgmirrorError, ValueError):
    """A shard specification does not parse, or its index cannot be found."""


class NoTagsSelected(ImgmirrorError, ValueError):
    """A sync entry's tag filters matched none of the tags the repository has."""


class InvalidDigest(ImgmirrorError, ValueError):
    """A digest string is malformed or uses an unsupported algorithm."""


class InvalidPlatform(ImgmirrorError, ValueError):
    """A platform string (``os/arch[/variant]``) or platform object is malformed."""


class ManifestError(ImgmirrorError):
    """A manifest, index or image config cannot be used."""


class UnsupportedMediaType(ManifestError):
    """The manifest type is not supported (schema 1, or an unknown manifest type)."""


class InvalidManifest(ManifestError, ValueError):
    """A manifest, index or config is not valid JSON or lacks a required field."""


class PlatformNotFound(ManifestError):
    """An index has no image for the requested platform.

    Args:
        message: What was looked for, and where.
        available: The platforms the index does offer, as ``os/arch[/variant]`` strings.
        hint: Overrides the default hint, which lists ``available``.
    """

    def __init__(
        self, message: str, available: tuple[str, ...] = (), *, hint: str | None = None
    ) -> None:
        self.available = tuple(available)
        if hint is None:
            hint = (
                f"available: {', '.join(self.available)}"
                if self.available
                else "the index lists no images"
            )
        super().__init__(message, hint=hint)


class VerificationError(ImgmirrorError):
    """Received content does not match its expected digest or size.

    Args:
        what: The quantity that was checked, e.g. ``"digest of blob sha256:ab…"``.
        expected: The value that was promised.
        actual: The value that was received.
        hint: What to do about it.
    """

    def __init__(
        self, what: str, expected: object, actual: object, *, hint: str | None = None
    ) -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: expected {expected}, got {actual}", hint=hint)


class CredentialsError(ImgmirrorError):
    """Credentials, a credential helper, an auth file or a token response cannot be used."""


class ArchiveNamesNeedConsent(CredentialsError):
    """Explicit credentials and no destination: the registries come from the archive.

    Attributes:
        registries: the registries the archive names, sorted.
    """

    def __init__(self, registries: tuple[str, ...]) -> None:
        super().__init__(
            "credentials were given but no destination, and the archive names the "
            f"registries {', '.join(registries)}; explicit credentials are sent only to an "
            "explicit destination",
            hint="give a destination, or consent to sending them to the archive's registries "
            "(to_archive_names)",
        )
        self.registries = registries


class ArchiveError(ImgmirrorError):
    """An archive (or a layer inside one) is unsafe, incomplete or corrupt."""


class ReferrerError(ImgmirrorError):
    """A referrer (signature, SBOM, attestation) cannot be discovered or carried: a fallback
    tag or referrers response that is not an index, a cycle, a referrer that failed to copy."""


class InvalidArtifactType(ReferrerError, ValueError):
    """An artifact type name is neither a short name (sig, att, sbom) nor a media type."""


class ListingError(ImgmirrorError):
    """A tag list or catalog a registry sent cannot be used: the body is not a JSON object
    with a list, there are more pages or entries than the caps, or a ``Link`` repeats."""


class InvalidPolicy(ImgmirrorError, ValueError):
    """A verification policy cannot be used: a malformed policy file or ``verify:`` entry
    (naming file and line), a public key that is not PEM, a trusted root that does not load,
    or keyless verification asked without the ``imgmirror[verify]`` extra."""


class PolicyRefused(ImgmirrorError):
    """The verification policy refused an image: nothing of it was written at the destination.

    Args:
        image: The source reference checked.
        digest: The digest that was checked.
        reason: Why, in one line.
    """

    def __init__(self, image: str, digest: str, reason: str, *, hint: str | None = None) -> None:
        self.image = image
        self.digest = digest
        self.reason = reason
        super().__init__(
            f"{image} ({digest}) refused by the verification policy: {reason}", hint=hint
        )


class TransferCancelled(ImgmirrorError):
    """A transfer stopped early because its operation failed elsewhere or was interrupted."""


class QuotaExhausted(ImgmirrorError):
    """A registry's pull quota (Docker Hub's ``RateLimit-Remaining``) would run out and the
    run was told to stop rather than wait (``on_quota="stop"``, ``--on-quota stop``)."""


class TLSConfigError(ImgmirrorError):
    """A CA bundle or client certificate file (``ClientOptions.ca_file``, certs.d) cannot be
    used."""


class KubernetesError(ImgmirrorError):
    """A kubeconfig that cannot be used, or a Kubernetes API server's refusal or error.

    Attributes:
        status: the HTTP status of the API server's reply (403: forbidden), None when there
            was no reply or the kubeconfig itself is the problem.
    """

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class NetworkError(ImgmirrorError):
    """The registry could not be reached (connection refused, DNS failure, timeout)."""


class TransferStalled(NetworkError):
    """A request or transfer moved under ``ClientOptions.min_rate`` bytes/s for a whole
    ``timeout`` of waiting on the registry, its retries and resumes included.

    Not transient: the run ends rather than trying the same peer again (see
    docs/reliability.md).
    """


class TLSVerificationError(NetworkError):
    """The registry's TLS certificate could not be verified.

    Args:
        message: What failed.
        host: The host whose certificate was refused.
        hint: What to do (trust a CA, or mark the registry insecure).
        certs_dir: The host's certs.d directory, where a CA or client certificate would go.
        kind: ``"untrusted"`` (its certificate) or ``"client-certificate"`` (ours is missing).
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        hint: str | None = None,
        certs_dir: str | None = None,
        kind: str | None = None,
    ) -> None:
        self.host = host
        self.certs_dir = certs_dir
        self.kind = kind
        super().__init__(message, hint=hint)


class RegistryError(ImgmirrorError):
    """A registry answered a request with an error status.

    Args:
        message: The full one-line description (see [registry_error_from_response][]).
        status: The HTTP status code.
        method: The HTTP method of the failed request.
        url: The request URL; it is stored with its query string removed.
        code: The first distribution error code from the body, e.g. ``"MANIFEST_UNKNOWN"``.
        detail: The ``detail`` member of that error, as decoded JSON.
        hint: What to do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        code: str | None = None,
        detail: object = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = redact_url(url)
        self.code = code
        self.detail = detail
        super().__init__(message, hint=hint)

    @property
    def is_temporary(self) -> bool:
        """Whether retrying the same request later may succeed."""
        return self.status in _TEMPORARY_STATUSES or self.code in _TEMPORARY_CODES


class ReplyTooLarge(RegistryError):
    """A reply body is larger than its cap; it was not used, not even in part.

    Args:
        limit: The cap in bytes that the body exceeded.
    """

    def __init__(self, message: str, *, limit: int, **kwargs: Any) -> None:
        self.limit = limit
        super().__init__(message, **kwargs)


class InsecureLocation(RegistryError):
    """A registry reached over HTTPS sent a redirect or upload location to itself over HTTP."""


class AuthenticationError(RegistryError):
    """The registry or its token endpoint refused the credentials (401, ``UNAUTHORIZED``).

    Attributes:
        host: The registry whose credentials failed, when known.
        username: The user whose credentials were refused; None when none were given.
    """

    host: str | None = None
    username: str | None = None


def credentials_hint(
    host: str, username: str | None, *, role: str | None = None, option: str | None = None
) -> str:
    """The hint of an [AuthenticationError][]: how to give (better) credentials.

    Args:
        host: The registry.
        username: The user whose credentials were refused, or None if none were given.
        role: ``"source"`` or ``"destination"``, named when ``option`` is not given.
        option: How the user passes credentials for this side (the CLI's ``--src-creds``).
    """
    whose = f" for the {role} registry" if role else ""
    if username is None:
        give = f"{option} USER:PASSWORD" if option else f"credentials{whose}"
        return f"{host} needs credentials: pass {give}, or log in with docker login"
    given = f"given with {option}" if option else f"given{whose}"
    return (
        f"{host} refused the credentials of user {username!r}: "
        f"check the username and password {given}"
    )


class PermissionDenied(RegistryError):
    """The credentials were accepted but lack access (403, ``DENIED``)."""


class NotFound(RegistryError):
    """The repository, manifest, blob or upload does not exist (404, ``*_UNKNOWN``)."""


class RateLimited(RegistryError):
    """The registry is throttling requests (429, ``TOOMANYREQUESTS``).

    Args:
        retry_after: Seconds the registry asked us to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str,
        url: str,
        code: str | None = None,
        detail: object = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            message, status=status, method=method, url=url, code=code, detail=detail, hint=hint
        )


def is_transient(exc: BaseException) -> bool:
    """Whether the same transfer may succeed if started again (network, 408/429/5xx; a
    stall is not: it already spanned the transfer's retries)."""
    if isinstance(exc, TransferStalled):
        return False
    if isinstance(exc, NetworkError):
        return True
    return isinstance(exc, RegistryError) and exc.is_temporary


def redact_url(url: str) -> str:
    """Return ``url`` without query string, fragment or user info.

    Upload ``Location`` URLs carry ``_state`` HMACs and redirected blob URLs carry signatures
    in their query, so neither may appear in messages or logs.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _parse_errors(body: bytes) -> list[tuple[str | None, str | None, object]]:
    """Decode a distribution error body into (code, message, detail) triples; [] if none."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the stack: no errors
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("errors"), list):
        return []
    found: list[tuple[str | None, str | None, object]] = []
    for item in doc["errors"]:
        if not isinstance(item, dict):
            continue
        code, message = item.get("code"), item.get("message")
        found.append(
            (
                code.upper() if isinstance(code, str) and code else None,
                message if isinstance(message, str) and message else None,
                item.get("detail"),
            )
        )
    return found


def _plain_text(body: bytes, content_type: str | None) -> str | None:
    """A short single-line excerpt of a non-JSON body, or None for HTML and binary."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not body or "html" in kind or body.lstrip()[:1] == b"<":
        return None
    try:
        text = _one_line(body.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"


def _pick_class(status: int, code: str | None) -> type[RegistryError]:
    by_status: dict[int, type[RegistryError]] = {
        401: AuthenticationError,
        403: PermissionDenied,
        404: NotFound,
        429: RateLimited,
    }
    if status in by_status:
        return by_status[status]
    if code == "UNAUTHORIZED":
        return AuthenticationError
    if code == "DENIED":
        return PermissionDenied
    if code == "TOOMANYREQUESTS":
        return RateLimited
    if code is not None and code.endswith("_UNKNOWN"):
        return NotFound
    return RegistryError


_HINTS: dict[type[RegistryError], str] = {
    AuthenticationError: "check the registry credentials",
    PermissionDenied: "the credentials do not grant access to this repository",
    RateLimited: "wait and retry later, or authenticate to get a higher limit",
}


def registry_error_from_response(
    status: int,
    method: str,
    url: str,
    body: bytes,
    content_type: str | None,
    *,
    retry_after: float | None = None,
) -> RegistryError:
    """Build the right [RegistryError][] subclass for an error response.

    The body is parsed as a distribution error document
    (``{"errors": [{"code", "message", "detail"}]}``); HTML, plain text, garbage and empty
    bodies (HEAD) are tolerated. The message reads like
    ``GET https://host/v2/repo/manifests/tag: 404 MANIFEST_UNKNOWN manifest unknown``.

    Args:
        status: HTTP status code.
        method: HTTP method of the request.
        url: Request URL (redacted before use).
        body: The response body, already capped by the caller.
        content_type: The ``Content-Type`` header, if any.
        retry_after: Parsed ``Retry-After`` seconds, kept on [RateLimited][].

    Returns:
        The exception to raise; it is not raised here.
    """
    safe_url = redact_url(url)
    errors = _parse_errors(body)
    code, detail = (errors[0][0], errors[0][2]) if errors else (None, None)
    if errors:
        parts = [" ".join(p for p in (c, m) if p) for c, m, _ in errors]
        summary = ", ".join(p for p in parts if p)
        if len(summary) > _MAX_TEXT:
            summary = summary[:_MAX_TEXT] + "…"
    else:
        summary = _plain_text(body, content_type) or ""
    if not summary:
        try:
            summary = http.HTTPStatus(status).phrase
        except ValueError:
            summary = "error"
    message = f"{method.upper()} {safe_url}: {status} {summary}"
    cls = _pick_class(status, code)
    if cls is RateLimited:
        return RateLimited(
            message,
            status=status,
            method=method.upper(),
            url=safe_url,
            code=code,
            detail=detail,
            hint=_HINTS[RateLimited],
            retry_after=retry_after,
        )
    return cls(
        message,
        status=status,
        method=method.upper(),
        url=safe_url,
        code=code,
        detail=detail,
        hint=_HINTS.get(cls),
    )
