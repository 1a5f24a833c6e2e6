"""The pure parts of verification: policy file, keys, payloads, bundles, identities, ages,
the decision and its cache; and sigstore-python on real bundles from cosign and sigstore."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from imgmirror.errors import InvalidPolicy, InvalidSyncFile
from imgmirror.model.digest import Digest
from imgmirror.syncing.file import parse_sync_file
from imgmirror.verify.age import age_problem, format_duration, parse_duration, parse_time
from imgmirror.verify.bundle import bundle_version, parse_bundle
from imgmirror.verify.cache import DecisionCache
from imgmirror.verify.decision import Decision, Verified, decide
from imgmirror.verify.identity import Identity, cert_identity, compile_subject
from imgmirror.verify.keyless import KeylessError, load_trusted_root, verify_bundle
from imgmirror.verify.keys import key_from_secret, load_public_key
from imgmirror.verify.payloads import (
    PayloadError,
    pae,
    parse_envelope,
    parse_simple_signing,
    parse_statement,
    predicate_type,
)
from imgmirror.verify.policy import Policy
from imgmirror.verify.policyfile import parse_policy
from tests.support.cosign import (
    PrivateKey,
    dsse_envelope,
    key_bundle,
    public_pem,
    sign,
    simple_signing,
    statement,
)

DATA = Path(__file__).parent.parent / "data" / "verify"
D1 = Digest("sha256", "a" * 64)
D2 = Digest("sha256", "b" * 64)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
COSIGN_BUNDLE = DATA / "cosign-oci-attestation.sigstore.json"
COSIGN_ROOT = DATA / "cosign-trusted_root_pgi.json"
EMPTY_IMAGE = Digest("sha256", "732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4")
CODY = Identity("https://github.com/login/oauth", subject="cody@soyland.com")


# --- ages ---------------------------------------------------------------------------------


def test_durations():
    assert parse_duration("3d") == dt.timedelta(days=3)
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration("2w") == dt.timedelta(weeks=2)
    assert format_duration(dt.timedelta(hours=36)) == "36h"
    for bad in ("3", "3 days", "-1d", "1.5d", "d"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_created_times():
    assert parse_time("2024-01-01T00:00:00Z") == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert parse_time("2024-01-01T00:00:00.123456789Z") is not None  # Go's nanoseconds
    assert parse_time("0001-01-01T00:00:00Z") is None  # Go's zero time: unset
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


def test_age_problems():
    created = NOW - dt.timedelta(days=2)
    assert age_problem(created, NOW, dt.timedelta(days=3), None) is not None
    assert "younger than min-age 3d" in str(age_problem(created, NOW, dt.timedelta(days=3), None))
    assert age_problem(created, NOW, dt.timedelta(days=1), dt.timedelta(days=30)) is None
    assert "older than max-age 1d" in str(age_problem(created, NOW, None, dt.timedelta(days=1)))
    assert "unknown" in str(age_problem(None, NOW, dt.timedelta(days=1), None))
    assert age_problem(None, NOW, None, None) is None


# --- keys ---------------------------------------------------------------------------------

KEYS: dict[str, Callable[[], PrivateKey]] = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_every_kind_of_cosign_key_verifies_its_signatures_only(kind):
    private = KEYS[kind]()
    key = load_public_key(public_pem(private), "cosign.pub")
    assert key.verify(sign(private, b"payload"), b"payload")
    assert not key.verify(sign(private, b"payload"), b"payload!")
    assert not key.verify(sign(KEYS[kind](), b"payload"), b"payload")
    assert not key.verify(b"junk", b"payload")
    assert key.describe().startswith("key cosign.pub (sha256:")


def test_a_p384_key_verifies_over_sha384_too():
    from cryptography.hazmat.primitives import hashes

    private = ec.generate_private_key(ec.SECP384R1())
    key = load_public_key(public_pem(private), "k")
    assert key.verify(private.sign(b"x", ec.ECDSA(hashes.SHA384())), b"x")


def test_rsa_pss_signatures_verify():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    key = load_public_key(public_pem(private), "k")
    assert key.verify(private.sign(b"x", scheme, hashes.SHA256()), b"x")


def test_keys_that_are_not_public_keys_are_refused():
    from cryptography.hazmat.primitives import serialization

    private = KEYS["p256"]()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidPolicy, match="holds a private key"):
        load_public_key(pem, "cosign.key")
    with pytest.raises(InvalidPolicy, match="is not a PEM public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "x.pub")


def test_a_key_from_a_kubernetes_secret():
    private = KEYS["p256"]()
    pem = public_pem(private)
    data = {"data": {"cosign.pub": base64.b64encode(pem).decode()}}
    assert key_from_secret(data, "secret s", None).verify(sign(private, b"x"), b"x")
    assert key_from_secret({"stringData": {"k.pub": pem.decode()}}, "s", "k.pub").name.endswith(
        "[k.pub]"
    )
    with pytest.raises(InvalidPolicy, match=r"has no cosign\.pub entry"):
        key_from_secret({"data": {}}, "secret s", None)
    with pytest.raises(InvalidPolicy, match="not base64"):
        key_from_secret({"data": {"cosign.pub": "%%%"}}, "secret s", None)


# --- payloads -----------------------------------------------------------------------------


def test_simple_signing_payloads():
    claims = parse_simple_signing(simple_signing(str(D1), "reg/app"))
    assert claims.digest == D1
    assert claims.reference == "reg/app"
    with pytest.raises(PayloadError, match="type"):
        parse_simple_signing(json.dumps({"critical": {"type": "x"}}).encode())
    with pytest.raises(PayloadError, match="not JSON"):
        parse_simple_signing(b"{")


def test_pae_is_dsse_v1():
    # the DSSE specification's own example (protocol.md)
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelopes_and_statements():
    private = KEYS["p256"]()
    envelope = parse_envelope(
        json.dumps(dsse_envelope(statement(str(D1), "urn:x"), private)).encode()
    )
    found = parse_statement(envelope.payload_type, envelope.payload)
    assert found.predicate_type == "urn:x"
    assert found.names(D1)
    assert not found.names(D2)
    with pytest.raises(PayloadError, match="not an in-toto statement"):
        parse_statement("text/plain", envelope.payload)
    with pytest.raises(PayloadError, match="no signatures"):
        parse_envelope(b'{"payloadType": "x", "payload": "", "signatures": []}')


def test_cosign_short_names_for_predicate_types():
    assert predicate_type("slsaprovenance") == "https://slsa.dev/provenance/v0.2"
    assert predicate_type("slsaprovenance1") == "https://slsa.dev/provenance/v1"
    assert predicate_type("spdx") == predicate_type("spdxjson") == "https://spdx.dev/Document"
    assert predicate_type("cyclonedx") == "https://cyclonedx.org/bom"
    assert predicate_type("https://example.com/p/v1") == "https://example.com/p/v1"
    with pytest.raises(ValueError, match="unknown attestation type 'sbom'"):
        predicate_type("sbom")


# --- bundles ------------------------------------------------------------------------------


def test_real_bundles_of_each_version_parse():
    cosign = parse_bundle(COSIGN_BUNDLE.read_bytes())
    assert (cosign.version, cosign.keyless, cosign.envelope is not None) == ("0.3", True, True)
    assert cosign.integrated_time == 1740770291
    old = parse_bundle((DATA / "sigstore-python-bundle.txt.sigstore").read_bytes())
    assert (old.version, old.message is not None) == ("0.1", True)
    assert bundle_version("application/vnd.dev.sigstore.bundle+json;version=0.2") == "0.2"
    assert bundle_version("application/json") is None


def test_key_bundles_parse_without_a_certificate():
    private = KEYS["p256"]()
    bundle = parse_bundle(key_bundle(statement(str(D1), "urn:x"), private))
    assert not bundle.keyless
    assert bundle.key_hint


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"mediaType": "x"}, "unknown sigstore bundle media type"),
        ({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}, "verificationMaterial"),
        (
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {"publicKey": {}},
            },
            "one DSSE envelope or one message signature",
        ),
    ],
)
def test_malformed_bundles(doc, message):
    with pytest.raises(PayloadError, match=message):
        parse_bundle(json.dumps(doc).encode())


# --- identities ---------------------------------------------------------------------------


def test_identities_of_a_real_fulcio_certificate():
    cert = parse_bundle(COSIGN_BUNDLE.read_bytes()).certificate
    assert cert is not None
    found = cert_identity(cert)
    assert found.issuer == "https://github.com/login/oauth"
    assert found.subjects == ("cody@soyland.com",)
    assert CODY.matches(found.issuer, found.subjects)
    regex = Identity(
        "https://github.com/login/oauth", subject_regex=compile_subject(r".*@soyland\.com")
    )
    assert regex.matches(found.issuer, found.subjects)
    assert not Identity("https://accounts.google.com", subject="cody@soyland.com").matches(
        found.issuer, found.subjects
    )
    # matched whole: a prefix is not enough
    assert not Identity(found.issuer, subject_regex=compile_subject("cody")).matches(
        found.issuer, found.subjects
    )


def test_subject_regexes_are_bounded():
    with pytest.raises(ValueError, match="longer than 256"):
        compile_subject("a" * 257)
    with pytest.raises(ValueError, match="not a regex RE2 takes"):
        compile_subject("(")
    with pytest.raises(ValueError, match="not a regex RE2 takes"):
        compile_subject("(?=lookahead)")
    identity = Identity("i", subject_regex=compile_subject("a*"))
    assert not identity.matches("i", ("a" * 2000,))  # an over-long subject is not tried


@pytest.mark.timeout(20)
def test_a_catastrophic_subject_regex_runs_in_linear_time():
    identity = Identity("i", subject_regex=compile_subject(r"^(\w+\.?)+$"))
    assert not identity.matches("i", ("a" * 60 + "!",))


# --- keyless on real bundles (sigstore-python, offline) -----------------------------------


def test_cosigns_real_keyless_bundle_verifies_offline():
    root = load_trusted_root(str(COSIGN_ROOT))
    by, signed_at, content = verify_bundle(
        root, parse_bundle(COSIGN_BUNDLE.read_bytes()), [CODY], EMPTY_IMAGE
    )
    assert by == "identity cody@soyland.com (issuer https://github.com/login/oauth)"
    assert signed_at == dt.datetime.fromtimestamp(1740770291, dt.UTC)
    assert content is not None
    assert parse_statement(*content).names(EMPTY_IMAGE)


def _tampered(change) -> bytes:
    doc = json.loads(COSIGN_BUNDLE.read_bytes())
    change(doc)
    return json.dumps(doc).encode()


def _payload_swapped(doc):
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "b" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()


def _time_moved(doc):
    # a year later: outside the ten-minute certificate (and the log's promise no longer holds)
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 365 * 86400)


@pytest.mark.parametrize(
    ("change", "identities", "message"),
    [
        (_payload_swapped, [CODY], "invalid signature"),
        (_time_moved, [CODY], "not valid at validation time"),
        (lambda doc: None, [Identity("https://github.com/login/oauth", subject="eve@example.com")],
         "not an allowed identity"),
        (lambda doc: None, [Identity("https://accounts.google.com", subject="cody@soyland.com")],
         "not an allowed identity"),
    ],
    ids=["tampered-payload", "expired-certificate", "wrong-subject", "wrong-issuer"],
)  # fmt: skip
def test_tampered_or_foreign_keyless_bundles_do_not_verify(change, identities, message):
    root = load_trusted_root(str(COSIGN_ROOT))
    with pytest.raises(KeylessError, match=message):
        verify_bundle(root, parse_bundle(_tampered(change)), identities, EMPTY_IMAGE)


def test_a_real_message_signature_bundle_verifies_against_its_digest_only():
    root = load_trusted_root(str(DATA / "sigstore-python-staging-trusted_root.json"))
    bundle = parse_bundle((DATA / "sigstore-python-bundle_v3.txt.sigstore").read_bytes())
    digest = Digest(
        "sha256", hashlib.sha256((DATA / "sigstore-python-bundle_v3.txt").read_bytes()).hexdigest()
    )
    william = Identity("https://github.com/login/oauth", subject="william@yossarian.net")
    assert verify_bundle(root, bundle, [william], digest)[2] is None
    with pytest.raises(KeylessError, match="digest mismatch"):
        verify_bundle(root, bundle, [william], D1)
    with pytest.raises(KeylessError):  # cosign's public-good root did not issue it
        verify_bundle(load_trusted_root(str(COSIGN_ROOT)), bundle, [william], digest)


def test_a_trusted_root_that_is_not_one(tmp_path):
    bad = tmp_path / "root.json"
    bad.write_text('{"mediaType": "nope"}')
    with pytest.raises(InvalidPolicy, match="cannot be used"):
        load_trusted_root(str(bad))
    with pytest.raises(InvalidPolicy, match="No such file"):
        load_trusted_root(str(tmp_path / "missing.json"))


# --- the policy file ----------------------------------------------------------------------

POLICY = """\
keys: [cosign.pub, {secret: secret.yaml, key: release.pub}]
identities:
  - issuer: https://token.actions.githubusercontent.com
    subject-regex: ^https://github\\.com/acme/.+$
