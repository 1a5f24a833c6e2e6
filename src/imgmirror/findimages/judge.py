"""Is this text an image? The rule that keeps find-images free of false positives.

A container's own ``image:`` (*direct*) is an image whenever it parses as a reference: the
kubelet will pull it. Anything else (*indirect*: an env value, a flag, a ConfigMap value, a
custom resource field) must parse as a reference **and** name a registry host (``quay.io/…``,
``localhost:5000/…``) or be a well-known Docker Hub image (``busybox:1.36``). What parses but
is not sure (``myorg/tool:1.2``, no registry) becomes a hint; URLs, paths, ``host:port``,
words and versions are dropped. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Literal

from imgmirror.errors import InvalidReference
from imgmirror.model.reference import Reference

__all__ = ["KNOWN_IMAGES", "Verdict", "judge", "judge_shaped", "registry_host"]

Verdict = Literal["image", "hint", "drop"]

#: Docker Hub official images common enough in manifests to be named without a registry.
KNOWN_IMAGES = frozenset(
    [
        "alpine",
        "busybox",
        "nginx",
        "redis",
        "postgres",
        "mysql",
        "mariadb",
        "memcached",
        "mongo",
        "ubuntu",
        "debian",
        "centos",
        "fedora",
        "rockylinux",
        "almalinux",
        "amazonlinux",
        "python",
        "node",
        "golang",
        "openjdk",
        "eclipse-temurin",
        "httpd",
        "traefik",
        "haproxy",
        "registry",
        "rabbitmq",
        "elasticsearch",
        "kibana",
        "logstash",
        "zookeeper",
        "cassandra",
        "influxdb",
        "telegraf",
        "consul",
        "vault",
        "caddy",
        "bash",
        "perl",
        "ruby",
        "php",
        "wordpress",
        "ghost",
        "nats",
    ]
)
_SPACE = re.compile(r"\s")
_BAD_START = ("/", ".", "-", "~", "$", "{", "<", "=", "'", '"')


def registry_host(text: str) -> str | None:
    """The registry host ``text`` starts with (``quay.io`` in ``quay.io/x``), if any."""
    first, sep, _ = text.partition("/")
    if sep and (first == "localhost" or "." in first or ":" in first or first.startswith("[")):
        return first
    return None


def _hub_name(ref: Reference) -> str:
    return ref.repository.removeprefix("library/")


def judge(text: str, *, direct: bool) -> tuple[Verdict, str]:
    """Whether ``text`` is an image, a hint (with why), or nothing worth saying."""
    value = text.strip()
    if not value:
        return "drop", "empty"
    try:
        ref = Reference.parse(value, default_tag=None)
    except InvalidReference as exc:
        if direct:
            return "hint", f"a container image that does not parse: {exc.message}"
        if "{{" in value or "${" in value:
            return "hint", "a template placeholder that was not rendered"
        shaped = "/" in value and ":" in value and "://" not in value
        if shaped and not _SPACE.search(value) and not value.startswith(_BAD_START):
            return "hint", f"looks like an image but does not parse: {exc.message}"
        return "drop", "not a reference"
    if direct:
        return "image", "container image"
    if value.startswith(_BAD_START) or value.startswith("docker://"):
        return "drop", "a path or option"
    if registry_host(value) is not None:
        return "image", "names a registry"
    if "/" not in value and ref.tag is not None and ref.tag.isdigit() and int(ref.tag) >= 80:
        return "drop", "host:port"  # redis:6379; postgres:16 and node:20 are tags
    if _hub_name(ref) in KNOWN_IMAGES and ("/" not in value or value.startswith("library/")):
        return "image", "a well-known Docker Hub image"
    if "/" in value or ref.tag is not None or ref.digest is not None:
        return "hint", "parses as an image but names no registry host; add it by hand if it is one"
    return "drop", "a plain word"


def judge_shaped(text: str) -> tuple[Verdict, str]:
    """The stricter rule for a value under a name that does not say image (an env value, a
    flag such as ``--prometheus-config-reloader=``): only ``host/path:tag`` or
    ``host/path@digest`` counts; a registry host without tag or digest is a hint."""
    verdict, reason = judge(text, direct=False)
    if verdict != "image" or registry_host(text.strip()) is None:
        return "drop", reason
    ref = Reference.parse(text.strip(), default_tag=None)
    if ref.tag is None and ref.digest is None:
        return "hint", "names a registry but no tag, under a name that does not say image"
    return "image", "a full image reference (registry, path, tag or digest)"
