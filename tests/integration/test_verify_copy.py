"""copy, save and verify under a verification policy, against the real registry: what is
accepted is copied with its signatures; what is refused leaves nothing at the destination
and says why in one line (checked with the registry's catalog, blob and manifest HEADs and
skopeo)."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import imgmirror
from imgmirror.errors import InvalidPolicy, PolicyRefused
from imgmirror.model.digest import Digest
from imgmirror.verify.identity import Identity
from imgmirror.verify.policy import KeySource, Policy
from tests.support.cosign import (
    att_tag,
    bundle_referrer,
    ggcr_empty_image,
    key_bundle,
    simple_signing,
    statement,
    tag_signature,
)
from tests.support.images import OCI_INDEX, make_image, make_index
from tests.support.referrer_world import fallback, referrers_index
from tests.support.referrers_front import ReferrersFront
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.tools import run_cli
from tests.support.verify_world import (
    assert_nothing_written,
    copy_refused,
    json_line,
    push,
    sig_tag,
    signed_image,
    write_key,
)

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

REPO = "apps/web"
DATA = Path(__file__).parent.parent / "data" / "verify"
CODY = Identity("https://github.com/login/oauth", subject="cody@soyland.com")


def keys_policy(*paths: str, **extra: object) -> Policy:
    return Policy(keys=tuple(KeySource(p, "test") for p in paths), origin="test", **extra)  # type: ignore[arg-type]


@pytest.fixture
def ends(registry_factory: RegistryFactory) -> tuple[Registry, Registry]:
    return registry_factory(name="src"), registry_factory(name="dst")


@pytest.fixture
def front(registry_factory: RegistryFactory) -> Iterator[ReferrersFront]:
    """A source that serves the referrers API (tests/support/referrers_front.py)."""
    served = ReferrersFront(registry_factory(name="api-src"))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_a_signed_image_is_copied_with_its_signature(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, key, "signed")
    policy = keys_policy(write_key(tmp_path, key))
    result = imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy)
    assert result.digest == image.digest
    assert result.verification is not None
    assert result.verification.accepted
    [verified] = result.verification.signatures
    assert verified.subject == Digest.parse(image.digest)
    assert verified.by.startswith(f"key {tmp_path}/cosign.pub (sha256:")
    # the signature that verified travels with the image, without --referrers
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, sig_tag(image.digest))
    out = result.to_json()["verification"]
    assert out["accepted"] is True  # type: ignore[index]


@pytest.mark.parametrize("kind", ["p384", "rsa", "ed25519"])
def test_other_key_kinds(ends, tmp_path, kind):
    src, dst = ends
    private = {
        "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }[kind]()
    signed_image(src, REPO, private, kind)  # type: ignore[arg-type]
    policy = keys_policy(write_key(tmp_path, private))  # type: ignore[arg-type]
    assert imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy).verification


def test_any_of_several_keys_and_a_key_from_a_kubernetes_secret(ends, key, tmp_path):
    src, dst = ends
    signed_image(src, REPO, key, "secret")
    other = ec.generate_private_key(ec.SECP256R1())
    pem = Path(write_key(tmp_path, key)).read_bytes()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cosign", "namespace": "mirror"},
        "data": {"cosign.pub": base64.b64encode(pem).decode()},
    }
    (tmp_path / "secret.json").write_text(json.dumps(secret))
    policy = Policy(
        keys=(
            KeySource(write_key(tmp_path, other, "other.pub"), "t"),
            KeySource(str(tmp_path / "secret.json"), "t", secret=True),
        ),
        origin="t",
    )
    result = imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy)
    assert result.verification is not None
    assert "secret" in result.verification.signatures[0].by


def _refused(src: Registry, dst: Registry, policy: Policy, image, tag: str = "1.0") -> str:
    return copy_refused(src, dst, REPO, policy, image, tag=tag)


def test_an_unsigned_image_is_refused(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, None, "unsigned")
    line = _refused(src, dst, keys_policy(write_key(tmp_path, key)), image)
    assert line == (
        f"{src.ref(REPO, '1.0')} ({image.digest}) refused by the verification policy: "
        "no valid signature of the image by an allowed signer"
    )


def test_a_signature_by_a_key_not_allowed_is_refused(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, ec.generate_private_key(ec.SECP256R1()), "stranger")
    line = _refused(src, dst, keys_policy(write_key(tmp_path, key)), image)
    assert f"({sig_tag(image.digest)}: not signed by an allowed key)" in line


def test_a_signature_for_another_digest_is_a_replay(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, None, "victim")
    other = make_image(fmt="oci", marker="signed-elsewhere")
    # a genuine signature of another image, hung on this one's .sig tag
    push(src, REPO, tag_signature(other.digest, key), sig_tag(image.digest))
    line = _refused(src, dst, keys_policy(write_key(tmp_path, key)), image)
    assert f"signed for {other.digest}, not this image (a replay)" in line


def test_a_tampered_payload_is_refused(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, None, "tampered")
    honest = simple_signing(image.digest)
    forged = honest.replace(b"example.invalid/app", b"example.invalid/evil")
    from tests.support.cosign import sign

    push(src, REPO, tag_signature(image.digest, key, payload=forged, signature=sign(key, honest)),
         sig_tag(image.digest))  # fmt: skip
    line = _refused(src, dst, keys_policy(write_key(tmp_path, key)), image)
    assert "not signed by an allowed key" in line


def test_a_sig_tag_whose_blob_is_missing_is_refused(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, key, "lost-blob")
    signature = tag_signature(image.digest, key)  # the same bytes signed_image pushed
    payload = signature.layers[0]
    blob_dir = src.storage_dir / "docker/registry/v2/blobs/sha256" / payload.hex[:2] / payload.hex
    shutil.rmtree(blob_dir)
    line = _refused(src, dst, keys_policy(write_key(tmp_path, key)), image)
    assert f"layer {payload.hex[:12]}" in line


def test_required_attestations_by_predicate_type(ends, key, tmp_path):
    src, dst = ends
    image = signed_image(src, REPO, key, "attested")
    push(
        src,
        REPO,
        att_tag(image.digest, key, "https://spdx.dev/Document"),
        sig_tag(image.digest, "att"),
    )
    policy = keys_policy(write_key(tmp_path, key), attestations=("https://slsa.dev/provenance/v1",))
    line = _refused(src, dst, policy, image)
    assert "no attestation https://slsa.dev/provenance/v1 by an allowed signer" in line
    assert "verified: https://spdx.dev/Document" in line
    spdx = keys_policy(write_key(tmp_path, key), attestations=("https://spdx.dev/Document",))
    result = imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=spdx)
    assert result.verification is not None
    assert [a.predicate_type for a in result.verification.attestations] == [
        "https://spdx.dev/Document"
    ]
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, sig_tag(image.digest, "att"))


def test_ages(ends, key, tmp_path):
    import datetime as dt

    src, dst = ends
    image = signed_image(src, REPO, key, "aged")  # created 2024-01-01
    too_old = keys_policy(write_key(tmp_path, key), max_age=dt.timedelta(days=30))
    assert "older than max-age 30d (created 2024-01-01T00:00:00Z)" in _refused(
        src, dst, too_old, image
    )
    cooled = keys_policy(write_key(tmp_path, key), min_age=dt.timedelta(days=3))
    result = imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=cooled)
    assert result.verification is not None
    assert result.verification.created == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_an_index_and_per_platform(ends, key, tmp_path):
    src, dst = ends
    amd, arm = (
        make_image(fmt="oci", platform="linux/amd64", marker="i"),
        make_image(fmt="oci", platform="linux/arm64", marker="i"),
    )
    index = make_index([amd, arm], fmt="oci")
    with RegistryClient(src) as client:
        client.push_index(REPO, index, "1.0")
        client.push_image(REPO, tag_signature(index.digest, key), sig_tag(index.digest))
        client.push_image(REPO, tag_signature(amd.digest, key), sig_tag(amd.digest))
    path = write_key(tmp_path, key)
    # the index is signed: the whole index is copied
    assert imgmirror.copy(
        src.ref(REPO, "1.0"), dst.ref("whole/web", "1.0"), verify=keys_policy(path)
    )
    # per-platform: arm64 has no signature of its own
    with pytest.raises(PolicyRefused, match=f"no valid signature of platform image {arm.digest}"):
        imgmirror.copy(
            src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=keys_policy(path, per_platform=True)
        )
    with RegistryClient(dst) as client:
        assert not client.manifest_exists(REPO, index.digest)
    # only amd64 copied: its signature suffices
    only = imgmirror.copy(
        src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), platforms="linux/amd64",
        verify=keys_policy(path, per_platform=True),
    )  # fmt: skip
    assert only.digest == amd.digest


def test_a_key_based_cosign_v3_bundle_found_by_the_referrers_api(
    front, registry_factory, key, tmp_path
):
    dst = registry_factory(name="dst")
    src = front.as_registry()
    image = signed_image(src, REPO, None, "bundled")
    predicate = "https://sigstore.dev/cosign/sign/v1"
    bundle = key_bundle(statement(image.digest, predicate), key)
    subject = image.descriptor(with_platform=False)
    push(src, REPO, bundle_referrer(bundle, subject, predicate))
    result = imgmirror.copy(
        src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=keys_policy(write_key(tmp_path, key))
    )
    assert result.verification is not None
    assert len(result.verification.signatures) == 1  # the sign/v1 statement is a signature
    # a bundle signed for another image is a replay
    victim = signed_image(src, REPO, None, "victim2", tag="2.0")
    push(src, REPO, bundle_referrer(bundle, victim.descriptor(with_platform=False), predicate))
    with pytest.raises(PolicyRefused, match=r"a statement about .*, not this image \(a replay\)"):
        imgmirror.copy(
            src.ref(REPO, "2.0"),
            dst.ref(REPO, "2.0"),
            verify=keys_policy(write_key(tmp_path, key)),
        )
    with RegistryClient(dst) as client:
        assert not client.manifest_exists(REPO, "2.0")


def test_huge_and_looping_referrers_lists_are_refused(front, registry_factory, key, tmp_path):
    dst = registry_factory(name="dst")
    src = front.as_registry()
    image = signed_image(src, REPO, key, "hostile")
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10,
             "digest": "sha256:" + "0" * 64, "artifactType": "application/x"}  # fmt: skip
    front.override_referrers = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry] * 60000}
    ).encode()  # over the 4 MiB a referrers page may hold
    policy = keys_policy(write_key(tmp_path, key))
    with pytest.raises(PolicyRefused, match=r"could not be read: .* a page is larger than"):
        imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy)
    front.override_referrers = None
    page = front.listing

    pages = itertools.count()

    def endless(repo: str, digest: str, query: str) -> tuple[bytes, dict[str, str]]:
        body, _ = page(repo, digest, query)
        return body, {"Link": f'</v2/{repo}/referrers/{digest}?page={next(pages)}>; rel="next"'}

    def looping(repo: str, digest: str, query: str) -> tuple[bytes, dict[str, str]]:
        body, _ = page(repo, digest, query)
        return body, {"Link": f'</v2/{repo}/referrers/{digest}?again=1>; rel="next"'}

    front.listing = endless
    with pytest.raises(PolicyRefused, match=r"could not be read: .* more than 100 pages"):
        imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy)
    front.listing = looping
    with pytest.raises(PolicyRefused, match=r"could not be read: .* a page already read"):
        imgmirror.copy(src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=policy)
    assert_nothing_written(dst, REPO, image)


def _empty_image_with_real_bundle(src: Registry, bundle: bytes | None = None) -> str:
    """ggcr's empty image and cosign's real keyless bundle on it (a fallback-tag referrer)."""
    image = ggcr_empty_image()
    push(src, REPO, image, "empty")
    raw = (
        bundle
        if bundle is not None
        else (DATA / "cosign-oci-attestation.sigstore.json").read_bytes()
    )
    referrer = bundle_referrer(
        raw, image.descriptor(with_platform=False), "https://cosign.sigstore.dev/attestation/v1"
    )
    with RegistryClient(src) as client:
        client.push_image(REPO, referrer)
        client.push_manifest(REPO, fallback(image.digest), referrers_index(referrer), OCI_INDEX)
    return image.digest


def keyless_policy(*identities: Identity) -> Policy:
    return Policy(
        identities=identities or (CODY,),
        trusted_root=str(DATA / "cosign-trusted_root_pgi.json"),
        origin="t",
    )


def test_cosigns_real_keyless_bundle_gates_a_copy(ends):
    src, dst = ends
    digest = _empty_image_with_real_bundle(src)
    result = imgmirror.copy(src.ref(REPO, "empty"), dst.ref(REPO, "empty"), verify=keyless_policy())
    assert result.digest == digest
    assert result.verification is not None
    [att] = result.verification.attestations
    assert att.by == "identity cody@soyland.com (issuer https://github.com/login/oauth)"
    assert att.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    # carried to the mirror, for admission controllers to verify again
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, fallback(digest))
    # another identity is refused, nothing written
    other = dst.ref("other/web", "empty")
    with pytest.raises(PolicyRefused, match="not an allowed identity"):
        imgmirror.copy(
            src.ref(REPO, "empty"),
            other,
            verify=keyless_policy(Identity(CODY.issuer, subject="eve@example.com")),
        )
    with RegistryClient(dst) as client:
        assert not client.manifest_exists("other/web", "empty")


def test_a_tampered_keyless_bundle_is_refused(ends):
    src, dst = ends
    doc = json.loads((DATA / "cosign-oci-attestation.sigstore.json").read_bytes())
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 365 * 86400)
    _empty_image_with_real_bundle(src, json.dumps(doc).encode())
    with pytest.raises(PolicyRefused, match=r"keyless bundle: .*not valid at validation time"):
        imgmirror.copy(src.ref(REPO, "empty"), dst.ref(REPO, "empty"), verify=keyless_policy())
    assert_nothing_written(dst, REPO, ggcr_empty_image(), "empty")


def test_save_verifies_before_the_archive_gets_a_byte(ends, key, tmp_path):
    src, _ = ends
    signed_image(src, REPO, key, "save-ok")
    signed_image(src, REPO, None, "save-bad", tag="2.0")
    policy = keys_policy(write_key(tmp_path, key))
    out = tmp_path / "bad.tar"
    with pytest.raises(PolicyRefused):
        imgmirror.save(
            [src.ref(REPO, "1.0"), src.ref(REPO, "2.0")], out, verify=policy, format="oci"
        )
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad.tar")]
    good = imgmirror.save([src.ref(REPO, "1.0")], tmp_path / "ok.tar", verify=policy, format="oci")
    assert good.verification[0]["accepted"]
    assert good.referrers  # the signature is stored beside the image


def test_the_cli_exit_status_says_refused(ends, key, tmp_path):
    src, dst = ends
    signed_image(src, REPO, key, "cli-ok")
    bad = signed_image(src, REPO, None, "cli-bad", tag="2.0")
    path = write_key(tmp_path, key)
    ok = run_cli("copy", src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), "--verify-key", path, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json_line(ok.stdout)["verification"]["accepted"] is True
    refused = run_cli("copy", src.ref(REPO, "2.0"), dst.ref(REPO, "2.0"), "--verify-key", path)
    assert refused.returncode == 3
    assert refused.stderr.strip().splitlines() == [
        f"imgmirror: error: {src.ref(REPO, '2.0')} ({bad.digest}) refused by the verification "
        "policy: no valid signature of the image by an allowed signer"
    ]
    with RegistryClient(dst) as client:
        assert not client.manifest_exists(REPO, "2.0")
    # a transfer failure is not a refusal
    gone = run_cli(
        "copy", "127.0.0.1:1/x/y:1", dst.ref(REPO, "3.0"), "--verify-key", path, "--timeout", "2"
    )
    assert gone.returncode == 1
    # verify checks without copying
    checked = run_cli("verify", src.ref(REPO, "1.0"), "--verify-key", path, "--json")
    assert checked.returncode == 0, checked.stderr
    assert json_line(checked.stdout)["signatures"][0]["by"].startswith(f"key {path}")
    assert run_cli("verify", src.ref(REPO, "2.0"), "--verify-key", path).returncode == 3
    # a policy file, and a bad one
    policy = tmp_path / "policy.yaml"
    policy.write_text("keys: [cosign.pub]\nmin-age: 1d\n")
    assert run_cli("verify", src.ref(REPO, "1.0"), "--policy", str(policy)).returncode == 0
    policy.write_text("keys: [cosign.pub]\nmin-age: soon\n")
    broken = run_cli("verify", src.ref(REPO, "1.0"), "--policy", str(policy))
    assert broken.returncode == 1
    assert f"{policy}:2: min-age: 'soon' is not a duration" in broken.stderr


def test_a_key_file_that_cannot_be_used(ends, tmp_path):
    src, dst = ends
    signed_image(src, REPO, None, "nokey")
    (tmp_path / "cosign.pub").write_text("not a key")
    with pytest.raises(InvalidPolicy, match="neither a PEM public key nor a Kubernetes Secret"):
        imgmirror.copy(
            src.ref(REPO, "1.0"),
            dst.ref(REPO, "1.0"),
            verify=keys_policy(str(tmp_path / "cosign.pub")),
        )
    with pytest.raises(InvalidPolicy, match="No such file"):
        imgmirror.copy(
            src.ref(REPO, "1.0"), dst.ref(REPO, "1.0"), verify=keys_policy(str(tmp_path / "x.pub"))
        )


def test_save_on_the_command_line_says_who_signed(ends, key, tmp_path):
    src, _ = ends
    signed_image(src, REPO, key, "save-cli")
    path = write_key(tmp_path, key)
    out = tmp_path / "app.tar"
    done = run_cli("save", src.ref(REPO, "1.0"), "-o", str(out), "--verify-key", path)
    assert done.returncode == 0, done.stderr
    assert f"  {src.ref(REPO, '1.0')}: verified by key {path} (sha256:" in done.stdout
    stranger = write_key(tmp_path, ec.generate_private_key(ec.SECP256R1()), "x.pub")
    no = tmp_path / "no.tar"
    refused = run_cli("save", src.ref(REPO, "1.0"), "-o", str(no), "--verify-key", stranger)
    assert refused.returncode == 3
    assert not no.exists()
