"""Verify an image's signatures and attestations against a policy before it is written.

Pure parts: the policy and its file format (:mod:`.policy`, :mod:`.policyfile`), public keys
(:mod:`.keys`), cosign's simple-signing payloads, DSSE envelopes and in-toto statements
(:mod:`.payloads`), sigstore bundles v0.1-0.3 (:mod:`.bundle`), certificate identities
(:mod:`.identity`), ages (:mod:`.age`) and the decision (:mod:`.decision`). Keyless
verification through ``sigstore`` (the ``imgmirror[verify]`` extra) is in :mod:`.keyless`, the
decision cache file in :mod:`.cache`, and the one step that fetches signatures through
:mod:`imgmirror.referrers` and decides in :mod:`.gate`.

May import: :mod:`imgmirror.referrers`, :mod:`imgmirror.registry` and everything below them.
"""
