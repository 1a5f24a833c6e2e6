"""inspect's pure description: what it shows of manifests it can and cannot parse."""

from __future__ import annotations

import json

from imgmirror.model.inspection import describe, with_config

SCHEMA1 = json.dumps(
    {
        "schemaVersion": 1,
        "name": "library/old",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": "sha256:" + "b" * 64}, {"blobSum": "sha256:" + "a" * 64}],
        "history": [],
    }
).encode()


def test_schema1_shows_what_it_can_and_says_what_it_could_not() -> None:
    info = describe(
        "reg/old:1", SCHEMA1, "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
    assert info.media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    assert info.size == len(SCHEMA1)
    assert info.digest.startswith("sha256:")
    assert info.platform == "linux/amd64"
    assert [layer.digest for layer in info.layers] == ["sha256:" + "a" * 64, "sha256:" + "b" * 64]
    assert len(info.problems) == 1
    assert "schema 1" in info.problems[0]


def test_unknown_media_type_and_non_json() -> None:
    odd = json.dumps({"schemaVersion": 2, "mediaType": "application/x-thing"}).encode()
    info = describe("reg/x:1", odd)
    assert info.media_type == "application/x-thing"
    assert "application/x-thing" in info.problems[0]
    garbage = describe("reg/x:2", b"\x00not json", "application/octet-stream")
    assert garbage.media_type == "application/octet-stream"
    assert garbage.size == 9
    assert garbage.problems


def test_config_facts_and_a_bad_config() -> None:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "c" * 64,
                "size": 10,
            },
            "layers": [],
        }
    ).encode()
    info = describe("reg/x:1", manifest)
    config = json.dumps(
        {
            "os": "linux",
            "architecture": "arm",
            "variant": "v7",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Entrypoint": ["/pause"], "Cmd": None},
        }
    ).encode()
    full = with_config(info, config)
    assert (full.platform, full.created, full.entrypoint, full.cmd) == (
        "linux/arm/v7",
        "2024-01-01T00:00:00Z",
        ("/pause",),
        None,
    )
    assert full.to_json()["problems"] == []
    broken = with_config(info, b"{")
    assert "image config" in broken.problems[0]
