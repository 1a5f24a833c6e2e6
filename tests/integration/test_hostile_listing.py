"""A hostile source registry's listings against a real destination registry.

The source lists tags that would climb out of the mirror prefix
(``../../../../victim/manifests/latest``), non-strings, a 5000-digit version, a 100 KB tag,
bodies that are not lists. Nothing is written outside the mirror prefix, the victim's tag is
untouched (checked with skopeo), every other entry runs, and each bad name is reported in one
line without a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.hostile import hostile_registry, tag_list
from tests.support.images import OCI_CONFIG, OCI_INDEX, Blob, Image, image_from_parts, make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import RegistryClient as Seeder
from tests.support.terminal import run_on_terminal
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry, pytest.mark.skopeo]

PUSHER = ("pusher", "pushpass")
TRAVERSAL = "../../../../victim/manifests/latest"


@pytest.fixture
def dst(registry_factory: RegistryFactory) -> Registry:
    """The mirror: token auth, and an account that may push anywhere (as basic auth often is)."""
    return registry_factory(auth="token", name="dst", anonymous_pull=False)


def victim_and_bait(dst: Registry) -> tuple[str, Image]:
    """``victim:latest`` at the destination, and a source image sharing all its blobs (so a
    manifest PUT into ``victim`` would be accepted) under another digest."""
    victim = make_image(marker="victim", fmt="oci")
    with Seeder(dst, PUSHER) as client:
        client.push_image("victim", victim)
        client.push_manifest("victim", "latest", victim.manifest, victim.media_type)
    bait = image_from_parts(
        victim.config, victim.layers, fmt="oci", manifest_annotations={"org.example.bait": "1"}
    )
    assert bait.digest != victim.digest
    return victim.digest, bait


def run_sync(tmp_path: Path, text: str) -> tuple[int, list[dict[str, object]], str]:
    path = tmp_path / "sync.yaml"
    path.write_text(text)
    done = run_cli("sync", str(path), "--dest-creds", "pusher:pushpass", "--json")
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


@pytest.mark.parametrize(
    "selector",
    ["all-tags: true", "tags-regex: 'latest|1'", "all-tags: true\n    newest: 5"],
)
def test_a_listed_traversal_tag_never_leaves_the_mirror_prefix(dst, tmp_path, selector):
    victim_digest, bait = victim_and_bait(dst)
    # /v2/mirror/team/app/manifests/ + TRAVERSAL is /v2/victim/manifests/latest
    listings = {"/v2/team/app/tags/list": tag_list("team/app", ["1.0", TRAVERSAL])}
    with hostile_registry(bait, listings) as source:
        status, lines, stderr = run_sync(
            tmp_path,
            f"""\
defaults: {{to: {dst.host}/mirror}}
images:
  - repository: {source.host}/team/app
    {selector}
""",
        )

    assert skopeo_digest(f"{dst.host}/victim:latest", dst, creds=PUSHER) == victim_digest
    assert skopeo_digest(f"{dst.host}/mirror/team/app:1.0", dst, creds=PUSHER) == bait.digest
    with Seeder(dst, PUSHER) as client:
        assert client.tags("victim") == ["latest"]
        assert client.tags("mirror/team/app") == ["1.0"]
    assert status == 1
    *results, _summary = lines
    failed = [r for r in results if r["action"] == "failed"]
    assert len(failed) == 1
    assert TRAVERSAL in str(failed[0]["error"])
    assert "not a valid tag" in str(failed[0]["error"])
    assert [r["destination"] for r in results if r["action"] == "copied"] == [
        f"{dst.host}/mirror/team/app:1.0"
    ]
    assert "Traceback" not in stderr


def test_hostile_tags_fail_only_their_entry_the_others_run(dst, tmp_path):
    image = make_image(marker="hostile")
    listings = {
        "/v2/app/tags/list": tag_list(
            "app", ["1.0", "9" * 5000, 12345, None, {"a": 1}, "x" * 100_000, "2.0"]
        ),
        "/v2/semver/tags/list": tag_list("semver", ["1.2.3", "1" * 5000, "1.2.4"]),
        "/v2/notalist/tags/list": b'{"name": "notalist", "tags": "1.0"}',
        "/v2/array/tags/list": b'["1.0"]',
        "/v2/good/tags/list": tag_list("good", ["3"]),
    }
    with hostile_registry(image, listings) as source:
        s = source.host
        status, lines, stderr = run_sync(
            tmp_path,
            f"""\
defaults: {{to: {dst.host}/m}}
images:
  - repository: {s}/app
    all-tags: true
  - repository: {s}/semver
    semver: '>=1.2'
  - repository: {s}/notalist
    all-tags: true
  - repository: {s}/array
    all-tags: true
  - repository: {s}/good
    all-tags: true
