"""Keyless verification with a trusted root makes no network call: imgmirror copies an image
gated on a keyless signature from inside a network namespace whose only route is the link to
the two test registries (tests/support/offline.py). Both formats: cosign's real keyless
bundle (cosign v3, verified by sigstore-python) and a cosign v2 tag-based ``.sig`` of the
tests' own Sigstore (verified with cryptography)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cosign import bundle_referrer, ggcr_empty_image
from tests.support.images import make_image
from tests.support.offline import offline_namespace, routes
from tests.support.referrer_world import fallback, referrers_index
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.sigstore_lab import ISSUER, SUBJECT, SigstoreLab
from tests.support.tools import require_root, require_tool
from tests.support.verify_world import sig_tag

pytestmark = [pytest.mark.registry]

DATA = Path(__file__).parent.parent / "data" / "verify"
REPO = "apps/empty"


def _copy_offline(src: Registry, dst: Registry, policy: Path, home: Path) -> dict[str, Any]:
    """``imgmirror copy REPO:v1 --policy POLICY --json`` run in the namespace; its result."""
    require_root("a network namespace")
    require_tool("ip")
    with offline_namespace() as lab:
        source, destination = lab.expose(src.port), lab.expose(dst.port)
        assert "default" not in routes(lab)  # nothing but the link to the relays
        command = [
            sys.executable, "-m", "imgmirror", "copy", f"{source}/{REPO}:v1",
            f"{destination}/{REPO}:v1", "--policy", str(policy), "--json",
            "--insecure-registry", source, "--insecure-registry", destination,
        ]  # fmt: skip
        done = subprocess.run(
            lab.argv(command), capture_output=True, text=True, timeout=120, check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert lab.connections > 0
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_keyless_verification_runs_with_no_route_out(registry_factory: RegistryFactory, tmp_path):
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    image = ggcr_empty_image()
    bundle = (DATA / "cosign-oci-attestation.sigstore.json").read_bytes()
    referrer = bundle_referrer(bundle, image.descriptor(with_platform=False), "urn:x")
    with RegistryClient(src) as client:
        client.push_image(REPO, image, "v1")
        client.push_image(REPO, referrer)
        client.push_manifest(
            REPO,
            fallback(image.digest),
            referrers_index(referrer),
            "application/vnd.oci.image.index.v1+json",
        )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "identities:\n  - issuer: https://github.com/login/oauth\n    subject: cody@soyland.com\n"
        f"trusted-root: {DATA / 'cosign-trusted_root_pgi.json'}\n"
    )
    result = _copy_offline(src, dst, policy, tmp_path)
    assert result["digest"] == image.digest
    [attestation] = result["verification"]["attestations"]
    assert attestation["by"] == "identity cody@soyland.com (issuer https://github.com/login/oauth)"
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, "v1")
        assert client.manifest_exists(REPO, fallback(image.digest))


def test_tag_based_keyless_verification_runs_with_no_route_out(
    registry_factory: RegistryFactory, tmp_path
):
    src, dst = registry_factory(name="src"), registry_factory(name="dst")
    sigstore = SigstoreLab()
    image = make_image(fmt="oci", marker="offline-tag-keyless")
    with RegistryClient(src) as client:
        client.push_image(REPO, image, "v1")
        client.push_image(REPO, sigstore.sign(image.digest).image(), sig_tag(image.digest))
    root = sigstore.write_root(tmp_path / "trusted_root.json")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"identities:\n  - issuer: {ISSUER}\n    subject: {SUBJECT}\ntrusted-root: {root}\n"
    )
    result = _copy_offline(src, dst, policy, tmp_path)
    assert result["digest"] == image.digest
    [signature] = result["verification"]["signatures"]
    assert signature["by"] == f"identity {SUBJECT} (issuer {ISSUER})"
    assert signature["signedAt"] == f"{sigstore.at:%Y-%m-%dT%H:%M:%SZ}"
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, "v1")
        assert client.manifest_exists(REPO, sig_tag(image.digest))
