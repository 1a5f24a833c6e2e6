"""Keyless signatures in cosign's tag-based format (cosign v2: certificate, chain and Rekor
bundle annotations on a ``sha256-<hex>.sig`` layer) gate a copy through the real registry:
made with the tests' own Sigstore (tests/support/sigstore_lab.py) and its trusted root. What
is accepted is copied with its signature; what is refused says why in one line and leaves
nothing at the destination."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import imgmirror
from imgmirror.verify.age import parse_duration
from imgmirror.verify.identity import Identity
from imgmirror.verify.policy import KeySource, Policy
from tests.support.cosign import ggcr_empty_image
from tests.support.images import Image, make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.sigstore_lab import ISSUER, SUBJECT, KeylessSignature, SigstoreLab
from tests.support.tools import skopeo_inspect_raw
from tests.support.verify_world import copy_refused, push, sig_tag, write_key

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

REPO = "apps/web"
ALLOWED = Identity(ISSUER, subject=SUBJECT)


@pytest.fixture(scope="module")
def lab() -> SigstoreLab:
    return SigstoreLab()


@pytest.fixture(scope="module")
def trusted_root(lab: SigstoreLab, tmp_path_factory) -> Path:
    return lab.write_root(tmp_path_factory.mktemp("lab") / "trusted_root.json")


@pytest.fixture
def ends(registry_factory: RegistryFactory) -> tuple[Registry, Registry]:
    return registry_factory(name="src"), registry_factory(name="dst")


def keyless(trusted_root: Path, *identities: Identity, **extra: object) -> Policy:
    return Policy(
        identities=identities or (ALLOWED,),
        trusted_root=str(trusted_root),
        origin="t",
        **extra,  # type: ignore[arg-type]
    )


def signed(src: Registry, sig: KeylessSignature | None, image: Image | None = None) -> Image:
    """An image at ``src`` as ``REPO:1.0``, ``sig`` on its ``.sig`` tag."""
    image = image or make_image(fmt="oci", marker="keyless")
    push(src, REPO, image, "1.0")
    if sig is not None:
        push(src, REPO, sig.image(), sig_tag(image.digest))
    return image


def test_a_cosign_v2_keyless_signature_gates_a_copy(ends, lab, trusted_root):
    src, dst = ends
    image = make_image(fmt="oci", marker="keyless-ok")
    sig = lab.sign(image.digest)
    signed(src, sig, image)
    result = imgmirror.copy(
        src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=keyless(trusted_root)
    )
    assert result.digest == image.digest
    assert result.verification is not None
    [verified] = result.verification.signatures
    assert verified.by == f"identity {SUBJECT} (issuer {ISSUER})"
    assert verified.signed_at == lab.at
    out = result.to_json()["verification"]
    assert out["signatures"][0]["signedAt"] == f"{lab.at:%Y-%m-%dT%H:%M:%SZ}"  # type: ignore[index]
    # the signature travels with the image, byte for byte, for the mirror's own verifiers
    assert skopeo_inspect_raw(dst.ref(REPO, sig_tag(image.digest)), dst) == sig.image().manifest
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, "1.0")


def test_the_integrated_time_is_the_age_of_an_image_without_created(ends, lab, trusted_root):
    src, dst = ends
    image = ggcr_empty_image()  # its config's created is Go's zero time: unknown
    signed(src, lab.sign(image.digest), image)
    line = copy_refused(src, dst, REPO, keyless(trusted_root, max_age=parse_duration("1d")), image)
    assert line.endswith(f"older than max-age 1d (created {lab.at:%Y-%m-%dT%H:%M:%SZ})")
    result = imgmirror.copy(
        src.ref(REPO, "1.0"),
        dst.ref(REPO, "1.0"),
        verify=keyless(trusted_root, min_age=parse_duration("3d")),
    )
    assert result.verification is not None
    assert result.verification.created == lab.at


def _other_lab() -> SigstoreLab:
    return SigstoreLab("stranger")


HOSTILE: dict[str, tuple[Callable[[SigstoreLab, str], KeylessSignature], str]] = {
    "tampered-payload": (
        lambda lab, digest: dataclasses.replace(
            lab.sign(digest), payload=lab.sign(digest).payload.replace(b"app", b"evil")
        ),
        "its signature does not verify over the payload with its certificate",
    ),
    "set-by-another-key": (
        lambda lab, digest: lab.sign(digest, set_key=ec.generate_private_key(ec.SECP256R1())),
        "its transparency-log SET does not verify",
    ),
    "entry-for-another-signature": (
        lambda lab, digest: lab.sign(digest, logged_signature=lab.sign(digest).signature),
        "its log entry is for another signature",
    ),
    "entry-for-another-hash": (
        lambda lab, digest: lab.sign(digest, logged_hash="e" * 64),
        "its log entry is for sha256:eeeeeeeeeeeeeeee…, not this payload",
    ),
    "certificate-from-another-ca": (
        lambda lab, digest: lab.sign(digest, certificate=_other_lab().leaf()),
        "its certificate does not chain to a Fulcio CA of the trusted root",
    ),
    "certificate-expired-at-integrated-time": (
        lambda lab, digest: lab.sign(
            digest, certificate=lab.leaf(not_before=lab.at - dt.timedelta(minutes=30))
        ),
        "not when the log integrated it",
    ),
    "no-bundle": (
        lambda lab, digest: lab.sign(digest, bundle=False),
        "only an online Rekor lookup could vouch for its signing time",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_keyless_signatures_are_refused(ends, lab, trusted_root, case):
    src, dst = ends
    make, message = HOSTILE[case]
    image = make_image(fmt="oci", marker=f"keyless-{case}")
    signed(src, make(lab, image.digest), image)
    line = copy_refused(src, dst, REPO, keyless(trusted_root), image)
    assert f"({sig_tag(image.digest)}: keyless signature: " in line
    assert message in line


@pytest.mark.parametrize(
    "identity",
    [Identity(ISSUER, subject="https://github.com/evil/app/.github/workflows/r.yml@refs/tags/v1"),
     Identity("https://accounts.google.com", subject=SUBJECT)],
    ids=["wrong-subject", "wrong-issuer"],
)  # fmt: skip
def test_another_identity_is_refused(ends, lab, trusted_root, identity):
    src, dst = ends
    image = signed(src, None)
    push(src, REPO, lab.sign(image.digest).image(), sig_tag(image.digest))
    line = copy_refused(src, dst, REPO, keyless(trusted_root, identity), image)
    assert f"keyless signature: certificate identity {SUBJECT} (issuer {ISSUER})" in line
    assert "is not an allowed identity" in line


def test_a_keyless_signature_of_another_image_is_a_replay(ends, lab, trusted_root):
    src, dst = ends
    image = signed(src, None)
    other = make_image(fmt="oci", marker="signed-elsewhere")
    # genuine, logged, by the allowed identity: but for another digest
    push(src, REPO, lab.sign(other.digest).image(), sig_tag(image.digest))
    line = copy_refused(src, dst, REPO, keyless(trusted_root), image)
    assert f"signed for {other.digest}, not this image (a replay)" in line


def test_a_keys_only_policy_names_what_a_keyless_signature_needs(ends, lab, tmp_path):
    src, dst = ends
    image = make_image(fmt="oci", marker="keyless-keys-only")
    signed(src, lab.sign(image.digest), image)
    key = write_key(tmp_path, ec.generate_private_key(ec.SECP256R1()))
    policy = Policy(keys=(KeySource(key, "t"),), origin="t")
    line = copy_refused(src, dst, REPO, policy, image)
    assert "signed with a certificate (keyless), not an allowed key; the policy names no " in line


SLSA = "https://slsa.dev/provenance/v1"


@pytest.mark.parametrize("entry", ["dsse", "intoto"])
def test_a_cosign_v2_keyless_attestation_meets_the_policy(ends, lab, trusted_root, entry):
    """``cosign attest`` keyless (v2): a ``.att`` layer whose certificate, log entry and
    envelope verify offline counts as the attestation the policy requires, and travels."""
    src, dst = ends
    image = make_image(fmt="oci", marker=f"keyless-att-{entry}")
    signed(src, lab.sign(image.digest), image)
    att = lab.attest(image.digest, SLSA, entry=entry)
    push(src, REPO, att.image(), sig_tag(image.digest, "att"))
    policy = keyless(trusted_root, attestations=(SLSA,))
    result = imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy)
    assert result.verification is not None
    [attested] = result.verification.attestations
    assert (attested.predicate_type, attested.by) == (SLSA, f"identity {SUBJECT} (issuer {ISSUER})")
    assert attested.signed_at == lab.at
    carried = skopeo_inspect_raw(dst.ref(REPO, sig_tag(image.digest, "att")), dst)
    assert carried == att.image().manifest


def test_a_keyless_attestation_by_another_identity_is_refused(ends, lab, trusted_root):
    src, dst = ends
    image = make_image(fmt="oci", marker="keyless-att-stranger")
    signed(src, lab.sign(image.digest), image)
    stranger = "https://github.com/evil/app/.github/workflows/r.yml@refs/tags/v1"
    att = lab.attest(image.digest, SLSA, subject=stranger)
    push(src, REPO, att.image(), sig_tag(image.digest, "att"))
    line = copy_refused(src, dst, REPO, keyless(trusted_root, attestations=(SLSA,)), image)
    assert f"no attestation {SLSA} by an allowed signer" in line
    assert f"keyless attestation: certificate identity {stranger}" in line
