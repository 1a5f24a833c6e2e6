"""Tests for imgmirror.errors: the tree, one-line rendering and registry error mapping."""

from __future__ import annotations

import pytest

from imgmirror import errors
from imgmirror.errors import (
    ArchiveError,
    AuthenticationError,
    CredentialsError,
    ImgmirrorError,
    InvalidDigest,
    InvalidManifest,
    InvalidPlatform,
    InvalidReference,
    ManifestError,
    NetworkError,
    NotFound,
    PermissionDenied,
    PlatformNotFound,
    RateLimited,
    RegistryError,
    TLSVerificationError,
    UnsupportedMediaType,
    VerificationError,
    redact_url,
    registry_error_from_response,
)

URL = "https://registry.example/v2/library/alpine/manifests/3.19"


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (InvalidReference, (ImgmirrorError, ValueError)),
        (InvalidDigest, (ImgmirrorError, ValueError)),
        (InvalidPlatform, (ImgmirrorError, ValueError)),
        (ManifestError, (ImgmirrorError,)),
        (UnsupportedMediaType, (ManifestError,)),
        (InvalidManifest, (ManifestError, ValueError)),
        (PlatformNotFound, (ManifestError,)),
        (VerificationError, (ImgmirrorError,)),
        (CredentialsError, (ImgmirrorError,)),
        (ArchiveError, (ImgmirrorError,)),
        (NetworkError, (ImgmirrorError,)),
        (TLSVerificationError, (NetworkError,)),
        (RegistryError, (ImgmirrorError,)),
        (AuthenticationError, (RegistryError,)),
        (PermissionDenied, (RegistryError,)),
        (NotFound, (RegistryError,)),
        (RateLimited, (RegistryError,)),
    ],
)
def test_tree(cls: type, bases: tuple[type, ...]) -> None:
    for base in bases:
        assert issubclass(cls, base)


def test_all_exports_exist() -> None:
    for name in errors.__all__:
        assert hasattr(errors, name)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ImgmirrorError("it broke"), "it broke"),
        (ImgmirrorError("it broke", hint="do this"), "it broke; do this"),
        (ArchiveError("two\nlines", hint="and\r\nmore"), "two lines; and more"),
        (CredentialsError("bad", hint=None), "bad"),
    ],
)
def test_str_is_one_line(exc: ImgmirrorError, text: str) -> None:
    assert str(exc) == text
    assert "\n" not in str(exc)


def test_hint_attribute() -> None:
    exc = NetworkError("connection refused", hint="is the registry running?")
    assert exc.message == "connection refused"
    assert exc.hint == "is the registry running?"


def test_verification_error_builds_message() -> None:
    exc = VerificationError("digest of blob sha256:ab", "sha256:aa", "sha256:bb")
    assert (exc.what, exc.expected, exc.actual) == (
        "digest of blob sha256:ab",
        "sha256:aa",
        "sha256:bb",
    )
    assert str(exc) == "digest of blob sha256:ab: expected sha256:aa, got sha256:bb"


def test_platform_not_found_lists_available() -> None:
    exc = PlatformNotFound("no linux/s390x image in sha256:x", ("linux/amd64", "linux/arm64"))
    assert exc.available == ("linux/amd64", "linux/arm64")
    assert str(exc) == "no linux/s390x image in sha256:x; available: linux/amd64, linux/arm64"
    assert "no images" in str(PlatformNotFound("no linux/amd64 image in sha256:x"))


def test_tls_error_keeps_host() -> None:
    exc = TLSVerificationError("certificate verify failed", host="reg:5000", hint="use --ca")
    assert exc.host == "reg:5000"
    assert str(exc) == "certificate verify failed; use --ca"


def test_registry_error_redacts_url() -> None:
    exc = RegistryError(
        "boom", status=500, method="PUT", url="https://u:p@h/v2/r/blobs/uploads/x?_state=SECRET"
    )
    assert exc.url == "https://h/v2/r/blobs/uploads/x"
    assert (exc.status, exc.method, exc.code, exc.detail) == (500, "PUT", None, None)
    assert exc.is_temporary


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://h/v2/r/blobs/uploads/1?_state=abc&digest=x", "https://h/v2/r/blobs/uploads/1"),
        ("https://s3.example/bucket/obj?X-Amz-Signature=zz#frag", "https://s3.example/bucket/obj"),
        ("https://user:pw@h:5000/v2/", "https://h:5000/v2/"),
        ("https://h/v2/", "https://h/v2/"),
        ("/v2/r/blobs/uploads/1?_state=abc", "/v2/r/blobs/uploads/1"),
        ("http://[::1]:5000/v2/?x=1", "http://[::1]:5000/v2/"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def _body(code: str, message: str = "msg") -> bytes:
    return f'{{"errors":[{{"code":"{code}","message":"{message}","detail":{{"x":1}}}}]}}'.encode()


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (401, _body("UNAUTHORIZED"), AuthenticationError, "UNAUTHORIZED"),
        (400, _body("UNAUTHORIZED"), AuthenticationError, "UNAUTHORIZED"),
        (403, _body("DENIED"), PermissionDenied, "DENIED"),
        (400, _body("DENIED"), PermissionDenied, "DENIED"),
        (404, _body("MANIFEST_UNKNOWN"), NotFound, "MANIFEST_UNKNOWN"),
        (404, b"", NotFound, None),
        (400, _body("BLOB_UPLOAD_UNKNOWN"), NotFound, "BLOB_UPLOAD_UNKNOWN"),
        (429, _body("TOOMANYREQUESTS"), RateLimited, "TOOMANYREQUESTS"),
        (503, _body("TOOMANYREQUESTS"), RateLimited, "TOOMANYREQUESTS"),
        (400, _body("MANIFEST_INVALID"), RegistryError, "MANIFEST_INVALID"),
        (500, _body("UNKNOWN"), RegistryError, "UNKNOWN"),
        (502, b"<html><body>Bad gateway</body></html>", RegistryError, None),
        (401, b"not json at all", AuthenticationError, None),
        (405, b'{"errors": "nope"}', RegistryError, None),
        (400, b"[1, 2]", RegistryError, None),
        (400, b"\xff\xfe\x00garbage", RegistryError, None),
        (404, _body("manifest_unknown"), NotFound, "MANIFEST_UNKNOWN"),
    ],
)
def test_registry_error_from_response_picks_class(
    status: int, body: bytes, cls: type[RegistryError], code: str | None
) -> None:
    exc = registry_error_from_response(status, "GET", URL, body, "application/json")
    assert type(exc) is cls
    assert exc.code == code
    assert exc.status == status
    assert str(exc).startswith(f"GET {URL}: {status}")


