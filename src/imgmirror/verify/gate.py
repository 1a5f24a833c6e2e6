"""The gate: fetch an image's signatures and attestations at the source and decide, before
anything is written at the destination.

[Gate.load][] reads the policy's keys (PEM files, Kubernetes Secrets) and trusted root
once. [Gate.check][] finds what refers to the image through
[imgmirror.referrers.discover.discover][imgmirror.referrers.discover.discover] (referrers API,
fallback tag, cosign's ``.sig``
and ``.att`` tags), reads each signature's layers (bounded), verifies them, and applies the
policy ([decide][imgmirror.verify.decision.decide]). A refusal raises
[PolicyRefused][imgmirror.errors.PolicyRefused] with the reason in one line; an acceptance returns
the decision and the referrers that verified, for the copy to carry. With a
[DecisionCache][imgmirror.verify.cache.DecisionCache], an image the destination already holds is
decided from the cache without a request.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence

import attrs

from imgmirror.auth.pullsecret import is_secret, parse_documents
from imgmirror.errors import ImgmirrorError, InvalidPolicy, PolicyRefused
from imgmirror.model.artifacts import ArtifactFilter
from imgmirror.model.digest import Digest
from imgmirror.model.documents import load_json
from imgmirror.model.imagetree import ImageTree
from imgmirror.model.manifest import Descriptor, ImageManifest
from imgmirror.model.referrers import Referrer, ReferrerNode
from imgmirror.referrers.discover import Discovered, discover
from imgmirror.registry.fetch import fetch_image
from imgmirror.transport.client import RegistryClient
from imgmirror.verify.age import age_problem, parse_time
from imgmirror.verify.bundle import BUNDLE_MEDIA_PREFIX, Bundle, parse_bundle
from imgmirror.verify.cache import DecisionCache
from imgmirror.verify.decision import Decision, Verified, decide
from imgmirror.verify.identity import Identity
from imgmirror.verify.keyless import KeylessError, TrustRoot, load_trusted_root, verify_bundle
from imgmirror.verify.keys import PublicKey, key_from_secret, load_public_key
from imgmirror.verify.payloads import (
    COSIGN_SIGN_PREDICATE,
    Envelope,
    PayloadError,
    parse_envelope,
    parse_simple_signing,
    parse_statement,
)
from imgmirror.verify.policy import KeySource, Policy
from imgmirror.verify.tagkeyless import (
    CERTIFICATE_ANNOTATION,
    verify_tag_attestation,
    verify_tag_signature,
)
from imgmirror.verify.trust import TrustMaterial

__all__ = ["Gate", "Verdict", "gate_for", "opened"]

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
#: Largest signature layer read (a payload, an envelope or a bundle).
MAX_LAYER = 4 * 1024 * 1024
#: Most layers read per signature manifest.
MAX_LAYERS = 32
_MAX_CONFIG = 4 * 1024 * 1024
_MAX_KEY_FILE = 1024 * 1024
_WANTED = ArtifactFilter(("sig", "att"))


@attrs.frozen
class Verdict:
    """An accepted image: the decision, and the referrers that verified (None from the cache)."""

    decision: Decision
    verified: Discovered | None = None


def _read(path: str, origin: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InvalidPolicy(f"{origin}: {what} {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise InvalidPolicy(f"{origin}: {what} {path} is over 1 MiB")
    return data


def _load_key(source: KeySource, base: str | None) -> PublicKey:
    path = source.resolved(base)
    data = _read(path, source.origin, "key")
    if not source.secret and b"-----BEGIN" in data:
        try:
            return load_public_key(data, path)
        except InvalidPolicy as exc:
            raise InvalidPolicy(f"{source.origin}: {exc.message}", hint=exc.hint) from None
    try:
        docs = [d for d in parse_documents(data, path) if is_secret(d)]
    except ImgmirrorError:
        docs = []
    if not docs:
        raise InvalidPolicy(
            f"{source.origin}: {path} is neither a PEM public key nor a Kubernetes Secret",
            hint="give cosign.pub, or a Secret manifest holding it (kubectl get secret -o yaml)",
        )
    try:
        return key_from_secret(docs[0], f"secret {path}", source.entry)
    except InvalidPolicy as exc:
        raise InvalidPolicy(f"{source.origin}: {exc.message}", hint=exc.hint) from None


class Gate:
    """A policy ready to apply: keys loaded, trusted root loaded, cache attached."""

    def __init__(
        self,
        policy: Policy,
        keys: Sequence[PublicKey],
        root: TrustRoot | None,
        cache: DecisionCache | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.policy = policy
        self.keys = tuple(keys)
        self.root = root
        self.cache = cache
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        material = [k.fingerprint for k in self.keys] + ([root.fingerprint] if root else [])
        self.fingerprint = policy.fingerprint(material)

    @classmethod
    def load(cls, policy: Policy, cache: DecisionCache | None = None) -> Gate:
        """Read the policy's keys and trusted root.

        Raises:
            InvalidPolicy: a key or the trusted root cannot be used (naming where it is set).
        """
        keys = [_load_key(source, policy.base) for source in policy.keys]
        root = None
        if policy.trusted_root is not None:
            path = policy.trusted_root
            if policy.base is not None and not os.path.isabs(path):
                path = os.path.join(policy.base, path)
            try:
                root = load_trusted_root(path)
            except InvalidPolicy as exc:
                raise InvalidPolicy(f"{policy.origin}: {exc.message}", hint=exc.hint) from None
        return cls(policy, keys, root, cache)

    def save(self) -> None:
        """Write the decision cache, if there is one."""
        if self.cache is not None:
            self.cache.save()

    def check(
        self,
        client: RegistryClient,
        repo: str,
        image: str,
        digest: Digest,
        tree: ImageTree | None = None,
        *,
        cached: bool = False,
    ) -> Verdict:
        """Decide about ``digest`` (``tree`` if already fetched); ``cached`` lets an accepted
        decision from the cache stand without a request (for an image already copied).

        Raises:
            PolicyRefused: the policy refuses it (the reason in one line).
        """
        if cached and self.cache is not None:
            hit = self.cache.get(self.fingerprint, str(digest))
            if hit is not None:
                problem = _still_young_or_old(self.policy, hit, self.clock())
                if problem is None:
                    return Verdict(hit)
        decision, verified = self.decide(client, repo, digest, tree)
        if not decision.accepted:
            raise PolicyRefused(image, str(digest), decision.reason or "refused")
        if self.cache is not None:
            self.cache.put(self.fingerprint, decision)
        return Verdict(decision, verified)

    def decide(
        self, client: RegistryClient, repo: str, digest: Digest, tree: ImageTree | None = None
    ) -> tuple[Decision, Discovered]:
        """The decision about ``digest`` and the referrers that verified; never raises a
        refusal (`check` does), nor reads or writes the cache."""
        if tree is None or (tree.source_digest or tree.top.digest) != digest:
            tree = fetch_image(client, repo, str(digest))
        subjects = [digest]
        if self.policy.per_platform:  # each platform image copied
            copied = (m for m in (tree.top, *tree.children) if isinstance(m, ImageManifest))
            subjects += [m.digest for m in copied if m.digest != digest]
        checker = _Checker(self, client, repo)
        try:
            found = discover(client, repo, subjects, _WANTED, max_depth=1)
        except ImgmirrorError as exc:
            reason = f"its signatures could not be read: {exc.message}"
            return Decision(digest, False, reason), Discovered((), {})
        kept: list[ReferrerNode] = []
        for node in found.nodes:
            if checker.referrer(node.referrer, found.trees[node.referrer.digest]):
                kept.append(ReferrerNode(node.referrer))
        created = self._created(client, repo, tree) if self._ages() else None
        decision = decide(
            self.policy,
            digest,
            subjects,
            checker.verified,
            checker.problems,
            created=created,
            now=self.clock(),
        )
        keep = {d for n in kept for d in (n.referrer.digest,)}
        return decision, Discovered(tuple(kept), {d: found.trees[d] for d in keep})

    def _ages(self) -> bool:
        return self.policy.min_age is not None or self.policy.max_age is not None

    def _created(self, client: RegistryClient, repo: str, tree: ImageTree) -> dt.datetime | None:
        """The newest ``created`` of the image's configs (None when none says)."""
        times = []
        for image in tree.images():
            if image.config.size > _MAX_CONFIG:
                continue
            try:
                with client.open_blob(repo, image.config) as chunks:
                    doc = load_json(b"".join(chunks))
            except (ImgmirrorError, ValueError):
                continue
            found = parse_time(doc.get("created")) if isinstance(doc, dict) else None
            if found is not None:
                times.append(found)
        return max(times) if times else None


