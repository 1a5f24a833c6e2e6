"""The verification policies of a sync run: one loaded [Gate][imgmirror.verify.gate.Gate]
per distinct policy in the file (keys and trusted roots read once, before any registry is
contacted), sharing one decision cache that is saved when the run ends."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from imgmirror.errors import ImgmirrorError
from imgmirror.model.digest import Digest
from imgmirror.syncing.items import SyncItem
from imgmirror.transport.client import RegistryClient
from imgmirror.verify.cache import DecisionCache
from imgmirror.verify.gate import Gate
from imgmirror.verify.policy import Policy

__all__ = ["Gates"]


@attrs.define
class Gates:
    """Loaded policies by value, and the cache they share."""

    loaded: dict[Policy, Gate] = attrs.field(factory=dict)
    cache: DecisionCache | None = None

    @classmethod
    def load(cls, policies: Iterable[Policy | None], cache_path: str | None) -> Gates:
        """Load every distinct policy.

        Raises:
            InvalidPolicy: a key or trusted root cannot be used.
        """
        cache = DecisionCache(cache_path) if cache_path else None
        loaded: dict[Policy, Gate] = {}
        for policy in policies:
            if policy is not None and policy not in loaded:
                loaded[policy] = Gate.load(policy, cache)
        return cls(loaded, cache)

    def get(self, policy: Policy | None) -> Gate | None:
        return self.loaded.get(policy) if policy is not None else None

    def verdict(
        self, client: RegistryClient, item: SyncItem, wanted: str, there: bool
    ) -> dict[str, Any] | None:
        """The decision about an image that is not copied (unchanged, or a dry run).

        Raises:
            PolicyRefused: the policy refuses it.
        """
        gate = self.get(item.verify)
        if gate is None:
            return None
        source = item.source
        digest = Digest.parse(wanted)
        if item.platforms is not None:  # the digest signed is the source's, before selection
            found = client.head_manifest(source.repository, source.identifier)
            if found is None:
                raise ImgmirrorError(f"{source} does not exist at the source")
            digest = found.digest
        verdict = gate.check(client, source.repository, str(source), digest, None, cached=there)
        return verdict.decision.to_json()

    def save(self) -> None:
        """Write the decision cache (if any)."""
        if self.cache is not None:
            self.cache.save()