def test_registry_error_message_names_request_and_code() -> None:
    exc = registry_error_from_response(
        404, "get", URL + "?_state=secret", _body("MANIFEST_UNKNOWN", "manifest unknown"), None
    )
    assert exc.message == f"GET {URL}: 404 MANIFEST_UNKNOWN manifest unknown"
    assert exc.method == "GET"
    assert exc.url == URL
    assert exc.detail == {"x": 1}
    assert "secret" not in str(exc)


def test_registry_error_several_errors() -> None:
    body = (
        b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown"},'
        b'{"code":"BLOB_UNKNOWN"}, "junk"]}'
    )
    exc = registry_error_from_response(400, "PUT", URL, body, "application/json")
    assert exc.code == "MANIFEST_BLOB_UNKNOWN"
    assert str(exc) == f"PUT {URL}: 400 MANIFEST_BLOB_UNKNOWN blob unknown, BLOB_UNKNOWN"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "tail"),
    [
        (502, b"<html>Bad</html>", "text/html", "502 Bad Gateway"),
        (502, b"  <!DOCTYPE html>", None, "502 Bad Gateway"),
        (500, b"", None, "500 Internal Server Error"),
        (418, b"short and stout\n", "text/plain", "418 short and stout"),
        (599, b"", None, "599 error"),
        (500, b"x" * 1000, "text/plain", "500 " + "x" * 300 + "…"),
    ],
)
def test_registry_error_non_json_bodies(
    status: int, body: bytes, content_type: str | None, tail: str
) -> None:
    exc = registry_error_from_response(status, "HEAD", URL, body, content_type)
    assert str(exc).endswith(tail.strip())
    assert str(exc).startswith(f"HEAD {URL}: ")


def test_rate_limited_keeps_retry_after() -> None:
    exc = registry_error_from_response(429, "GET", URL, b"", None, retry_after=12.5)
    assert isinstance(exc, RateLimited)
    assert exc.retry_after == 12.5
    assert exc.hint is not None
    assert exc.is_temporary


@pytest.mark.parametrize(
    ("status", "temporary"), [(502, True), (503, True), (400, False), (404, False)]
)
def test_is_temporary(status: int, temporary: bool) -> None:
    assert registry_error_from_response(status, "GET", URL, b"", None).is_temporary is temporary


def test_authentication_error_has_hint() -> None:
    exc = registry_error_from_response(
        401, "GET", URL, _body("UNAUTHORIZED", "auth required"), None
    )
    assert str(exc) == f"GET {URL}: 401 UNAUTHORIZED auth required; check the registry credentials"


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (errors.NetworkError("reset"), True),
        (errors.RegistryError("x", status=503, method="GET", url="u"), True),
        (errors.RateLimited("x", status=429, method="GET", url="u"), True),
        (errors.NotFound("x", status=404, method="GET", url="u"), False),
        (errors.VerificationError("blob", "sha256:a", "sha256:b"), False),
    ],
)
def test_is_transient(exc, transient):
    assert errors.is_transient(exc) is transient


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert errors.printable("plain text ✓ │ ok") == "plain text ✓ │ ok"
    assert errors.printable("a\x1b[31mb\x07c\rd\x9be\u202ef\ud800") == (
        "a\\x1b[31mb\\x07c\\rd\\x9be\\u202ef\\ud800"
    )


def test_messages_quoting_registry_text_render_escaped_and_short() -> None:
    exc = errors.ImgmirrorError("tag \x1b]0;title\x07 refused", hint="see \x9b2J")
    assert str(exc) == "tag \\x1b]0;title\\x07 refused; see \\x9b2J"
    assert errors.quoted("x" * 100_000).endswith("…' (100000 characters)")
    assert len(errors.quoted("x" * 100_000)) < 120
    assert errors.quoted(None) == "a JSON null (not a string)"
    error = registry_error_from_response(
        400, "GET", URL, b'{"errors":[{"code":"X","message":"bad\\u001b[2J"}]}', None
    )
    assert "\x1b" not in str(error)
