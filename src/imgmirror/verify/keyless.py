"""Keyless verification with ``sigstore`` (the ``imgmirror[verify]`` extra), offline.

The trusted root is a file the policy names (sigstore's ``trusted_root.json``: Fulcio CAs,
Rekor and CT log keys); nothing is fetched, no TUF refresh happens. A bundle's certificate
must chain to a Fulcio CA at the time its Rekor entry proves, carry a valid SCT and an
identity the policy allows; the DSSE envelope or message signature must verify with it.
``sigstore`` is imported when a trusted root is loaded, never at start-up. The loaded root
also carries its [TrustMaterial][imgmirror.verify.trust.TrustMaterial], for what sigstore-python
does not verify (cosign's tag-based keyless signatures, [.tagkeyless][imgmirror.verify.tagkeyless]).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imgmirror.errors import InvalidPolicy
from imgmirror.model.digest import Digest
from imgmirror.verify.bundle import Bundle
from imgmirror.verify.identity import Identity, allowed_identity
from imgmirror.verify.trust import KeylessError, TrustMaterial, trust_material

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["KeylessError", "TrustRoot", "load_trusted_root", "verify_bundle"]

_MAX_ROOT = 4 * 1024 * 1024


@attrs.frozen
class TrustRoot:
    """A loaded trusted root: ``fingerprint`` is the sha256 of the file; ``verifier`` is
    sigstore-python's, ``material`` the same root as values."""

    path: str
    fingerprint: str
    verifier: Any = attrs.field(eq=False, repr=False)
    material: TrustMaterial = attrs.field(eq=False, repr=False, factory=TrustMaterial)


def load_trusted_root(path: str) -> TrustRoot:
    """Load a sigstore ``trusted_root.json``.

    Raises:
        InvalidPolicy: the extra is not installed, or the file cannot be used.
    """
    try:
        from sigstore.models import TrustedRoot  # noqa: PLC0415 - optional extra, loaded on use
        from sigstore.verify import Verifier  # noqa: PLC0415
        from sigstore_models.trustroot.v1 import TrustedRoot as Inner  # noqa: PLC0415
    except ImportError:
        raise InvalidPolicy(
            "keyless verification (identities:) needs the sigstore package",
            hint="pip install 'imgmirror[verify]'",
        ) from None
    try:
        raw = Path(path).read_bytes()[: _MAX_ROOT + 1]
    except OSError as exc:
        raise InvalidPolicy(f"trusted root {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_ROOT:
        raise InvalidPolicy(f"trusted root {path} is over 4 MiB")
    try:
        inner = Inner.from_json(raw)  # what TrustedRoot.from_file does, on the bytes read once
        verifier = Verifier(trusted_root=TrustedRoot(inner))
        material = trust_material(inner)
    except Exception as exc:  # sigstore and pydantic raise many kinds
        raise InvalidPolicy(f"trusted root {path} cannot be used: {_line(exc)}",
                            hint="give sigstore's trusted_root.json format") from None  # fmt: skip
    return TrustRoot(path, hashlib.sha256(raw).hexdigest(), verifier, material)


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


class _Allowed:
    """A sigstore VerificationPolicy: any of the policy's identities."""

    def __init__(self, identities: Sequence[Identity]) -> None:
        self.identities = identities
        self.matched: Identity | None = None

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError  # noqa: PLC0415 - optional extra

        self.matched, found = allowed_identity(self.identities, cert)
        if self.matched is None:
            raise VerificationError(f"certificate {found.describe()} is not an allowed identity")


def verify_bundle(
    root: TrustRoot, bundle: Bundle, identities: Sequence[Identity], digest: Digest
) -> tuple[str, dt.datetime | None, tuple[str, bytes] | None]:
    """Verify a keyless ``bundle`` against ``root`` and ``identities``.

    Returns ``(by, signed_at, (payload_type, payload))`` for a DSSE bundle, or with None as
    the last item for a message signature over ``digest``.

    Raises:
        KeylessError: it does not verify.
    """
    from sigstore.hashes import Hashed  # noqa: PLC0415 - optional extra
    from sigstore.models import Bundle as SigstoreBundle  # noqa: PLC0415
    from sigstore_models.common.v1 import HashAlgorithm  # noqa: PLC0415

    allowed = _Allowed(identities)
    try:
        parsed = SigstoreBundle.from_json(bundle.raw)
        if bundle.envelope is not None:
            content: tuple[str, bytes] | None = root.verifier.verify_dsse(parsed, allowed)
        else:
            if digest.algorithm != "sha256":
                raise KeylessError("message signatures cover sha256 digests only")
            hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest.hex))
            root.verifier.verify_artifact(hashed, parsed, allowed)
            content = None
    except KeylessError:
        raise
    except Exception as exc:  # any failure of the verifier is a refusal
        raise KeylessError(_line(exc)) from None
    assert allowed.matched is not None
    signed_at = (
        dt.datetime.fromtimestamp(bundle.integrated_time, dt.UTC)
        if bundle.integrated_time
        else None
    )
    return allowed.matched.describe(), signed_at, content
