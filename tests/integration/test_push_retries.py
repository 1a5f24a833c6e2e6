"""A compressed archive is read in passes: a blob whose upload breaks off is sent again in the
next pass, after the retry policy's backoff, as a plain tar's blob is restarted (issue 8)."""

from __future__ import annotations

import os

import pytest

import imgmirror
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import RetryPolicy
from tests.support.cutproxy import cut_proxy
from tests.support.images import make_image, make_layer
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import seed
from tests.support.tools import skopeo_inspect_raw

pytestmark = [pytest.mark.registry]

FAST = ClientOptions(retry=RetryPolicy(attempts=3, backoff=0.01))


def test_compressed_archive_blob_broken_off_is_sent_again(
    anon_registry: Registry, registry_factory: RegistryFactory, tmp_path
):
    big = make_layer({"blob.bin": os.urandom(3 * 1024 * 1024)})  # over the one-PUT size
    image = make_image([big], marker="passes")
    digest = seed(anon_registry, "src/app", "v1", image)
    archive = tmp_path / "app.tar.gz"
    imgmirror.save([anon_registry.ref("src/app", "v1")], archive, format="oci")
    destination = registry_factory(name="dst")

    with cut_proxy(destination.host, "up", 1_500_000, b"PATCH ") as proxy:
        result = imgmirror.push(archive, f"{proxy.host}/mirror/app:v1", options=FAST)

    assert proxy.cuts == 1
    assert [i.digest for i in result.images] == [digest]
    assert skopeo_inspect_raw(destination.ref("mirror/app", "v1"), destination) == image.manifest