trusted-root: trusted_root.json
attestations: [slsaprovenance, https://example.com/scan/v1]
min-age: 3d
max-age: 365d
per-platform: true
"""


def test_a_policy_file():
    policy = parse_policy(POLICY, "policy.yaml", base="/etc/imgmirror")
    assert [k.path for k in policy.keys] == ["cosign.pub", "secret.yaml"]
    assert policy.keys[1].secret
    assert policy.keys[1].entry == "release.pub"
    assert policy.keys[0].resolved(policy.base) == "/etc/imgmirror/cosign.pub"
    assert policy.identities[0].matches(
        "https://token.actions.githubusercontent.com", ("https://github.com/acme/app/.github/w",)
    )
    assert policy.attestations == (
        "https://slsa.dev/provenance/v0.2",
        "https://example.com/scan/v1",
    )
    assert (policy.min_age, policy.max_age) == (dt.timedelta(days=3), dt.timedelta(days=365))
    assert policy.per_platform
    assert policy.origin == "policy.yaml:1"
    assert policy.fingerprint(["k"]) != policy.fingerprint(["k2"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys: [a.pub]\nkeyz: 1\n", r"policy.yaml:2: unknown key 'keyz' in verify"),
        ("min-age: 3d\n", r"policy.yaml:1: a policy needs keys: or identities:"),
        ("keys: [a.pub]\nmin-age: 3 days\n", r"policy.yaml:2: min-age: '3 days' is not a dur"),
        ("keys: [a.pub]\nattestations: [sbom]\n", r"policy.yaml:2: unknown attestation type"),
        ("identities:\n  - issuer: x\n    subject: y\n", r"policy.yaml:2: identities need trust"),
        ("identities:\n  - issuer: x\ntrusted-root: r.json\n",
         r"policy.yaml:2: an identity needs exactly one of subject: or subject-regex:"),
        ("identities:\n  - {issuer: x, subject-regex: '('}\ntrusted-root: r\n",
         r"policy.yaml:2: subject-regex '\(' is not a regex RE2 takes"),
        ("keys: [a.pub]\nmin-age: 30d\nmax-age: 1d\n", r"policy.yaml:3: max-age is shorter"),
        ("keys: [{secret: s.yaml, path: a.pub}]\n", r"policy.yaml:1: a keys entry needs path"),
        ("keys: [a.pub]\nper-platform: yes please\n", r"policy.yaml:2: per-platform must be true"),
        ("", r"policy.yaml: the policy file is empty"),
        ("keys: [a.pub\n", r"policy.yaml:2: YAML syntax error"),
    ],
)  # fmt: skip
def test_policy_file_errors_name_the_line(text, message):
    with pytest.raises(InvalidPolicy, match=message):
        parse_policy(text, "policy.yaml")


SYNC = """\
defaults:
  to: reg.corp/mirror/
  verify:
    keys: [keys/cosign.pub]
images:
  - image: registry.k8s.io/pause:3.10
  - image: docker.io/library/alpine:3.20
    verify:
      keys: [other.pub]
      attestations: [spdx]
  - image: quay.io/app:1
    verify: false
"""


def test_sync_files_take_verify_in_defaults_and_entries():
    spec = parse_sync_file(SYNC, "/srv/mirror/sync.yaml")
    first, second, third = spec.entries
    assert first.verify is not None
    assert first.verify.keys[0].resolved(first.verify.base) == "/srv/mirror/keys/cosign.pub"
    assert second.verify is not None
    assert [k.path for k in second.verify.keys] == ["other.pub"]
    assert second.verify.attestations == ("https://spdx.dev/Document",)
    assert third.verify is None
    given = Policy(keys=first.verify.keys, origin="--policy")
    replaced = [e.verify for e in parse_sync_file(SYNC, "s.yaml", verify=given).entries]
    assert replaced[0] is given  # the CLI's policy replaces defaults.verify
    assert replaced[1] is not None  # an entry's own verify: wins
    assert replaced[1].keys[0].path == "other.pub"
    assert replaced[2] is None


def test_sync_file_verify_errors_name_file_and_line():
    bad = SYNC.replace("attestations: [spdx]", "attestations: [sboms]")
    with pytest.raises(InvalidSyncFile, match=r"/srv/sync.yaml:10: unknown attestation type"):
        parse_sync_file(bad, "/srv/sync.yaml")
    with pytest.raises(InvalidSyncFile, match=r"sync.yaml:12: verify: true says nothing"):
        parse_sync_file(SYNC.replace("verify: false", "verify: true"), "sync.yaml")


# --- the decision -------------------------------------------------------------------------

POLICY_KEYS = Policy(keys=(), origin="t")


def signed(subject: Digest, kind: str | None = None, at: dt.datetime | None = None) -> Verified:
    return Verified(subject, D2, "key k (sha256:00)", kind, at)


def test_a_signature_on_the_image_is_enough():
    decision = decide(POLICY_KEYS, D1, [D1], [signed(D1)], [], created=None, now=NOW)
    assert decision.accepted
    assert decision.summary() == "verified by key k (sha256:00)"


def test_no_signature_refuses_and_says_why():
    decision = decide(
        POLICY_KEYS, D1, [D1], [signed(D2)], ["sha256-aa.sig: not signed by an allowed key"],
        created=None, now=NOW,
    )  # fmt: skip
    assert not decision.accepted
    assert decision.reason == (
        "no valid signature of the image by an allowed signer "
        "(sha256-aa.sig: not signed by an allowed key)"
    )


def test_per_platform_needs_each_platform_signed():
    child = Digest("sha256", "c" * 64)
    decision = decide(POLICY_KEYS, D1, [D1, child], [signed(D1)], [], created=None, now=NOW)
    assert decision.reason is not None
    assert f"platform image {child}" in decision.reason
    assert decide(
        POLICY_KEYS, D1, [D1, child], [signed(D1), signed(child)], [], created=None, now=NOW
    ).accepted


def test_attestations_must_be_there_with_their_predicate_type():
    policy = Policy(attestations=("https://slsa.dev/provenance/v1",), origin="t")
    only_sig = decide(policy, D1, [D1], [signed(D1)], [], created=None, now=NOW)
    assert only_sig.reason == "no attestation https://slsa.dev/provenance/v1 by an allowed signer"
    other = decide(
        policy,
        D1,
        [D1],
        [signed(D1), signed(D1, "https://spdx.dev/Document")],
        [],
        created=None,
        now=NOW,
    )
    assert other.reason is not None
    assert "verified: https://spdx.dev/Document" in other.reason
    ok = decide(
        policy, D1, [D1], [signed(D1, "https://slsa.dev/provenance/v1")], [], created=None, now=NOW
    )
    assert ok.accepted  # a verified statement about the digest signs it (cosign v3)
    assert "attestations: https://slsa.dev/provenance/v1" in ok.summary()


def test_ages_from_the_config_or_the_signing_time():
    policy = Policy(min_age=dt.timedelta(days=3), origin="t")
    young = decide(policy, D1, [D1], [signed(D1)], [], created=NOW - dt.timedelta(days=1), now=NOW)
    assert "younger than min-age 3d" in str(young.reason)
    old_sig = decide(
        policy, D1, [D1], [signed(D1, at=NOW - dt.timedelta(days=5))], [], created=None, now=NOW
    )
    assert old_sig.accepted
    unknown = decide(policy, D1, [D1], [signed(D1)], [], created=None, now=NOW)
    assert "age is unknown" in str(unknown.reason)


def test_decisions_round_trip_through_json():
    decision = decide(
        POLICY_KEYS, D1, [D1], [signed(D1, at=NOW), signed(D1, "urn:p")], [],
        created=NOW, now=NOW,
    )  # fmt: skip
    back = Decision.from_json(json.loads(json.dumps(decision.to_json())))
    assert back.cached
    assert back.signatures == decision.signatures
    assert back.attestations == decision.attestations
    assert back.created == decision.created


# --- the cache ----------------------------------------------------------------------------


def test_the_cache_keeps_accepted_decisions_by_policy_and_digest(tmp_path):
    path = tmp_path / "cache.json"
    cache = DecisionCache(path)
    accepted = decide(POLICY_KEYS, D1, [D1], [signed(D1)], [], created=None, now=NOW)
    refused = decide(POLICY_KEYS, D2, [D2], [], [], created=None, now=NOW)
    cache.put("policy-a", accepted)
    cache.put("policy-a", refused)
    cache.save()
    again = DecisionCache(path)
    hit = again.get("policy-a", str(D1))
    assert hit is not None
    assert hit.cached
    assert again.get("policy-b", str(D1)) is None  # another policy: verify again
    assert again.get("policy-a", str(D2)) is None  # refusals are never kept
    assert not list(tmp_path.glob(".cache.json.*"))  # written atomically


def test_a_broken_cache_file_is_ignored(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    assert DecisionCache(path).get("p", str(D1)) is None
    path.write_text(json.dumps({"version": 1, "entries": {f"p/{D1}": {"decision": {"digest": 3}}}}))
    assert DecisionCache(path).get("p", str(D1)) is None
