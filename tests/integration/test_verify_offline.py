"""Keyless verification with a trusted root makes no network call: imgmirror copies an image
gated on cosign's real keyless bundle from inside a network namespace whose only route is the
link to the two test registries (tests/support/offline.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cosign import bundle_referrer, ggcr_empty_image
from tests.support.offline import offline_namespace, routes
from tests.support.referrer_world import fallback, referrers_index
from tests.support.registry import RegistryFactory
from tests.support.seed import RegistryClient
from tests.support.tools import require_root, require_tool

pytestmark = [pytest.mark.registry]

DATA = Path(__file__).parent.parent / "data" / "verify"
REPO = "apps/empty"


def test_keyless_verification_runs_with_no_route_out(registry_factory: RegistryFactory, tmp_path):
    require_root("a network namespace")
    require_tool("ip")
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
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert lab.connections > 0
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["digest"] == image.digest
    [attestation] = result["verification"]["attestations"]
    assert attestation["by"] == "identity cody@soyland.com (issuer https://github.com/login/oauth)"
    with RegistryClient(dst) as client:
        assert client.manifest_exists(REPO, "v1")
        assert client.manifest_exists(REPO, fallback(image.digest))
