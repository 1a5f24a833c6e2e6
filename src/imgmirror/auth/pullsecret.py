"""Kubernetes image pull secrets as values: read, create and check them.

[parse_authfile][] accepts anything ``--authfile`` may point at (docker ``config.json``,
podman ``auth.json``, legacy ``.dockercfg``, or a Kubernetes Secret in YAML or JSON with
``data`` or ``stringData``). [create_secret][] builds the ``kubernetes.io/dockerconfigjson``
Secret that ``kubectl create secret docker-registry`` builds. [check_secret][] lists each
thing that would stop the kubelet from using a Secret, with its fix.

This module does no I/O; messages never contain a password or an ``auth`` value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from imgmirror.auth.credentials import Credential
from imgmirror.auth.dockerconfig import (
    DockerConfig,
    config_from_json,
    decode_auth,
    encode_auth,
    find_key,
    is_config_json,
    key_host,
)
from imgmirror.errors import CredentialsError, ImgmirrorError
from imgmirror.model.documents import DocumentLimit, load_json, load_yaml_all
from imgmirror.model.reference import Reference

__all__ = [
    "DOCKERCFG",
    "DOCKERCONFIGJSON",
    "Problem",
    "check_name",
    "check_registry",
    "check_secret",
    "check_text",
    "create_secret",
    "parse_authfile",
    "parse_documents",
    "render",
]

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
#: Secret type → the data key the kubelet reads.
DATA_KEYS = {DOCKERCONFIGJSON: ".dockerconfigjson", DOCKERCFG: ".dockercfg"}
_RECREATE = "recreate it with imgmirror secret create or kubectl create secret docker-registry"


@attrs.frozen
class Problem:
    """One reason the kubelet would not use a Secret (or not for the wanted registry)."""

    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}: {self.fix}"


def parse_documents(text: str | bytes, source: str) -> list[Any]:
    """Every YAML/JSON document in ``text``; a ``kind: List`` contributes its items.

    Raises:
        CredentialsError: If ``text`` is neither JSON nor YAML.
    """
    import yaml  # noqa: PLC0415 - PyYAML loads only when a file is actually read

    try:
        docs = [doc for doc in load_yaml_all(text) if doc is not None]
    except DocumentLimit as exc:
        where = f" (line {exc.line})" if exc.line is not None else ""
        raise CredentialsError(f"{source}{where}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise CredentialsError(f"{source} is neither JSON nor YAML{where}") from None
    found: list[Any] = []
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == "List":
            found.extend(doc.get("items") or [])
        else:
            found.append(doc)
    return found


def is_secret(doc: object) -> bool:
    """Whether a document looks like a Kubernetes Secret."""
    if not isinstance(doc, Mapping):
        return False
    if doc.get("kind") == "Secret":
        return True
    return "kind" not in doc and "type" in doc and ("data" in doc or "stringData" in doc)


def _payload(doc: Mapping[str, Any], key: str) -> tuple[str, bytes | str] | None:
    """``("data"|"stringData", value)`` for ``key``, stringData winning as the API server does."""
    for section in ("stringData", "data"):
        values = doc.get(section)
        if isinstance(values, Mapping) and key in values:
            return section, values[key]
    return None


def _decode_payload(section: str, value: object, key: str, name: str) -> tuple[Any, Problem | None]:
    """The decoded JSON document held at ``section[key]``, or a problem."""
    if not isinstance(value, str):
        return None, Problem(f"{section}[{key}] of {name} is not a string", _RECREATE)
    text = value
    if section == "data":
        try:
            text = base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None, Problem(
                f"data[{key}] of {name} is not base64",
                "base64-encode the JSON (base64 -w0 config.json), or put the plain JSON under "
                f"stringData instead; or {_RECREATE}",
            )
    try:
        return load_json(text), None
    except ValueError:
        return None, Problem(
            f"{section}[{key}] of {name} is not JSON",
            f'it must hold a docker config.json ({{"auths": {{...}}}}); {_RECREATE}',
        )


def _secret_name(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"secret {name}" if isinstance(name, str) and name else "the secret"


def _content(doc: Mapping[str, Any]) -> tuple[Any, list[Problem]]:
    """The decoded docker config a Secret holds, and what is wrong with its type and key."""
    name = _secret_name(doc)
    kind = doc.get("type")
    if kind not in DATA_KEYS:
        fix = f"create it with type {DOCKERCONFIGJSON}; {_RECREATE}"
        message = f"{name} has type {kind or '(none)'}, which the kubelet does not use for pulls"
        found = next((k for k in DATA_KEYS.values() if _payload(doc, k)), None)
        if found is None:
            return None, [Problem(message, fix)]
        problems = [Problem(message, fix)]
        section, value = _payload(doc, found) or ("data", "")
        content, bad = _decode_payload(section, value, found, name)
        return content, [*problems, *([bad] if bad else [])]
    key = DATA_KEYS[kind]
    payload = _payload(doc, key)
    if payload is None:
        other = next(k for k in DATA_KEYS.values() if k != key)
        if _payload(doc, other):
            right = next(t for t, k in DATA_KEYS.items() if k == other)
            return None, [
                Problem(
                    f"{name} has type {kind} but its data key is {other} (the key of {right})",
                    f"rename the key to {key} or set type {right}; or {_RECREATE}",
                )
            ]
        return None, [Problem(f"{name} has type {kind} but no {key} in data", _RECREATE)]
    content, bad = _decode_payload(*payload, key, name)
    if bad is not None:
        return None, [bad]
    legacy = not (isinstance(content, Mapping) and is_config_json(content))
    if kind == DOCKERCONFIGJSON and legacy:
        return content, [
            Problem(
                f"type is {DOCKERCONFIGJSON} but {key} holds a legacy .dockercfg map "
                '(no "auths"): the kubelet ignores it',
                _RECREATE,
            )
        ]
    if kind == DOCKERCFG and not legacy:
        return content, [
            Problem(
                f'type is {DOCKERCFG} but {key} holds a config.json (with "auths"): the '
                'kubelet reads "auths" as a registry name and finds no credentials',
                f"set type {DOCKERCONFIGJSON} with key .dockerconfigjson; or {_RECREATE}",
            )
        ]
    return content, []


def _auths_of(content: object) -> Mapping[str, Any]:
    if not isinstance(content, Mapping):
        return {}
    if is_config_json(content):
        auths = content.get("auths")
        return auths if isinstance(auths, Mapping) else {}
    return content


def _entry_problems(key: str, entry: object) -> Iterator[Problem]:
    where = f"entry {key!r}"
    if not isinstance(entry, Mapping):
        yield Problem(f"{where} is not an object", _RECREATE)
        return
    auth = entry.get("auth")
    username, password = entry.get("username"), entry.get("password")
    if isinstance(auth, str) and auth.strip():
        try:
            auth_user, auth_password = decode_auth(auth, where)
        except CredentialsError as exc:
            yield Problem(exc.message, f"set auth to base64 of USER:PASSWORD; or {_RECREATE}")
            return
        if username is not None and username != auth_user:
            yield Problem(
                f"{where}: auth is for user {auth_user!r} but username is {username!r} "
                "(the kubelet uses auth)",
                f"make them agree; or {_RECREATE}",
            )
        if password is not None and password != auth_password:
            yield Problem(
                f"{where}: the password in auth differs from password (the kubelet uses auth)",
                f"make them agree; or {_RECREATE}",
            )
    elif not (username and password) and not entry.get("identitytoken"):
        yield Problem(
            f"{where} has no auth and no username/password: the kubelet sends no credentials",
            _RECREATE,
        )


def check_secret(doc: object, registry: str | None = None) -> list[Problem]:
    """Everything that would stop the kubelet from using ``doc`` to pull from ``registry``."""
    if not isinstance(doc, Mapping):
        return [Problem("the document is not a Kubernetes object", "pass a Secret in YAML/JSON")]
    problems: list[Problem] = []
    if doc.get("kind") not in (None, "Secret"):
        problems.append(Problem(f"the document is a {doc.get('kind')}, not a Secret", _RECREATE))
    content, found = _content(doc)
    problems.extend(found)
    if content is None:
        return problems
    auths = _auths_of(content)
    for key, entry in auths.items():
        problems.extend(_entry_problems(str(key), entry))
    if registry is not None and find_key(auths, registry) is None:
        listed = ", ".join(map(str, auths)) or "none"
        problems.append(
            Problem(
                f"no entry matches registry {registry} (entries: {listed})",
                f"add one for {registry}: create the Secret with imgmirror secret create or "
                "kubectl create secret docker-registry",
            )
        )
    return problems


def check_text(text: str | bytes, source: str, registry: str | None = None) -> list[Problem]:
    """[check_secret][] for every Secret in a file (``kubectl get secret -o yaml`` too)."""
    try:
        docs = parse_documents(text, source)
    except CredentialsError as exc:
        return [Problem(exc.message, "pass a Secret as YAML or JSON (kubectl get secret -o yaml)")]
    secrets = [d for d in docs if is_secret(d)]
    if not secrets:
        return [Problem(f"{source} holds no Kubernetes Secret", "pass kubectl get secret -o yaml")]
    return [p for doc in secrets for p in check_secret(doc, registry)]


def config_from_secret(doc: Mapping[str, Any], source: str) -> DockerConfig:
    """The docker config a pull Secret holds, refusing what the kubelet would refuse.

    Raises:
        CredentialsError: naming the first problem and its fix.
    """
    content, problems = _content(doc)
    if problems:
        raise CredentialsError(f"{source}: {problems[0].message}", hint=problems[0].fix)
    return config_from_json(content, source)


def parse_authfile(text: str | bytes, source: str) -> DockerConfig:
    """Parse any file ``--authfile`` accepts (see the module docstring).

    Raises:
        CredentialsError: If it is none of them, or is malformed.
    """
    stripped = text.lstrip()
    if stripped[:1] in ("{", b"{"):
        try:
            doc = load_json(text)
        except ValueError:
            doc = None
        if isinstance(doc, Mapping) and not is_secret(doc):
            return config_from_json(doc, source)
    docs = parse_documents(text, source)
    secrets = [d for d in docs if is_secret(d)]
    if not secrets:
        if len(docs) == 1 and isinstance(docs[0], Mapping) and "kind" not in docs[0]:
            return config_from_json(docs[0], source)
        raise CredentialsError(
            f"{source} is not a docker config.json, .dockercfg or Kubernetes Secret",
            hint="point authfile at ~/.docker/config.json or a pull Secret",
            setting="authfile",
        )
    config = config_from_secret(secrets[0], source)
    for extra in secrets[1:]:
        config = config.merged(config_from_secret(extra, source))
    return config


#: A DNS-1123 subdomain, what Kubernetes requires of a Secret's (and a namespace's, as a
#: label) name: lowercase alphanumerics, ``-`` and ``.``, starting and ending alphanumeric.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_name(name: str, what: str = "Secret name", *, label: bool = False) -> None:
    """Refuse a name the API server would refuse (a namespace is a DNS-1123 label).

    Raises:
        CredentialsError: naming the rule.
    """
    limit, pattern = (63, _DNS1123_LABEL) if label else (253, _DNS1123_SUBDOMAIN)
    if len(name) > limit or not pattern.fullmatch(name):
        raise CredentialsError(
            f"{what} {name!r} is not a valid Kubernetes name",
            hint=f"use at most {limit} lowercase letters, digits, '-'"
            + ("" if label else " and '.'")
            + ", starting and ending with a letter or digit (e.g. regcred)",
        )


def check_registry(registry: str) -> None:
    """Refuse a registry that is not a host as image references name one (``host[:port]``,
    optionally as a URL such as ``https://index.docker.io/v1/``).

    Raises:
        CredentialsError: naming what is wrong.
    """
    text = registry.strip()
    bare = text.split("://", 1)[1] if "://" in text else text
    host = bare.split("/", 1)[0]
    problem = "" if host and text == registry and " " not in registry else "is not a host"
    if not problem:
        try:
            parsed = Reference.parse(f"{host}/x").registry
        except ImgmirrorError as exc:
            problem = exc.message.split(": ", 1)[-1]
        else:
            hub = key_host(host) == "docker.io"
            if not hub and parsed.lower() != host.lower():
                problem = "needs a '.' or a ':port', or must be localhost"
    if problem:
        raise CredentialsError(
            f"registry {registry!r}: {problem}",
            hint="give the registry as HOST[:PORT], as image names start (e.g. reg.corp:5000)",
        )


def create_secret(
    name: str,
    registry: str,
    credential: Credential,
    *,
    namespace: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """The Secret ``kubectl create secret docker-registry`` writes for the same input.

    Raises:
        CredentialsError: a name or namespace the API server would refuse, or a registry that
            is not a registry host.
    """
    check_name(name)
    if namespace:
        check_name(namespace, "namespace", label=True)
    check_registry(registry)
    entry: dict[str, str] = {"username": credential.username, "password": credential.password}
    if email:
        entry["email"] = email
    entry["auth"] = encode_auth(credential.username, credential.password)
    content = json.dumps({"auths": {registry: entry}}, separators=(",", ":"))
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    metadata["creationTimestamp"] = None
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": metadata,
        "data": {".dockerconfigjson": base64.b64encode(content.encode()).decode("ascii")},
        "type": DOCKERCONFIGJSON,
    }


def render(doc: Mapping[str, Any], output: str) -> str:
    """``doc`` as ``json`` (kubectl's 4-space indent) or ``yaml``."""
    import yaml  # noqa: PLC0415 - PyYAML loads only when YAML is written

    if output == "json":
        return json.dumps(doc, indent=4) + "\n"
    if output == "yaml":
        return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)
    raise ValueError(f"output must be json or yaml, not {output!r}")
