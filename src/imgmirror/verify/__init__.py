"""Verify an image's signatures and attestations against a policy before it is written.

Pure parts: the policy and its file format ([.policy][imgmirror.verify.policy],
[.policyfile][imgmirror.verify.policyfile]), public keys
([.keys][imgmirror.verify.keys]), cosign's simple-signing payloads, DSSE envelopes and in-toto
statements
([.payloads][imgmirror.verify.payloads]), sigstore bundles v0.1-0.3
([.bundle][imgmirror.verify.bundle]), certificate identities
([.identity][imgmirror.verify.identity]), ages ([.age][imgmirror.verify.age]) and the decision
([.decision][imgmirror.verify.decision]). Keyless
verification of bundles through ``sigstore`` (the ``imgmirror[verify]`` extra) is in
[.keyless][imgmirror.verify.keyless]; of cosign's tag-based keyless signatures on ``cryptography``
in
[.tagkeyless][imgmirror.verify.tagkeyless], with the trusted root's material
([.trust][imgmirror.verify.trust]), Fulcio certificates
([.fulcio][imgmirror.verify.fulcio]) and Rekor bundles ([.rekor][imgmirror.verify.rekor]); the
decision cache file in [.cache][imgmirror.verify.cache],
and the one step that fetches signatures through [imgmirror.referrers][imgmirror.referrers] and
decides in
[.gate][imgmirror.verify.gate].

May import: [imgmirror.referrers][imgmirror.referrers], [imgmirror.registry][imgmirror.registry] and
everything below them.
"""
