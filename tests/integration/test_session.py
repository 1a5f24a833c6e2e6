"""One Session for many operations: connections, tokens and /v2/ checks shared across calls,
and the same parameters (platforms, credentials, jobs, timeout, progress) in every operation."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import imgmirror
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.progress import ProgressListener
from tests.support.images import Platform, make_image, oci_index_with_attestations
from tests.support.registry import Registry
from tests.support.seed import seed
from tests.support.tools import run_cli, skopeo_digest

pytestmark = [pytest.mark.registry]

PUSHER = ("pusher", "pushpass")


def pings(registry: Registry, since: int) -> int:
    return sum(1 for m, p, _ in registry.requests()[since:] if m == "GET" and p == "/v2/")


def tokens_issued(registry: Registry) -> int:
    assert registry.token_server is not None
    return sum(1 for r in registry.token_server.requests if r.status == 200)


def _three_copies(
    anon: Registry, token: Registry, copy: Callable[..., object], repo: str
) -> tuple[int, ...]:
    """Pings at each end and tokens issued for three copies into one repository."""
    src_before, dst_before = len(anon.requests()), len(token.requests())
    issued = tokens_issued(token)
    for n in range(3):
        copy(anon.ref(f"app{n}", "1"), token.ref(repo, str(n)), dest_creds=PUSHER)
    return (
        pings(anon, src_before),
        pings(token, dst_before),
        tokens_issued(token) - issued,
    )


@pytest.mark.skopeo
def test_three_copies_in_one_session_cost_one_ping_per_registry_and_reuse_tokens(
    anon_registry: Registry, token_registry: Registry
):
    images = [make_image(marker=f"session{n}") for n in range(3)]
    for n, image in enumerate(images):
        seed(anon_registry, f"app{n}", "1", image)

    one_shot = _three_copies(anon_registry, token_registry, imgmirror.copy, "one-shot/app")
    with imgmirror.Session(jobs=4, timeout=30) as session:
        shared = _three_copies(anon_registry, token_registry, session.copy, "mirror/app")

    # each one-shot copy pings both ends and fetches its tokens (pull, then push) again
    assert one_shot == (3, 3, 6)
    # in a session: one ping at each end, and the first copy's two tokens serve all three
    assert shared == (1, 1, 2)
    for n, image in enumerate(images):
        assert skopeo_digest(token_registry.ref("mirror/app", str(n)), token_registry) == (
            image.digest
        )


def test_save_push_and_sync_share_the_session_too(
    anon_registry: Registry, relative_registry: Registry, tmp_path: Path
):
    image = make_image(marker="session-all", platform="linux/arm64")
    seed(anon_registry, "app", "1", image)
    archive = tmp_path / "app.tar"
    spec = tmp_path / "sync.yaml"
    spec.write_text(f"images:\n  - image: {anon_registry.ref('app', '1')}\n")
    src_before, dst_before = len(anon_registry.requests()), len(relative_registry.requests())

    with imgmirror.Session() as session:
        saved = session.save([anon_registry.ref("app", "1")], archive, platforms="linux/arm64")
        pushed = session.push(archive, relative_registry.ref("pushed", "1"))
        synced = session.sync(spec, to=f"{relative_registry.host}/synced")

    # the source read by save and sync, the destination written by push and sync: one each
    assert pings(anon_registry, src_before) == 1
    assert pings(relative_registry, dst_before) == 1
    assert saved.images[0].platforms == ("linux/arm64",)
    assert isinstance(saved.images[0], imgmirror.SavedImage)
    pushed_to = relative_registry.ref("pushed", "1")
    assert pushed.images == (imgmirror.PushedImage(pushed_to, image.digest),)
    assert pushed.to_json()["images"] == [
        {"name": pushed_to, "digest": image.digest, "state": "pushed", "previous": None}
    ]
    assert [(r.action, r.digest) for r in synced.results] == [("copied", image.digest)]


class Recorder(ProgressListener):
    """Which verb each operation announced, and every blob outcome."""

    def __init__(self) -> None:
        self.verbs: list[str] = []
        self.outcomes: list[str] = []

    def planned(self, blobs: Sequence[Descriptor], verb: str) -> None:
        self.verbs.append(verb)

    def blob_finished(self, digest: Digest, outcome: str) -> None:
        self.outcomes.append(outcome)


def _run(op: str, via: Any, registry: Registry, tmp_path: Path, **common: Any) -> str:
    """Run ``op`` through ``via`` (the module or a Session); the digest it stored or saved."""
    src = registry.ref("multi", "1")
    if op == "copy":
        dst = registry.ref("copied", "1")
        return str(via.copy(src, dst, src_creds=PUSHER, dest_creds=PUSHER, **common).digest)
    if op == "save":
        saved = via.save([src], tmp_path / "one.tar", src_creds=PUSHER, **common)
        return str(saved.images[0].digest)
    if op == "push":
        whole = tmp_path / "whole.tar"
        imgmirror.save([src], whole, format="oci", src_creds=PUSHER)
        pushed = via.push(whole, registry.ref("pushed", "1"), dest_creds=PUSHER, **common)
        return str(pushed.images[0].digest)
    spec = tmp_path / "sync.yaml"
    spec.write_text(f"images:\n  - image: {src}\n    to: {registry.ref('synced', '1')}\n")
    report = via.sync(spec, src_creds=PUSHER, dest_creds=PUSHER, **common)
    assert report.failed == 0, report.results
    return str(report.results[0].digest)


@pytest.mark.parametrize("platforms", ["linux/arm64", ["linux/arm64"]])
@pytest.mark.parametrize("via", ["module", "session"])
@pytest.mark.parametrize("op", ["copy", "save", "push", "sync"])
def test_every_operation_takes_the_same_parameters(
    op: str, via: str, platforms: str | list[str], token_registry: Registry, tmp_path: Path
):
    index = oci_index_with_attestations(f"params-{op}")
    seed(token_registry, "multi", "1", index)
    arm = index.image_for("linux/arm64")
    progress = Recorder()
    common: dict[str, Any] = {
        "platforms": platforms,
        "jobs": 2,
        "timeout": 20.0,
        "progress": progress,
    }

    if via == "module":
        digest = _run(op, imgmirror, token_registry, tmp_path, **common)
    else:
        with imgmirror.Session(jobs=4) as session:
            digest = _run(op, session, token_registry, tmp_path, **common)

    assert digest == arm.digest
    verb = "copy" if op == "sync" else op
    assert progress.verbs == [verb]
    done = {"copy": "copied", "save": "saved", "push": "pushed"}[verb]
    assert progress.outcomes
    assert set(progress.outcomes) <= {done, "mounted"}  # within one registry, copy mounts


def test_save_platform_is_the_deprecated_spelling_of_platforms(
    anon_registry: Registry, tmp_path: Path
):
    index = oci_index_with_attestations("deprecated")
    seed(anon_registry, "multi", "1", index)

    with pytest.warns(DeprecationWarning, match="platforms="):
        old = imgmirror.save(
            [anon_registry.ref("multi", "1")], tmp_path / "a.tar", platform="linux/arm64"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = imgmirror.save(
            [anon_registry.ref("multi", "1")], tmp_path / "b.tar", platforms="linux/arm64"
        )

    assert old.images == new.images
    assert old.images[0].digest == index.image_for("linux/arm64").digest


def test_push_platforms_narrows_an_index_to_a_smaller_one(anon_registry: Registry, tmp_path: Path):
    platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    index = oci_index_with_attestations("narrow", [Platform.parse(p) for p in platforms])
    seed(anon_registry, "multi", "1", index)
    whole = tmp_path / "whole.tar"
    imgmirror.save([anon_registry.ref("multi", "1")], whole, format="oci")

    pushed = imgmirror.push(whole, anon_registry.ref("two", "1"), platforms=platforms[:2])
    copied = imgmirror.copy(
        anon_registry.ref("multi", "1"), anon_registry.ref("copied", "1"), platforms=platforms[:2]
    )

    by_cli = run_cli(
        "push", str(whole), anon_registry.ref("cli", "1"), "--json",
        "--platform", platforms[0], "--platform", platforms[1],
    )  # fmt: skip

    assert pushed.images[0].digest == copied.digest  # the same smaller index as copy makes
    assert pushed.images[0].digest != index.digest
    assert by_cli.returncode == 0, by_cli.stderr
    assert json.loads(by_cli.stdout.splitlines()[-1])["images"] == [
        {"name": anon_registry.ref("cli", "1"), "digest": copied.digest, "state": "pushed",
         "previous": None}
    ]  # fmt: skip
    with pytest.raises(imgmirror.PlatformNotFound):
        imgmirror.push(whole, anon_registry.ref("none", "1"), platforms="linux/s390x")
