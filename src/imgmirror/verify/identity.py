"""Who a Fulcio certificate was issued to, and whether a policy's identity matches it.

A keyless signature's certificate names its signer in the subject alternative name (an email,
a URI such as a GitHub workflow, or Fulcio's ``otherName`` username) and the OIDC issuer in
Fulcio's extensions (``1.3.6.1.4.1.57264.1.8``, a DER UTF8String; older certificates
``1.3.6.1.4.1.57264.1.1``, raw text). ``subject-regex`` is matched whole on RE2, in linear
time ([LinearRegex][imgmirror.model.linregex.LinearRegex], as cosign's Go regexp), on
bounded input: the pattern at most ``MAX_PATTERN`` characters, the subject at most
``MAX_SUBJECT``. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from imgmirror.model.linregex import LinearRegex, LinearRegexError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "MAX_PATTERN",
    "MAX_SUBJECT",
    "CertIdentity",
    "Identity",
    "allowed_identity",
    "cert_identity",
    "compile_subject",
]

MAX_PATTERN = 256
MAX_SUBJECT = 1024
_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_OTHERNAME_USER = "1.3.6.1.4.1.57264.1.7"


def compile_subject(pattern: str) -> LinearRegex:
    """A ``subject-regex``, matched whole.

    Raises:
        ValueError: too long, or not a regex.
    """
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"subject-regex is longer than {MAX_PATTERN} characters")
    try:
        return LinearRegex.compile(pattern)
    except LinearRegexError as exc:
        raise ValueError(f"subject-regex {pattern!r} is not a regex RE2 takes: {exc}") from None


@attrs.frozen
class Identity:
    """An allowed signer: ``issuer`` exactly, and ``subject`` exactly or ``subject_regex``."""

    issuer: str
    subject: str | None = None
    subject_regex: LinearRegex | None = None

    def matches(self, issuer: str | None, subjects: tuple[str, ...]) -> bool:
        """Whether a certificate of ``issuer`` naming ``subjects`` is this signer."""
        if issuer != self.issuer:
            return False
        for subject in subjects:
            if len(subject) > MAX_SUBJECT:
                continue
            if self.subject is not None and subject == self.subject:
                return True
            if self.subject_regex is not None and self.subject_regex.fullmatch(subject):
                return True
        return False

    def describe(self) -> str:
        """``identity SUBJECT (issuer ISSUER)``."""
        subject = self.subject if self.subject is not None else f"~{self.subject_regex.pattern}"  # type: ignore[union-attr]
        return f"identity {subject} (issuer {self.issuer})"

    def to_json(self) -> dict[str, str]:
        """The policy entry (for the cache's policy fingerprint and reports)."""
        out = {"issuer": self.issuer}
        if self.subject is not None:
            out["subject"] = self.subject
        if self.subject_regex is not None:
            out["subject-regex"] = self.subject_regex.pattern
        return out


@attrs.frozen
class CertIdentity:
    """What a certificate says of its signer."""

    issuer: str | None
    subjects: tuple[str, ...]

    def describe(self) -> str:
        return f"identity {', '.join(self.subjects) or '(none)'} (issuer {self.issuer})"


def _der_utf8(value: bytes) -> str | None:
    # a short-form DER UTF8String: tag 0x0c, one length byte
    if len(value) >= 2 and value[0] == 0x0C and value[1] == len(value) - 2:
        return value[2:].decode("utf-8", "replace")
    return None


def cert_identity(cert: x509.Certificate) -> CertIdentity:
    """The issuer and subject names a Fulcio certificate carries."""
    from cryptography import x509  # noqa: PLC0415 - start-up time

    issuer = None
    for oid, der in ((_ISSUER_V2, True), (_ISSUER_V1, False)):
        try:
            ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
        issuer = _der_utf8(raw) if der else raw.decode("utf-8", "replace")
        if issuer:
            break
    subjects: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        subjects += san.get_values_for_type(x509.RFC822Name)
        subjects += san.get_values_for_type(x509.UniformResourceIdentifier)
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id.dotted_string == _OTHERNAME_USER and (text := _der_utf8(other.value)):
                subjects.append(text)
    return CertIdentity(issuer, tuple(subjects))


def allowed_identity(
    identities: Sequence[Identity], cert: x509.Certificate
) -> tuple[Identity | None, CertIdentity]:
    """The first of ``identities`` that signed with ``cert`` (None if none), and what the
    certificate says of its signer (for the refusal)."""
    found = cert_identity(cert)
    matched = next((i for i in identities if i.matches(found.issuer, found.subjects)), None)
    return matched, found
