"""A verification policy from YAML: the ``verify:`` mapping of a sync entry or its
``defaults``, and a ``--policy FILE`` (the same mapping at the top level).

```yaml
keys: [cosign.pub, {secret: cosign-secret.yaml, key: cosign.pub}]
identities:
  - issuer: https://token.actions.githubusercontent.com
    subject-regex: ^https://github\\.com/acme/.+$
trusted-root: trusted_root.json
attestations: [slsaprovenance, spdx]
min-age: 3d
max-age: 365d
per-platform: true
```

Every error is an [InvalidPolicy][imgmirror.errors.InvalidPolicy] (inside a sync file, an
[InvalidSyncFile][imgmirror.errors.InvalidSyncFile]) naming ``file:line``, like the sync file's. No
I/O:
callers pass text.
"""

from __future__ import annotations

import datetime as dt

import yaml

from imgmirror.errors import ImgmirrorError, InvalidPolicy
from imgmirror.verify.age import parse_duration
from imgmirror.verify.identity import Identity, compile_subject
from imgmirror.verify.payloads import predicate_type
from imgmirror.verify.policy import KeySource, Policy

__all__ = ["POLICY_KEYS", "parse_policy", "policy_from_node"]

POLICY_KEYS = (
    "keys", "identities", "trusted-root", "attestations", "min-age", "max-age", "per-platform"
)  # fmt: skip
_KEY_KEYS = ("path", "secret", "key")
_IDENTITY_KEYS = ("issuer", "subject", "subject-regex")


class _Reader:
    def __init__(self, origin: str, error: type[ImgmirrorError]) -> None:
        self.origin = origin
        self.error = error

    def fail(self, node: yaml.Node | None, message: str) -> ImgmirrorError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return self.error(f"{self.origin}{line}: {message}")

    def mapping(self, node: yaml.Node, allowed: tuple[str, ...], what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                raise self.fail(
                    key_node, f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})"
                )
            if key in out:
                raise self.fail(key_node, f"duplicate key {key!r} in {what}")
            out[key] = value
        return out

    def text(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (
            "tag:yaml.org,2002:str", "tag:yaml.org,2002:int"
        ):  # fmt: skip
            raise self.fail(node, f"{key} must be text")
        if not node.value.strip():
            raise self.fail(node, f"{key} is empty")
        return str(node.value).strip()

    def flag(self, node: yaml.Node, key: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
            raise self.fail(node, f"{key} must be true or false")
        return node.value.lower() in ("true", "yes", "on", "y")

    def items(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and key != "identities":
            return [node]  # one value for a list of one
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, f"{key} must be a non-empty list")
        return list(node.value)

    def key(self, node: yaml.Node) -> KeySource:
        where = f"{self.origin}:{node.start_mark.line + 1}"
        if isinstance(node, yaml.ScalarNode):
            return KeySource(self.text(node, "a key"), where)
        fields = self.mapping(node, _KEY_KEYS, "a keys entry")
        if ("path" in fields) == ("secret" in fields):
            raise self.fail(node, "a keys entry needs path: (a PEM file) or secret: (a Secret)")
        if "secret" in fields:
            entry = self.text(fields["key"], "key") if "key" in fields else None
            return KeySource(self.text(fields["secret"], "secret"), where, True, entry)
        if "key" in fields:
            raise self.fail(fields["key"], "key: names an entry of a secret:")
        return KeySource(self.text(fields["path"], "path"), where)

    def identity(self, node: yaml.Node) -> Identity:
        fields = self.mapping(node, _IDENTITY_KEYS, "an identities entry")
        if "issuer" not in fields:
            raise self.fail(node, "an identity needs issuer: (the OIDC issuer URL)")
        if ("subject" in fields) == ("subject-regex" in fields):
            raise self.fail(node, "an identity needs exactly one of subject: or subject-regex:")
        issuer = self.text(fields["issuer"], "issuer")
        if "subject" in fields:
            return Identity(issuer, subject=self.text(fields["subject"], "subject"))
        try:
            pattern = compile_subject(self.text(fields["subject-regex"], "subject-regex"))
        except ValueError as exc:
            raise self.fail(fields["subject-regex"], str(exc)) from None
        return Identity(issuer, subject_regex=pattern)

    def duration(self, node: yaml.Node, key: str) -> dt.timedelta:
        try:
            return parse_duration(self.text(node, key))
        except ValueError as exc:
            raise self.fail(node, f"{key}: {exc}") from None

    def attestation(self, node: yaml.Node) -> str:
        try:
            return predicate_type(self.text(node, "attestations"))
        except ValueError as exc:
            raise self.fail(node, str(exc)) from None


def policy_from_node(
    node: yaml.Node,
    origin: str,
    *,
    base: str | None = None,
    error: type[ImgmirrorError] = InvalidPolicy,
) -> Policy | None:
    """The policy a ``verify:`` mapping states; ``verify: false`` is None (no check).

    Raises:
        InvalidPolicy: (or ``error``) what is wrong, at ``origin:line``.
    """
    read = _Reader(origin, error)
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        if read.flag(node, "verify"):
            raise read.fail(node, "verify: true says nothing; give keys: or identities:")
        return None
    fields = read.mapping(node, POLICY_KEYS, "verify")
    keys = (
        tuple(read.key(n) for n in read.items(fields["keys"], "keys")) if "keys" in fields else ()
    )
    identities = (
        tuple(read.identity(n) for n in read.items(fields["identities"], "identities"))
        if "identities" in fields
        else ()
    )
    if not keys and not identities:
        raise read.fail(node, "a policy needs keys: or identities: (who may sign)")
    root = read.text(fields["trusted-root"], "trusted-root") if "trusted-root" in fields else None
    if identities and root is None:
        raise read.fail(
            fields["identities"],
            "identities need trusted-root: (a sigstore trusted_root.json; nothing is fetched)",
        )
    wanted = (
        tuple(
            dict.fromkeys(
                read.attestation(n) for n in read.items(fields["attestations"], "attestations")
            )
        )
        if "attestations" in fields
        else ()
    )
    min_age = read.duration(fields["min-age"], "min-age") if "min-age" in fields else None
    max_age = read.duration(fields["max-age"], "max-age") if "max-age" in fields else None
    if min_age is not None and max_age is not None and min_age > max_age:
        raise read.fail(fields["max-age"], "max-age is shorter than min-age")
    per_platform = (
        read.flag(fields["per-platform"], "per-platform") if "per-platform" in fields else False
    )
    return Policy(
        keys, identities, root, wanted, min_age, max_age, per_platform, base,
        f"{origin}:{node.start_mark.line + 1}",
    )  # fmt: skip


def parse_policy(text: str, origin: str, *, base: str | None = None) -> Policy:
    """A ``--policy FILE``: the ``verify:`` mapping at the top level.

    Raises:
        InvalidPolicy: malformed, naming ``origin:line``.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidPolicy(f"{origin}{line}: YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidPolicy(f"{origin}: YAML syntax error: {exc}") from None
    if root is None:
        raise InvalidPolicy(f"{origin}: the policy file is empty; it needs keys: or identities:")
    policy = policy_from_node(root, origin, base=base)
    if policy is None:
        raise InvalidPolicy(f"{origin}: a policy file cannot be false")
    return policy