def gate_for(value: Policy | Gate | None, cache: str | None = None) -> Gate | None:
    """A gate for the operations' ``verify=`` argument (a policy is loaded here).

    Raises:
        InvalidPolicy: a key or the trusted root cannot be used.
    """
    if value is None or isinstance(value, Gate):
        return value
    return Gate.load(value, DecisionCache(cache) if cache else None)


@contextlib.contextmanager
def opened(value: Policy | Gate | None, cache: str | None = None) -> Iterator[Gate | None]:
    """[gate_for][], its decision cache saved when the operation ends."""
    gate = gate_for(value, cache)
    try:
        yield gate
    finally:
        if gate is not None:
            gate.save()


def _still_young_or_old(policy: Policy, decision: Decision, now: dt.datetime) -> str | None:
    return age_problem(decision.created, now, policy.min_age, policy.max_age)


@attrs.define
class _Checker:
    """Verifies the signatures of one image, collecting what verified and why others did not."""

    gate: Gate
    client: RegistryClient
    repo: str
    verified: list[Verified] = attrs.field(factory=list)
    problems: list[str] = attrs.field(factory=list)

    def referrer(self, referrer: Referrer, tree: ImageTree) -> bool:
        """Check every signature layer of ``referrer``; whether one verified."""
        where = referrer.tag or f"referrer {referrer.digest.hex[:12]}"
        top = tree.top
        if not isinstance(top, ImageManifest):
            self.problems.append(f"{where}: an index, not a signature")
            return False
        before = len(self.verified)
        for layer in top.layers[:MAX_LAYERS]:
            try:
                self._layer(referrer, layer)
            except (PayloadError, _Refused) as exc:
                self.problems.append(f"{where}: {exc}")
            except ImgmirrorError as exc:
                self.problems.append(f"{where}: layer {layer.digest.hex[:12]}: {exc.message}")
        return len(self.verified) > before

    def _blob(self, layer: Descriptor) -> bytes:
        if layer.size > MAX_LAYER:
            raise _Refused(f"layer {layer.digest.hex[:12]} is {layer.size} bytes; too large")
        with self.client.open_blob(self.repo, layer) as chunks:
            return b"".join(chunks)

    def _layer(self, referrer: Referrer, layer: Descriptor) -> None:
        media = layer.media_type.split(";", 1)[0].strip()
        if media == SIMPLE_SIGNING:
            self._simple(referrer, layer)
        elif media == DSSE:
            self._envelope(referrer, layer)
        elif media.startswith(BUNDLE_MEDIA_PREFIX):
            self._bundle(referrer, parse_bundle(self._blob(layer)))
        else:
            raise _Refused(f"layer of type {media} is not a signature imgmirror verifies")

    def _signature(self, layer: Descriptor) -> bytes:
        text = layer.annotations.get(SIGNATURE_ANNOTATION)
        if not text:
            raise _Refused("a layer without the dev.cosignproject.cosign/signature annotation")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused("its signature annotation is not base64") from None

    def _signer(
        self, signature: bytes, payload: bytes, layer: Descriptor
    ) -> tuple[str, dt.datetime | None]:
        """Who signed ``payload``: an allowed key, else the allowed identity of its
        certificate (cosign's tag-based keyless format) and the verified signing time."""
        for key in self.gate.keys:
            if key.verify(signature, payload):
                return key.describe(), None
        if CERTIFICATE_ANNOTATION not in layer.annotations:
            raise _Refused("not signed by an allowed key")
        material, identities = self._keyless_trust("signed")
        try:
            return verify_tag_signature(material, identities, payload, signature, layer.annotations)
        except KeylessError as exc:
            raise _Refused(f"keyless signature: {exc}") from None

    def _keyless_trust(self, what: str) -> tuple[TrustMaterial, Sequence[Identity]]:
        """The trusted root and identities a tag-based keyless layer needs, or the refusal
        that says the policy has none (``what``: the layer's kind of signing)."""
        root, identities = self.gate.root, self.gate.policy.identities
        if root is None or not identities:
            raise _Refused(
                f"{what} with a certificate (keyless), not an allowed key; the policy names no "
                "identities and trusted root"
            )
        return root.material, identities

    def _simple(self, referrer: Referrer, layer: Descriptor) -> None:
        signature = self._signature(layer)
        payload = self._blob(layer)
        by, signed_at = self._signer(signature, payload, layer)  # before reading its claims
        claims = parse_simple_signing(payload)
        if claims.digest != referrer.subject:
            raise _Refused(f"signed for {claims.digest}, not this image (a replay)")
        self.verified.append(Verified(referrer.subject, referrer.digest, by, None, signed_at))

    def _envelope(self, referrer: Referrer, layer: Descriptor) -> None:
        data = self._blob(layer)
        envelope = parse_envelope(data)
        signed = envelope.signed_bytes()
        sigs = [s for _, s in envelope.signatures]
        key = next((k for k in self.gate.keys for s in sigs if k.verify(s, signed)), None)
        if key is not None:
            by, signed_at = key.describe(), None
        elif CERTIFICATE_ANNOTATION not in layer.annotations:
            raise _Refused("attestation not signed by an allowed key")
        else:
            by, signed_at = self._keyless_attestation(data, envelope, layer)
        self._statement(referrer, envelope.payload_type, envelope.payload, by, signed_at)

    def _keyless_attestation(
        self, data: bytes, envelope: Envelope, layer: Descriptor
    ) -> tuple[str, dt.datetime]:
        """A tag-based ``.att`` layer signed with a certificate (cosign v2 ``attest``)."""
        material, identities = self._keyless_trust("attestation signed")
        try:
            return verify_tag_attestation(material, identities, data, envelope, layer.annotations)
        except KeylessError as exc:
            raise _Refused(f"keyless attestation: {exc}") from None

    def _statement(
        self,
        referrer: Referrer,
        payload_type: str,
        payload: bytes,
        by: str,
        signed_at: dt.datetime | None,
    ) -> None:
        statement = parse_statement(payload_type, payload)
        if not statement.names(referrer.subject):
            named = ", ".join(str(d) for d in statement.subjects[:2])
            raise _Refused(f"a statement about {named}, not this image (a replay)")
        kind = (
            None if statement.predicate_type == COSIGN_SIGN_PREDICATE else statement.predicate_type
        )
        self.verified.append(Verified(referrer.subject, referrer.digest, by, kind, signed_at))

    def _bundle(self, referrer: Referrer, bundle: Bundle) -> None:
        if bundle.keyless:
            self._keyless(referrer, bundle)
            return
        if bundle.envelope is not None:
            signed = bundle.envelope.signed_bytes()
            sigs = [s for _, s in bundle.envelope.signatures]
            key = next((k for k in self.gate.keys for s in sigs if k.verify(s, signed)), None)
            if key is None:
                raise _Refused("bundle not signed by an allowed key")
            payload_type, payload = bundle.envelope.payload_type, bundle.envelope.payload
            self._statement(referrer, payload_type, payload, key.describe(), None)
            return
        message = bundle.message
        assert message is not None
        subject = referrer.subject
        if message.algorithm != "SHA2_256" or message.digest != bytes.fromhex(subject.hex):
            raise _Refused("a message signature over another digest (a replay)")
        key = next(
            (k for k in self.gate.keys if k.verify_digest(message.signature, message.digest)), None
        )
        if key is None:
            raise _Refused("bundle not signed by an allowed key")
        self.verified.append(Verified(subject, referrer.digest, key.describe()))

    def _keyless(self, referrer: Referrer, bundle: Bundle) -> None:
        root, identities = self.gate.root, self.gate.policy.identities
        if root is None or not identities:
            raise _Refused("a keyless bundle; the policy names no identities and trusted root")
        try:
            by, signed_at, content = verify_bundle(root, bundle, identities, referrer.subject)
        except KeylessError as exc:
            raise _Refused(f"keyless bundle: {exc}") from None
        if content is None:
            self.verified.append(Verified(referrer.subject, referrer.digest, by, None, signed_at))
            return
        self._statement(referrer, content[0], content[1], by, signed_at)


class _Refused(Exception):
    """One signature did not count (the message says why)."""
