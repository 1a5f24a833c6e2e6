"""Signatures, SBOMs and attestations that refer to an image: finding them at a registry
(referrers API, fallback tag, cosign tags), carrying them to a destination, and keeping them in
an archive.

May import: [imgmirror.registry][imgmirror.registry], [imgmirror.archive][imgmirror.archive] and
everything below them.
"""
