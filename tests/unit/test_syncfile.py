"""The sync file and plain image list: every key, and bad input refused with file and line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from imgmirror.errors import InvalidSyncFile
from imgmirror.model.artifacts import ArtifactFilter, ReferrerChoice
from imgmirror.model.platform import Platform
from imgmirror.model.reference import Reference
from imgmirror.syncing.file import parse_image_list, parse_sync_file

ISSUE_EXAMPLE = """\
defaults:
  to: artifactrepo1.corp.net/mirror      # destination prefix
  keep-registry: false
  platforms: [linux/amd64, linux/arm64]
images:
  - registry.k8s.io/pause:3.9
  - image: registry.k8s.io/coredns/coredns:v1.11.1
    to: artifactrepo1.corp.net/k8s/coredns:v1.11.1
  - repository: registry.k8s.io/kube-apiserver
    tags-regex: '^v1\\.3[01]\\.'
    exclude-regex: '-(rc|alpha|beta)'
  - repository: docker.io/library/alpine
    semver: '>=3.18 <3.21'
    newest: 3
  - repository: quay.io/prometheus/node-exporter
    all-tags: true
  - repository: registry.k8s.io/etcd
    tags: [3.5.12-0, 3.5.15-0]
"""


def parse(text: str, **kwargs: Any) -> object:
    return parse_sync_file(textwrap.dedent(text), "sync.yaml", **kwargs)


def test_the_example_of_the_issue():
    spec = parse_sync_file(ISSUE_EXAMPLE, "sync.yaml")
    pause, coredns, apiserver, alpine, exporter, etcd = spec.entries
    both = (Platform.parse("linux/amd64"), Platform.parse("linux/arm64"))
    assert pause.selector is None
    assert pause.platforms == both
    assert pause.origin == "sync.yaml:6"
    assert str(pause.destination(pause.source)) == "artifactrepo1.corp.net/mirror/pause:3.9"
    assert str(coredns.destination(coredns.source)) == (
        "artifactrepo1.corp.net/k8s/coredns:v1.11.1"
    )
    assert apiserver.selector is not None
    assert apiserver.selector.tags_regex is not None
    assert apiserver.source == Reference("registry.k8s.io", "kube-apiserver")
    assert alpine.selector is not None
    assert alpine.selector.newest == 3
    assert str(alpine.selector.semver) == ">=3.18 <3.21"
    assert exporter.selector is not None
    assert exporter.selector.all_tags
    assert etcd.selector is not None
    assert etcd.selector.tags == ("3.5.12-0", "3.5.15-0")
    tagged = etcd.source.with_tag("3.5.12-0")
    assert str(etcd.destination(tagged)) == "artifactrepo1.corp.net/mirror/etcd:3.5.12-0"
    assert len({e.key for e in spec.entries}) == 6


def test_entry_options_override_defaults_and_to_option_replaces_defaults_to():
    spec = parse(
        """\
        defaults: {to: reg.corp/a, keep-registry: true, authfile: auth.json}
        images:
          - image: quay.io/x/y:1
            keep-registry: false
            platforms: [linux/arm64]
          - image: quay.io/x/z:2
            to: reg.corp/b/
          - repository: quay.io/x/w
            tags: ['1']
            to: reg.corp/c/w
          - image: quay.io/x/v:3
            to: reg.corp/d/v
        """,
        to="other.corp/m/",
    )
    y, z, w, v = spec.entries  # type: ignore[attr-defined]
    assert spec.authfile == "auth.json"  # type: ignore[attr-defined]
    assert str(y.destination(y.source)) == "other.corp/m/x/y:1"
    assert y.platforms == (Platform.parse("linux/arm64"),)
    assert str(z.destination(z.source)) == "reg.corp/b/quay.io/x/z:2"
    assert str(w.destination(w.source.with_tag("1"))) == "reg.corp/c/w:1"
    assert str(v.destination(v.source)) == "reg.corp/d/v:3"  # a bare repository keeps the tag


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("images: [a\n", "sync.yaml:2: YAML syntax error"),
        ("images:\n  - image: a:1\n    tag: x\n", "sync.yaml:3: unknown key 'tag' in an images"),
        ("defaults:\n  to: r.io/m\n  prefix: x\nimages: [a]\n",
         "sync.yaml:3: unknown key 'prefix'"),
        ("default: {}\nimages: [a]\n", "sync.yaml:1: unknown key 'default' in the top level"),
        ("defaults: {to: r.io}\nimages:\n  - a/B:1\n", "sync.yaml:3: invalid image reference"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a\n    tags-regex: '('\n",
         "sync.yaml:4: tags-regex '(' is not a valid regex"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a\n    semver: '>=abc'\n",
         "sync.yaml:4: semver range"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a\n    newest: 0\n"
         "    all-tags: true\n",
         "sync.yaml:4: newest must be a whole number"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a\n    all-tags: yes please\n",
         "sync.yaml:4: all-tags must be true or false"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a\n",
         "sync.yaml:3: a repository entry needs tags"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a:1\n    all-tags: true\n",
         "sync.yaml:3: repository 'q.io/a:1' must not carry a tag"),
        ("defaults: {to: r.io}\nimages:\n  - image: q.io/a:1\n    newest: 2\n",
         "sync.yaml:4: newest applies to repository"),
        ("defaults: {to: r.io}\nimages:\n  - image: q.io/a:1\n    repository: q.io/b\n",
         "sync.yaml:3: an entry needs exactly one of image: or repository:"),
        ("images:\n  - q.io/a:1\n", "sync.yaml:2: no destination"),
        ("defaults: {to: mirror}\nimages: [a]\n", "sync.yaml:1: destination prefix 'mirror'"),
        ("defaults: {to: r.io, platforms: [linux]}\nimages: [a]\n", "sync.yaml:1: "),
        ("defaults: {to: r.io}\nimages: []\n", "sync.yaml:2: images: must be a non-empty list"),
        ("defaults: {to: r.io}\n", "sync.yaml:1: the file needs an images: list"),
        ("", "sync.yaml: the file is empty"),
        ("defaults: {to: r.io}\nimages:\n  - repository: q.io/a\n    tags: ['-x']\n",
         "sync.yaml:4: '-x' is not a valid tag"),
        ("images: [a]\nimages: [b]\n", "sync.yaml:2: duplicate key 'images'"),
        ("defaults: {to: r.io}\nimages:\n  - image: q.io/a:1\n    referrers: [sig, sigs]\n",
         "sync.yaml:4: referrers: unknown artifact type 'sigs'; use true, false, sig, att"),
        ("defaults: {to: r.io, referrers: signatures}\nimages: [a]\n",
         "sync.yaml:1: referrers: unknown artifact type 'signatures'"),
        ("defaults: {to: r.io}\nimages:\n  - image: q.io/a:1\n    referrers: {sig: 1}\n",
         "sync.yaml:4: referrers must be a single value"),
        ("defaults: {to: r.io}\nimages:\n  - image: q.io/a:1\n    referrers-optional: maybe\n",
         "sync.yaml:4: referrers-optional must be true or false"),
        ("defaults: {to: r.io}\nimages:\n  - image: q.io/a:1\n    to: r.io/x:1@sha256:00\n",
         "sync.yaml:4: "),
    ],
)  # fmt: skip
def test_bad_files_name_file_and_line(text, message):
    with pytest.raises(InvalidSyncFile) as caught:
        parse_sync_file(text, "sync.yaml")
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_plain_list_like_kubeadm_prints():
    text = (
        "# kubeadm config images list\nregistry.k8s.io/pause:3.9\n\n"
        "  registry.k8s.io/etcd:3.5.15-0  # etcd\n"
    )
    spec = parse_image_list(text, "images.txt", to="reg.corp/k8s")
    assert [str(e.destination(e.source)) for e in spec.entries] == [
        "reg.corp/k8s/pause:3.9",
        "reg.corp/k8s/etcd:3.5.15-0",
    ]
    assert [e.origin for e in spec.entries] == ["images.txt:2", "images.txt:4"]


def test_plain_list_bad_input():
    with pytest.raises(InvalidSyncFile, match=r"^images.txt:2: invalid image reference"):
        parse_image_list("a:1\na/B\n", "images.txt", to="r.io")
    with pytest.raises(InvalidSyncFile, match="names no image"):
        parse_image_list("# nothing\n\n", "images.txt", to="r.io")
    with pytest.raises(InvalidSyncFile, match="does not start with a registry host"):
        parse_image_list("a\n", "images.txt", to="nohost")


def test_referrers_key_per_entry_in_defaults_and_from_the_option():
    text = """\
        defaults: {to: reg.corp/m, referrers: sig}
        images:
          - q.io/a:1
          - image: q.io/b:1
            referrers: [sbom, application/vnd.in-toto+json]
          - image: q.io/c:1
            referrers: false
          - image: q.io/d:1
            referrers: all
            referrers-optional: true
          - image: q.io/e:1
            referrers: true
        """
    a, b, c, d, e = parse(text).entries  # type: ignore[attr-defined]
    assert a.referrers == ReferrerChoice(ArtifactFilter(("sig",)), optional=False)
    assert b.referrers == ReferrerChoice(ArtifactFilter(("sbom", "application/vnd.in-toto+json")))
    assert c.referrers is None
    assert d.referrers == ReferrerChoice(ArtifactFilter(), optional=True)
    assert e.referrers == ReferrerChoice(ArtifactFilter())
    # --referrers-optional alone replaces the defaults (every referrer, best effort);
    # the entries' own keys still win
    everything = ReferrerChoice(ArtifactFilter(), optional=True)
    a, b, c, d, e = parse(text, referrers=everything).entries  # type: ignore[attr-defined]
    assert a.referrers == everything
    assert b.referrers is not None
    assert b.referrers.optional
    assert c.referrers is None
    plain = parse("defaults: {to: r.io}\nimages: [q.io/a:1]\n").entries[0]  # type: ignore[attr-defined]
    assert plain.referrers is None
    attestations = ReferrerChoice(ArtifactFilter(("att",)))
    listed = parse_image_list("q.io/a:1\n", "l.txt", to="r.io", referrers=attestations)
    assert listed.entries[0].referrers == attestations


@pytest.mark.timeout(20)
@pytest.mark.parametrize("key", ["tags-regex", "exclude-regex"])
def test_a_catastrophic_regex_runs_in_linear_time(key):
    """``^(\\d+\\.?)+$`` backtracks exponentially in Python's re on 32 digits and a letter;
    the filters run on RE2 (linear time), so selection ends at once."""
    from imgmirror.syncing.tagselect import NoTagsSelected, select_tags

    selector_line = (
        "tags-regex: '^(\\d+\\.?)+$'"
        if key == "tags-regex"
        else ("all-tags: true\n    exclude-regex: '^(\\d+\\.?)+$'")
    )
    entry = f"  - repository: quay.io/x/y\n    {selector_line}\n"
    spec = parse_sync_file(f"defaults: {{to: reg.corp/m}}\nimages:\n{entry}", "sync.yaml")
    selector = spec.entries[0].selector
    assert selector is not None
    hostile = "1" * 31 + "a"
    if key == "tags-regex":
        with pytest.raises(NoTagsSelected):
            select_tags(selector, [hostile] * 50)
        assert select_tags(selector, ["1.2.3", hostile]) == ["1.2.3"]
    else:
        assert select_tags(selector, [hostile, "1.2.3"]) == [hostile]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(?=v)1", "invalid perl operator"),
        ("(a)\\\\1", "invalid escape sequence"),
        ("(?<!-rc)$", "invalid perl operator"),
        ("[", "missing ]"),
    ],
)
def test_a_regex_re2_cannot_run_is_refused_with_file_and_line(pattern, problem):
    text = f"""\
defaults: {{to: reg.corp/m}}
images:
  - repository: quay.io/x/y
    tags-regex: "{pattern}"
"""
    with pytest.raises(InvalidSyncFile) as caught:
        parse_sync_file(text, "sync.yaml")
    message = str(caught.value)
    assert message.startswith("sync.yaml:4: tags-regex")
    assert problem in message
    assert "RE2" in message
