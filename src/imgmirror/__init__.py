"""imgmirror: copy container images between registries and into docker-loadable archives.

The stable surface is re-exported here; see ``docs/design.md`` for the layering. Every name
is imported on first use (the operations bring httpx), so that ``import imgmirror`` costs
almost nothing and ``imgmirror --version`` answers before any of it loads.
"""

from __future__ import annotations

import importlib

from imgmirror._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from imgmirror.api.copy import copy
    from imgmirror.api.lookup import image_digest, inspect, list_repositories, list_tags
    from imgmirror.api.push import push
    from imgmirror.api.referrers import find_referrers
    from imgmirror.api.save import save
    from imgmirror.api.sync import sync
    from imgmirror.auth.credentials import Credential
    from imgmirror.auth.keychain import DefaultKeychain, Keychain, StaticKeychain
    from imgmirror.errors import (
        ArchiveError,
        ArchiveNamesNeedConsent,
        AuthenticationError,
        CredentialsError,
        ImgmirrorError,
        InvalidArtifactType,
        InvalidDigest,
        InvalidManifest,
        InvalidPlatform,
        InvalidReference,
        InvalidSyncFile,
        ManifestError,
        NetworkError,
        NoTagsSelected,
        NotFound,
        PermissionDenied,
        PlatformNotFound,
        RateLimited,
        ReferrerError,
        RegistryError,
        SemverError,
        ShardError,
        TLSVerificationError,
        UnsupportedMediaType,
        VerificationError,
    )
    from imgmirror.model.digest import Digest
    from imgmirror.model.platform import Platform
    from imgmirror.model.reference import Reference
    from imgmirror.nodes.config import NodeConfig
    from imgmirror.nodes.files import node_config
    from imgmirror.ops.copy import CopyResult
    from imgmirror.ops.lookup import Inspection, inspect_archive
    from imgmirror.ops.push import PushedImage, PushResult
    from imgmirror.ops.save import SavedImage, SaveResult
    from imgmirror.ops.saverequest import ImageRequest
    from imgmirror.progress import ProgressListener
    from imgmirror.session import Session
    from imgmirror.syncing.report import SyncReport, SyncResult
    from imgmirror.transport.options import ClientOptions
    from imgmirror.transport.retry import RetryPolicy

_LAZY = {
    "Credential": "auth.credentials",
    "Digest": "model.digest",
    "Platform": "model.platform",
    "ProgressListener": "progress",
    "Reference": "model.reference",
    "RetryPolicy": "transport.retry",
    "ClientOptions": "transport.options",
    "copy": "api.copy",
    "CopyResult": "ops.copy",
    "save": "api.save",
    "SaveResult": "ops.save",
    "push": "api.push",
    "PushResult": "ops.push",
    "PushedImage": "ops.push",
    "SavedImage": "ops.save",
    "ImageRequest": "ops.saverequest",
    "Session": "session",
    "Keychain": "auth.keychain",
    "DefaultKeychain": "auth.keychain",
    "StaticKeychain": "auth.keychain",
    "node_config": "nodes.files",
    "Inspection": "ops.lookup",
    "image_digest": "api.lookup",
    "inspect": "api.lookup",
    "inspect_archive": "ops.lookup",
    "list_repositories": "api.lookup",
    "list_tags": "api.lookup",
    "NodeConfig": "nodes.config",
    "sync": "api.sync",
    "SyncReport": "syncing.report",
    "SyncResult": "syncing.report",
    "find_referrers": "api.referrers",
}

__all__ = [
    "ArchiveError",
    "ArchiveNamesNeedConsent",
    "AuthenticationError",
    "ClientOptions",
    "CopyResult",
    "Credential",
    "CredentialsError",
    "DefaultKeychain",
    "Digest",
    "ImageRequest",
    "ImgmirrorError",
    "Inspection",
    "InvalidArtifactType",
    "InvalidDigest",
    "InvalidManifest",
    "InvalidPlatform",
    "InvalidReference",
    "InvalidSyncFile",
    "Keychain",
    "ManifestError",
    "NetworkError",
    "NoTagsSelected",
    "NodeConfig",
    "NotFound",
    "PermissionDenied",
    "Platform",
    "PlatformNotFound",
    "ProgressListener",
    "PushResult",
    "PushedImage",
    "RateLimited",
    "Reference",
    "ReferrerError",
    "RegistryError",
    "RetryPolicy",
    "SaveResult",
    "SavedImage",
    "SemverError",
    "Session",
    "ShardError",
    "StaticKeychain",
    "SyncReport",
    "SyncResult",
    "TLSVerificationError",
    "UnsupportedMediaType",
    "VerificationError",
    "__version__",
    "copy",
    "find_referrers",
    "image_digest",
    "inspect",
    "inspect_archive",
    "list_repositories",
    "list_tags",
    "node_config",
    "push",
    "save",
    "sync",
]


def __getattr__(name: str) -> Any:
    # every public name not listed in _LAZY is an exception class from errors.py
    module = _LAZY.get(name, "errors" if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module 'imgmirror' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