""",
        )

    assert status == 1
    assert "Traceback" not in stderr
    *results, summary = lines
    # one image under every tag: a tag may find it there already (copied or unchanged)
    mirrored = {r["destination"] for r in results if r["action"] in ("copied", "unchanged")}
    assert mirrored == {
        f"{dst.host}/m/app:1.0",
        f"{dst.host}/m/app:2.0",
        f"{dst.host}/m/semver:1.2.3",
        f"{dst.host}/m/semver:1.2.4",
        f"{dst.host}/m/good:3",
    }
    failed = {str(r["source"]): str(r["error"]) for r in results if r["action"] == "failed"}
    assert set(failed) == {f"{s}/app", f"{s}/semver", f"{s}/notalist", f"{s}/array"}
    assert "5 names that are not valid tags" in failed[f"{s}/app"]
    assert "1 name that is not a valid tag" in failed[f"{s}/semver"]
    assert "not a list" in failed[f"{s}/notalist"]
    assert "not a JSON object" in failed[f"{s}/array"]
    for error in failed.values():
        assert "\n" not in error
        assert len(error) < 1000  # the 100 KB tag is shown shortened
    errors = [line for line in stderr.splitlines() if line.startswith("imgmirror: error:")]
    assert len(errors) == 4
    assert summary["failed"] == 4
    assert skopeo_digest(f"{dst.host}/m/good:3", dst, creds=PUSHER) == image.digest


def test_save_from_a_file_refuses_a_listed_traversal_tag(tmp_path):
    image = make_image(marker="save")
    listings = {"/v2/app/tags/list": tag_list("app", ["1.0", TRAVERSAL])}
    out = tmp_path / "images.tar"
    with hostile_registry(image, listings) as source:
        path = tmp_path / "sync.yaml"
        path.write_text(f"images:\n  - repository: {source.host}/app\n    all-tags: true\n")
        done = run_cli("save", "-f", str(path), "-o", str(out))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("imgmirror: error:")]
    assert TRAVERSAL in line
    assert "not a valid tag" in line
    assert not out.exists()
    assert not any("victim" in p for p in source.paths)


def test_ls_and_catalog_show_only_valid_names_and_say_what_they_left_out():
    image = make_image(marker="ls")
    listings = {
        "/v2/app/tags/list": tag_list("app", ["1.0", TRAVERSAL, "bad\x1b[31mred", 7]),
        "/v2/_catalog": json.dumps(
            {"repositories": ["app", "../../etc", "UPPER/case", "ok/nested", "\x1b]0;title\x07"]}
        ).encode(),
    }
    with hostile_registry(image, listings) as source:
        tags = run_cli("ls", f"{source.host}/app")
        repos = run_cli("catalog", source.host)
        as_json = run_cli("ls", f"{source.host}/app", "--json")

    assert tags.returncode == 0, tags.stderr
    assert tags.stdout.splitlines() == ["1.0"]
    assert "3 names that are not valid tags" in tags.stderr
    assert "\x1b" not in tags.stderr
    assert "\\x1b[31mred" in tags.stderr
    assert "Traceback" not in tags.stderr
    assert repos.returncode == 0, repos.stderr
    assert repos.stdout.splitlines() == ["app", "ok/nested"]
    assert "3 names that are not valid repository names" in repos.stderr
    assert "\x1b" not in repos.stderr
    assert "\x07" not in repos.stderr
    assert json.loads(as_json.stdout.splitlines()[-1])["tags"] == ["1.0"]


CONTROLS = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def escaping_world() -> tuple[Image, Image, dict[str, bytes]]:
    """An image whose config, annotations and referrer carry terminal escape sequences."""
    config = Blob(
        json.dumps(
            {
                "os": "linux\x1b]0;pwned\x07",
                "architecture": "amd64\r\x1b[2K",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode(),
        OCI_CONFIG,
    )
    image = image_from_parts(
        config, [], fmt="oci", manifest_annotations={"note": "\x1b[2Jcleared\u202e"}
    )
    sig_config = Blob(b"{}", "application/vnd.oci.empty.v1+json")
    referrer = image_from_parts(
        sig_config,
        [],
        fmt="oci",
        artifact_type="application/vnd.evil\x1b[31m+json",
        subject=image.descriptor(with_platform=False),
        manifest_annotations={"org.opencontainers.image.title": "sig\x07\r\x9bx"},
    )
    entry = {
        **referrer.descriptor(with_platform=False),
        "artifactType": "application/vnd.evil\x1b[31m+json",
        "annotations": {"org.opencontainers.image.title": "sig\x07\r\x9bx"},
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    listings = {f"/v2/app/referrers/{image.digest}": json.dumps(index).encode()}
    return image, referrer, listings


def test_escape_sequences_from_a_registry_are_printed_escaped():
    # on a pseudo-terminal: click strips some escape sequences only when stdout is no tty
    image, referrer, listings = escaping_world()
    listings["/v2/app/tags/list"] = tag_list("app", ["1", "\x1b]0;title\x07"])
    with hostile_registry(image, listings, [referrer]) as source:
        ref = f"{source.host}/app:1"
        runs = {
            "referrers": run_on_terminal("referrers", ref, stdout=True),
            "inspect": run_on_terminal("inspect", ref, stdout=True),
            "inspect --referrers": run_on_terminal("inspect", ref, "--referrers", stdout=True),
            "ls": run_on_terminal("ls", f"{source.host}/app", stdout=True),
        }

    for what, (status, output) in runs.items():
        assert status == 0, (what, output)
        for control in CONTROLS:
            assert control not in output, (what, repr(control), output)
    assert "application/vnd.evil\\x1b[31m+json" in runs["referrers"][1]
    assert "sig\\x07\\r\\x9bx" in runs["referrers"][1]
    assert "linux\\x1b]0;pwned\\x07/amd64\\r\\x1b[2K" in runs["inspect"][1]
    assert "application/vnd.evil\\x1b[31m+json" in runs["inspect --referrers"][1]
    assert "'\\x1b]0;title\\x07' is not a valid tag" in runs["ls"][1]
