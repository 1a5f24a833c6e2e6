"""Keyless signatures in cosign's tag-based format (cosign v1/v2), verified with
``cryptography`` and a trusted root, offline: on real Sigstore material (sigstore-python's
staging bundle in the annotations cosign writes; the Rekor bundle of cosign's signature
spec) and on signatures of the tests' own Sigstore (tests/support/sigstore_lab.py), honest
and hostile."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from imgmirror.verify.identity import Identity, compile_subject
from imgmirror.verify.keyless import TrustRoot, load_trusted_root
from imgmirror.verify.payloads import PayloadError, parse_envelope
from imgmirror.verify.rekor import RekorBundle, parse_entry, parse_rekor_bundle, verify_set
from imgmirror.verify.tagkeyless import verify_tag_attestation, verify_tag_signature
from imgmirror.verify.trust import KeylessError
from tests.support.sigstore_lab import (
    ISSUER,
    SUBJECT,
    KeylessAttestation,
    KeylessSignature,
    SigstoreLab,
)

DATA = Path(__file__).parent.parent / "data" / "verify"
STAGING_ROOT = DATA / "sigstore-python-staging-trusted_root.json"
PGI_ROOT = DATA / "cosign-trusted_root_pgi.json"
DIGEST = "sha256:" + "c" * 64
ALLOWED = Identity(ISSUER, subject=SUBJECT)


@pytest.fixture(scope="module")
def lab() -> SigstoreLab:
    return SigstoreLab()


@pytest.fixture(scope="module")
def root(lab, tmp_path_factory) -> TrustRoot:
    path = lab.write_root(tmp_path_factory.mktemp("lab") / "trusted_root.json")
    return load_trusted_root(str(path))  # sigstore-python takes it as a custom trusted root


def verify(root: TrustRoot, sig: KeylessSignature, *identities: Identity):
    return verify_tag_signature(
        root.material, identities or (ALLOWED,), sig.payload, sig.signature, sig.annotations
    )


# --- real Sigstore material -----------------------------------------------------------------


def _rekor_annotation(entry: dict[str, Any]) -> str:
    """The ``dev.sigstore.cosign/bundle`` annotation cosign v2 writes for a bundle's log entry
    (its inclusion promise, the SET)."""
    rekor = {
        "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": entry["canonicalizedBody"],
            "integratedTime": int(entry["integratedTime"]),
            "logIndex": int(entry["logIndex"]),
            "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
        },
    }
    return json.dumps(rekor, separators=(",", ":"))


def _staging_layer() -> KeylessSignature:
    """sigstore-python's real staging signature of bundle.txt (Fulcio certificate with SCT,
    hashedrekord entry, SET), in the annotations a cosign v2 ``.sig`` layer carries."""
    doc = json.loads((DATA / "sigstore-python-bundle.txt.sigstore").read_bytes())
    material = doc["verificationMaterial"]
    entry = material["tlogEntries"][0]
    [leaf] = material["x509CertificateChain"]["certificates"]
    cert = x509.load_der_x509_certificate(base64.b64decode(leaf["rawBytes"]))
    return KeylessSignature(
        (DATA / "sigstore-python-bundle.txt").read_bytes(),
        base64.b64decode(doc["messageSignature"]["signature"]),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        "",
        _rekor_annotation(entry),
    )


def test_real_staging_material_in_cosigns_tag_format_verifies():
    staging = load_trusted_root(str(STAGING_ROOT))
    william = Identity("https://github.com/login/oauth", subject="a@tny.town")
    by, at = verify(staging, _staging_layer(), william)
    assert by == "identity a@tny.town (issuer https://github.com/login/oauth)"
    assert at == dt.datetime(2023, 4, 26, 0, 21, 9, tzinfo=dt.UTC)
    # the public-good root knows neither its log nor its CA
    with pytest.raises(KeylessError, match="not a Rekor log of the trusted root"):
        verify(load_trusted_root(str(PGI_ROOT)), _staging_layer(), william)
    honest = _staging_layer()
    forged = json.loads(honest.bundle or "")
    forged["Payload"]["integratedTime"] += 1
    with pytest.raises(KeylessError, match="SET does not verify"):
        verify(staging, dataclasses.replace(honest, bundle=json.dumps(forged)), william)
    with pytest.raises(KeylessError, match="signature does not verify over the payload"):
        verify(staging, dataclasses.replace(honest, payload=honest.payload + b"!"), william)


def test_the_rekor_bundle_of_cosigns_signature_spec_verifies_with_the_public_good_log():
    text = (DATA / "cosign-spec-rekor-bundle.json").read_text()
    pgi = load_trusted_root(str(PGI_ROOT)).material
    bundle = parse_rekor_bundle(text)
    verify_set(pgi, bundle)  # Rekor's real SET over the canonical payload
    assert bundle.signed_at == dt.datetime(2021, 6, 22, 21, 8, 5, tzinfo=dt.UTC)
    entry = parse_entry(bundle.body)
    assert (entry.kind, entry.hash_algorithm) == ("rekord", "sha256")
    assert entry.hash_value.startswith("a4492b0eabdd2312")
    assert entry.public_key.startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(KeylessError, match="SET does not verify"):
        verify_set(pgi, attrs.evolve(bundle, log_index=bundle.log_index + 1))


def test_the_set_signs_canonical_json():
    bundle = RekorBundle(b"sig", b"{}", 1700000000, 7, bytes(range(32)))
    assert bundle.signed_bytes() == (
        b'{"body":"e30=","integratedTime":1700000000,"logID":"'
        + bytes(range(32)).hex().encode()
        + b'","logIndex":7}'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("{}", "Payload is not a JSON object"),
        ('{"SignedEntryTimestamp":"AA==","Payload":{"logID":"ab"}}', "logID is not a sha256"),
        ('{"SignedEntryTimestamp":"AA==","Payload":{"logID":"' + "ab" * 32
         + '","body":"e30=","integratedTime":"1","logIndex":1}}', "integratedTime is not"),
        ('{"SignedEntryTimestamp":"AA==","Payload":{"logID":"' + "ab" * 32
         + '","body":"e30=","integratedTime":true,"logIndex":1}}', "integratedTime is not"),
        ('{"SignedEntryTimestamp":"AA==","Payload":{"logID":"' + "ab" * 32
         + '","body":"e30=","integratedTime":1,"logIndex":9007199254740993}}', "logIndex is not"),
        ('{"SignedEntryTimestamp":"%%","Payload":{"logID":"' + "ab" * 32
         + '","body":"e30=","integratedTime":1,"logIndex":1}}', "not base64"),
    ],
)  # fmt: skip
def test_malformed_rekor_bundles(text, message):
    with pytest.raises(PayloadError, match=message):
        parse_rekor_bundle(text)


def test_log_entries_that_are_not_what_cosign_logs():
    for kind, version in (("cose", "0.0.1"), ("intoto", "0.0.2"), ("hashedrekord", "0.0.2")):
        entry = {"apiVersion": version, "kind": kind, "spec": {}}
        with pytest.raises(PayloadError, match=r"not one of the 0\.0\.1 kinds cosign logs"):
            parse_entry(json.dumps(entry).encode())
    entry = {"apiVersion": "0.0.1", "kind": "intoto", "spec": {}}
    with pytest.raises(PayloadError, match="content is not a JSON object"):
        parse_entry(json.dumps(entry).encode())
    two = [{"signature": "AA==", "verifier": "AA=="}] * 2
    entry = {"apiVersion": "0.0.1", "kind": "dsse", "spec": {"signatures": two}}
    with pytest.raises(PayloadError, match="not hold exactly one DSSE signature"):
        parse_entry(json.dumps(entry).encode())
    entry = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {"signature": {}}}
    with pytest.raises(PayloadError, match="public key is not a JSON object"):
        parse_entry(json.dumps(entry).encode())


# --- the tests' own Sigstore ----------------------------------------------------------------


def test_a_cosign_v2_keyless_signature_verifies(lab, root):
    by, at = verify(root, lab.sign(DIGEST))
    assert by == f"identity {SUBJECT} (issuer {ISSUER})"
    assert at == lab.at
    # any of several identities; a subject regex; an email identity
    assert verify(root, lab.sign(DIGEST), Identity(ISSUER, subject="nobody"), ALLOWED)
    regex = Identity(ISSUER, subject_regex=compile_subject(r"https://github\.com/acme/app/.+"))
    assert verify(root, lab.sign(DIGEST), regex)
    email = Identity("https://github.com/login/oauth", subject="dev@example.com")
    assert verify(root, lab.sign(DIGEST, email.subject or "", email.issuer), email)


def _other_lab() -> SigstoreLab:
    return SigstoreLab("stranger")


def _same_ca_other_ct_log(lab: SigstoreLab) -> SigstoreLab:
    other = SigstoreLab("ct-only")
    other.root, other.root_key = lab.root, lab.root_key
    other.intermediate, other.intermediate_key = lab.intermediate, lab.intermediate_key
    return other


def _rebundled(lab: SigstoreLab, **options) -> KeylessSignature:
    sig = lab.sign(DIGEST)
    body = base64.b64decode(json.loads(sig.bundle or "")["Payload"]["body"])
    return dataclasses.replace(sig, bundle=lab.rekor_bundle(body, **options))


HOSTILE: dict[str, tuple[Callable[[SigstoreLab], KeylessSignature], str]] = {
    "tampered-payload": (
        lambda lab: dataclasses.replace(lab.sign(DIGEST), payload=b'{"critical":{}}'),
        "its signature does not verify over the payload with its certificate",
    ),
    "set-by-another-key": (
        lambda lab: lab.sign(DIGEST, set_key=ec.generate_private_key(ec.SECP256R1())),
        "its transparency-log SET does not verify with the key of https://rekor.lab.invalid",
    ),
    "set-from-another-log": (
        lambda lab: _other_lab().sign(DIGEST, certificate=lab.leaf()),
        "not a Rekor log of the trusted root",
    ),
    "rekor-key-not-valid-then": (
        lambda lab: _rebundled(lab, integrated_time=lab.start - dt.timedelta(days=1)),
        "the Rekor key of https://rekor.lab.invalid was not valid at the integrated time",
    ),
    "entry-for-another-signature": (
        lambda lab: lab.sign(DIGEST, logged_signature=b"0" * 70),
        "its log entry is for another signature",
    ),
    "entry-for-another-hash": (
        lambda lab: lab.sign(DIGEST, logged_hash="0" * 64),
        r"its log entry is for sha256:0000000000000000…, not this payload \(sha256:",
    ),
    "entry-for-another-certificate": (
        lambda lab: lab.sign(DIGEST, logged_certificate=lab.leaf()[0]),
        "its log entry names another certificate",
    ),
    "certificate-from-another-ca": (
        lambda lab: lab.sign(DIGEST, certificate=_other_lab().leaf()),
        "its certificate does not chain to a Fulcio CA of the trusted root",
    ),
    "certificate-expired-at-integrated-time": (
        lambda lab: lab.sign(
            DIGEST, certificate=lab.leaf(not_before=lab.at - dt.timedelta(minutes=20))
        ),
        "its certificate was valid from .* to .*, not when the log integrated it",
    ),
    "certificate-issued-after-integrated-time": (
        lambda lab: lab.sign(
            DIGEST, certificate=lab.leaf(not_before=lab.at + dt.timedelta(minutes=1))
        ),
        "not when the log integrated it",
    ),
    "certificate-without-sct": (
        lambda lab: lab.sign(DIGEST, certificate=lab.leaf(sct=False)),
        "its certificate carries no SCT",
    ),
    "sct-by-an-unknown-ct-log": (
        lambda lab: lab.sign(DIGEST, certificate=_same_ca_other_ct_log(lab).leaf()),
        "no SCT of its certificate verifies with a CT log key of the trusted root",
    ),
    "no-bundle": (
        lambda lab: lab.sign(DIGEST, bundle=False),
        "no transparency-log bundle .*only an online Rekor lookup could vouch",
    ),
    "certificate-not-pem": (
        lambda lab: dataclasses.replace(lab.sign(DIGEST), certificate="garbage"),
        "its certificate annotation is not a PEM certificate",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_keyless_signatures_are_refused(lab, root, case):
    make, message = HOSTILE[case]
    with pytest.raises(KeylessError, match=message) as caught:
        verify(root, make(lab))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "identity",
    [
        Identity(ISSUER, subject="https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main"),
        Identity("https://accounts.google.com", subject=SUBJECT),
    ],
    ids=["wrong-subject", "wrong-issuer"],
)  # fmt: skip
def test_another_identity_is_refused(lab, root, identity):
    with pytest.raises(KeylessError, match=rf"certificate identity {SUBJECT} .* not an allowed"):
        verify(root, lab.sign(DIGEST), identity)


# --- attestations (.att layers) -------------------------------------------------------------

CODY = Identity("https://github.com/login/oauth", subject="cody@soyland.com")
SLSA = "https://slsa.dev/provenance/v1"


def _cosign_att_layer(spacing: tuple[str, str] = (",", ":")) -> KeylessAttestation:
    """cosign's real keyless attestation (a dsse entry in the public-good Rekor, its SET, the
    Fulcio certificate; tests/data/verify/SOURCES.md) in the form a cosign v2 ``.att`` layer
    carries it: the envelope JSON as Go marshals it (the bytes Rekor hashed), the bundle."""
    doc = json.loads((DATA / "cosign-oci-attestation.sigstore.json").read_bytes())
    material, envelope = doc["verificationMaterial"], doc["dsseEnvelope"]
    entry = material["tlogEntries"][0]
    cert = x509.load_der_x509_certificate(base64.b64decode(material["certificate"]["rawBytes"]))
    sigs = [{"keyid": "", "sig": s["sig"]} for s in envelope["signatures"]]
    layer = {"payloadType": envelope["payloadType"], "payload": envelope["payload"]}
    return KeylessAttestation(
        json.dumps({**layer, "signatures": sigs}, separators=spacing).encode(),
        "https://cosign.sigstore.dev/attestation/v1",
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        "",
        _rekor_annotation(entry),
    )


def verify_att(root: TrustRoot, att: KeylessAttestation, *identities: Identity):
    return verify_tag_attestation(
        root.material,
        identities or (ALLOWED,),
        att.envelope,
        parse_envelope(att.envelope),
        att.annotations,
    )


def test_cosigns_real_keyless_attestation_in_its_tag_format_verifies():
    pgi = load_trusted_root(str(PGI_ROOT))
    by, at = verify_att(pgi, _cosign_att_layer(), CODY)
    assert by == "identity cody@soyland.com (issuer https://github.com/login/oauth)"
    assert at == dt.datetime.fromtimestamp(1740770291, dt.UTC)
    # the log hashed these very bytes: the same envelope written otherwise is not what it logged
    with pytest.raises(KeylessError, match="its log entry is for sha256:c6adaaf149084f19…"):
        verify_att(pgi, _cosign_att_layer((", ", ": ")), CODY)
    with pytest.raises(KeylessError, match="is not an allowed identity"):
        verify_att(pgi, _cosign_att_layer(), ALLOWED)


@pytest.mark.parametrize("entry", ["dsse", "intoto"])
def test_a_cosign_v2_keyless_attestation_verifies(lab, root, entry):
    by, at = verify_att(root, lab.attest(DIGEST, SLSA, entry=entry))
    assert by == f"identity {SUBJECT} (issuer {ISSUER})"
    assert at == lab.at


def _att_with_signature_entry(lab: SigstoreLab) -> KeylessAttestation:
    att = lab.attest(DIGEST, SLSA)
    return dataclasses.replace(att, bundle=lab.sign(DIGEST).bundle or "")


HOSTILE_ATT: dict[str, tuple[Callable[[SigstoreLab], KeylessAttestation], str]] = {
    "logged-another-envelope": (
        lambda lab: lab.attest(DIGEST, SLSA, logged_envelope=b'{"payload":"e30="}'),
        "its log entry is for sha256:",
    ),
    "signed-by-another-key": (
        lambda lab: lab.attest(DIGEST, SLSA, envelope_key=ec.generate_private_key(ec.SECP256R1())),
        "its envelope's signature does not verify with its certificate",
    ),
    "logged-another-certificate": (
        lambda lab: lab.attest(DIGEST, SLSA, logged_certificate=lab.leaf()[0]),
        "its log entry names another certificate",
    ),
    "intoto-logged-another-certificate": (
        lambda lab: lab.attest(DIGEST, SLSA, entry="intoto", logged_certificate=lab.leaf()[0]),
        "its log entry names another certificate",
    ),
    "a-signature-entry": (
        _att_with_signature_entry,
        "its log entry is a hashedrekord entry, not dsse or intoto",
    ),
    "certificate-from-another-ca": (
        lambda lab: dataclasses.replace(
            lab.attest(DIGEST, SLSA), certificate=_other_lab().attest(DIGEST, SLSA).certificate
        ),
        "its certificate does not chain to a Fulcio CA of the trusted root",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_ATT))
def test_hostile_keyless_attestations_are_refused(lab, root, case):
    make, message = HOSTILE_ATT[case]
    with pytest.raises(KeylessError, match=re.escape(message)):
        verify_att(root, make(lab))


def test_a_keyless_signature_layer_does_not_pass_as_an_attestation(lab, root):
    sig = lab.sign(DIGEST)
    with pytest.raises(KeylessError, match="not hashedrekord or rekord"):
        verify(root, dataclasses.replace(sig, bundle=lab.attest(DIGEST, SLSA).bundle))
