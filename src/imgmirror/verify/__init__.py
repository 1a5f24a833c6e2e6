"""Verify an image's signatures and attestations against a policy before it is written.

Pure parts: the policy and its file format (:mod:`.policy`, :mod:`.policyfile`), public keys
(:mod:`.keys`), cosign's simple-signing payloads, DSSE envelopes and in-toto statements
(:mod:`.payloads`), sigstore bundles v0.1-0.3 (:mod:`.bundle`), certificate identities
(:mod:`.identity`), ages (:mod:`.age`) and the decision (:mod:`.decision`). Keyless
verification of bundles through ``sigstore`` (the ``imgmirror[verify]`` extra) is in
:mod:`.keyless`; of cosign's tag-based keyless signatures on ``cryptography`` in
:mod:`.tagkeyless`, with the trusted root's material (:mod:`.trust`), Fulcio certificates
(:mod:`.fulcio`) and Rekor bundles (:mod:`.rekor`); the decision cache file in :mod:`.cache`,
and the one step that fetches signatures through :mod:`imgmirror.referrers` and decides in
:mod:`.gate`.

May import: :mod:`imgmirror.referrers`, :mod:`imgmirror.registry` and everything below them.
"""
