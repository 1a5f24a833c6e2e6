"""Credentials and where they come from: the credential value, ``WWW-Authenticate`` challenges,
docker/podman config files and credential helpers, pull Secrets, and keychains.

May import: [imgmirror.model][imgmirror.model], [imgmirror.errors][imgmirror.errors]. No HTTP: the
transport asks a
keychain for a credential, never the reverse.
"""
