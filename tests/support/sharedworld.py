"""Images that share blobs, as a mirror meets them: several repositories on common bases.

:func:`seed_shared_world` pushes, into a real registry, repositories whose images stand on
the same base layers (``app0``..``app3``), tags that alias one another (``latest``, ``1``,
``1.2`` name the digest of ``1.2.0``), a repository of multi-platform indexes whose aliases
share every child and whose arm64 child has a tag of its own (``multi``), and cosign
tag-style signatures of some of them. The
:class:`SharedWorld` it returns writes a sync file over all of it (``all-tags``, ``semver``,
``tags-regex``, ``tags`` entries, and a second destination repository for the same images, so
blobs are mounted between destination repositories) and knows which digest each destination
tag must end with, for the sync race stress test (tests/integration/test_blob_race.py) and
the fault soak (tests/integration/test_soak.py).

Layer bytes are random (incompressible) and drawn from ``random.Random(seed)``: the same seed
gives the same world. ``big`` adds, to ``app0``, one layer larger than imgmirror's
single-request upload limit, so it is sent in chunks (and resumed under faults).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from .images import Image, Index, Layer, make_image, make_index, make_layer
from .registry import Registry
from .seed import RegistryClient
from .signing import cosign_signature, new_key

__all__ = ["SELECTED", "SharedWorld", "seed_shared_world", "single_image_tags"]

#: Versions of every ``app`` repository, and the aliases that name an existing version.
VERSIONS = ("0.9.0", "1.0.0", "1.1.0", "1.2.0", "2.0.0")
ALIASES = {"1": "1.2.0", "1.2": "1.2.0", "latest": "2.0.0", "stable": "1.2.0"}
MULTI_VERSIONS = ("1.0", "1.1")
MULTI_ALIASES = {"latest": "1.1", "1": "1.1", "stable": "1.1"}

#: The tags each entry of :meth:`SharedWorld.sync_file` selects, by source repository.
SELECTED = {
    "app0": set(VERSIONS) | set(ALIASES),  # all-tags (and signature tags)
    "app1": {"1.0.0", "1.1.0", "1.2.0", "1", "1.2"},  # semver: >=1.0 <2 ("1", "1.2" loose)
    "app2": {"1.0.0", "1.1.0", "1.2.0", "1", "1.2", "latest"},  # tags-regex: ^(1|latest)
    "app3": {"1.2.0", "stable", "latest"},  # tags
    "multi": set(MULTI_VERSIONS) | set(MULTI_ALIASES),  # all-tags
}
#: The entries that take every tag (their signature tags too).
ALL_TAGS = ("app0", "multi")
#: The repository whose tags a second destination repository also receives.
AGAIN = "app0"


@dataclass
class SharedWorld:
    """What :func:`seed_shared_world` pushed: ``tags[repo][tag]`` is the source digest."""

    source: Registry
    repo_prefix: str
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    signatures: dict[str, str] = field(default_factory=dict)
    """Image digest -> its cosign signature tag (``sha256-<hex>.sig``) in the same repository."""
    big_layer: int = 0

    def source_repo(self, name: str) -> str:
        return f"{self.repo_prefix}/{name}"

    def sync_file(
        self, path: Path, dest: str, *, referrers: bool = False, source_host: str | None = None
    ) -> dict[str, str]:
        """Write a sync file mirroring the world under ``dest`` (``host/prefix``), read from
        ``source_host`` (a proxy in front of the source; default: the source itself);
        returns ``{"repo:tag" at the destination: the digest it must hold}``."""
        src = source_host or self.source.host
        lines = [f"defaults:\n  to: {dest}/\n"]
        if referrers:
            lines.append("  referrers: sig\n")
        lines.append("images:\n")
        lines.append(f"  - repository: {src}/{self.source_repo('app0')}\n    all-tags: true\n")
        lines.append(f"  - repository: {src}/{self.source_repo('app1')}\n    semver: '>=1.0 <2'\n")
        lines.append(
            f"  - repository: {src}/{self.source_repo('app2')}\n    tags-regex: '^(1|latest)'\n"
        )
        tags = ", ".join(sorted(SELECTED["app3"]))
        lines.append(f"  - repository: {src}/{self.source_repo('app3')}\n    tags: [{tags}]\n")
        lines.append(f"  - repository: {src}/{self.source_repo('multi')}\n    all-tags: true\n")
        lines.append(
            f"  - repository: {src}/{self.source_repo(AGAIN)}\n    all-tags: true\n"
            f"    to: {dest}/again/{AGAIN}\n"
        )
        path.write_text("".join(lines))
        dest_path = dest.split("/", 1)[1]
        expected: dict[str, str] = {}
        for name in SELECTED:
            for tag in self.selected(name, referrers=referrers):
                expected[f"{dest_path}/{self.source_repo(name)}:{tag}"] = self.tags[name][tag]
        for tag in self.selected(AGAIN, referrers=referrers):
            expected[f"{dest_path}/again/{AGAIN}:{tag}"] = self.tags[AGAIN][tag]
        return expected

    def selected(self, name: str, *, referrers: bool = False) -> set[str]:
        """The tags of repository ``name`` its entry selects (``all-tags`` takes the
        signature tags too), plus with ``referrers`` the signature tags of those images."""
        tags = self.tags[name]
        chosen = set(tags) if name in ALL_TAGS else set(SELECTED[name])
        if referrers:
            chosen |= {self.signatures[tags[t]] for t in chosen if tags[t] in self.signatures}
        return chosen


def _layer(rng: random.Random, name: str, size: int) -> Layer:
    return make_layer({f"data/{name}.bin": rng.randbytes(size)})


def _app_image(bases: list[Layer], own: Layer, version: Layer, marker: str) -> Image:
    return make_image([*bases, own, version], marker=marker)


def seed_shared_world(
    registry: Registry,
    *,
    seed: int = 17,
    size: int = 8 * 1024,
    big: int = 0,
    signed: bool = False,
    repo_prefix: str = "src",
    creds: tuple[str, str] | None = None,
) -> SharedWorld:
    """Push the world into ``registry`` (see the module docstring); layers of ``size`` bytes,
    plus one of ``big`` bytes in ``app0`` when ``big``; ``signed`` signs ``2.0.0`` and
    ``1.2.0`` of ``app0`` and ``app1`` with cosign tag-style signatures."""
    rng = random.Random(seed)  # noqa: S311 - test data
    world = SharedWorld(registry, repo_prefix, big_layer=big)
    base = _layer(rng, "base", size * 2)
    runtime = _layer(rng, "runtime", size)
    key = new_key() if signed else None
    with RegistryClient(registry, creds) as client:
        for i, name in enumerate(("app0", "app1", "app2", "app3")):
            repo = world.source_repo(name)
            bases = [base, runtime] if i % 2 == 0 else [base]
            own = _layer(rng, f"{name}-own", size)
            if big and name == "app0":
                bases = [*bases, _layer(rng, "big", big)]
            tags = world.tags.setdefault(name, {})
            for version in VERSIONS:
                image = _app_image(bases, own, _layer(rng, f"{name}-{version}", size // 2), name)
                tags[version] = client.push_image(repo, image, version)
                if key is not None and name in ("app0", "app1") and version in ("1.2.0", "2.0.0"):
                    tag, signature = _sign(client, repo, image.digest, key)
                    tags[tag], world.signatures[image.digest] = signature, tag
            for alias, target in ALIASES.items():
                _alias(client, repo, alias, tags, target)
        _seed_multi(client, world, rng, base, size)
    return world


def _sign(
    client: RegistryClient, repo: str, digest: str, key: ec.EllipticCurvePrivateKey
) -> tuple[str, str]:
    """Push a cosign tag-style signature of ``digest``: (its tag, its digest)."""
    sig = cosign_signature(digest, f"example.invalid/{repo}", key)
    tag = digest.replace(":", "-") + ".sig"
    return tag, client.push_image(repo, sig, tag)


def _alias(
    client: RegistryClient,
    repo: str,
    alias: str,
    tags: dict[str, str],
    target: str,
) -> None:
    raw, media_type = client.get_manifest(repo, tags[target])
    client.push_manifest(repo, alias, raw, media_type)
    tags[alias] = tags[target]


def _seed_multi(
    client: RegistryClient, world: SharedWorld, rng: random.Random, base: Layer, size: int
) -> None:
    repo = world.source_repo("multi")
    tags = world.tags.setdefault("multi", {})
    arm_base = _layer(rng, "arm-base", size)
    for version in MULTI_VERSIONS:
        children = [
            make_image([base, _layer(rng, f"multi-{version}-amd64", size)], marker=version),
            make_image(
                [arm_base, _layer(rng, f"multi-{version}-arm64", size)],
                platform="linux/arm64",
                marker=version,
            ),
        ]
        index: Index = make_index(children)
        tags[version] = client.push_index(repo, index, version)
        # a platform's own tag: the PUT of a child while the index listing it goes in
        arm = children[1]
        tags[f"{version}-arm64"] = client.push_manifest(
            repo, f"{version}-arm64", arm.manifest, arm.media_type
        )
    for alias, target in MULTI_ALIASES.items():
        _alias(client, repo, alias, tags, target)


def single_image_tags(
    registry: Registry, repo: str, count: int, *, seed: int = 29, size: int = 4 * 1024
) -> str:
    """One multi-platform index under ``count`` tags (``t0``..): a cold mirror of these sends
    every child manifest once per tag. Returns the index digest."""
    rng = random.Random(seed)  # noqa: S311 - test data
    children = [
        make_image([_layer(rng, "one-amd64", size)], marker="one"),
        make_image([_layer(rng, "one-arm64", size)], platform="linux/arm64", marker="one"),
    ]
    index = make_index(children)
    with RegistryClient(registry) as client:
        digest = client.push_index(repo, index, "t0")
        for n in range(1, count):
            client.push_manifest(repo, f"t{n}", index.manifest, index.media_type)
    return digest
