"""imgmirror: copy container images between registries and into docker-loadable archives.

The stable surface is re-exported here; see ``docs/design.md`` for the layering. Every name
is imported on first use (the operations bring httpx), so that ``import imgmirror`` costs
almost nothing and ``imgmirror --version`` answers before any of it loads.
"""

from __future__ import annotations

import importlib

from ._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from .copier import CopyResult, copy
    from .credentials import Credential
    from .digest import Digest
    from .discovery import find_referrers
    from .errors import (
        ArchiveError,
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
        NotFound,
        PermissionDenied,
        PlatformNotFound,
        RateLimited,
        ReferrerError,
        RegistryError,
        TLSVerificationError,
        UnsupportedMediaType,
        VerificationError,
    )
    from .keychain import DefaultKeychain, Keychain, StaticKeychain
    from .lookup import (
        Inspection,
        image_digest,
        inspect,
        inspect_archive,
        list_repositories,
        list_tags,
    )
    from .nodeconfig import NodeConfig
    from .nodefiles import node_config
    from .platform import Platform
    from .progress import ProgressListener
    from .pusher import PushedImage, PushResult, push
    from .reference import Reference
    from .saver import SavedImage, SaveResult, save
    from .saverequest import ImageRequest
    from .session import Session
    from .syncer import sync
    from .syncreport import SyncReport, SyncResult
    from .transport.retry import RetryPolicy
    from .transport.tls import ClientOptions

_LAZY = {
    "Credential": "credentials",
    "Digest": "digest",
    "Platform": "platform",
    "ProgressListener": "progress",
    "Reference": "reference",
    "RetryPolicy": "transport.retry",
    "ClientOptions": "transport.tls",
    "copy": "copier",
    "CopyResult": "copier",
    "save": "saver",
    "SaveResult": "saver",
    "push": "pusher",
    "PushResult": "pusher",
    "PushedImage": "pusher",
    "SavedImage": "saver",
    "ImageRequest": "saverequest",
    "Session": "session",
    "Keychain": "keychain",
    "DefaultKeychain": "keychain",
    "StaticKeychain": "keychain",
    "node_config": "nodefiles",
    "Inspection": "lookup",
    "image_digest": "lookup",
    "inspect": "lookup",
    "inspect_archive": "lookup",
    "list_repositories": "lookup",
    "list_tags": "lookup",
    "NodeConfig": "nodeconfig",
    "sync": "syncer",
    "SyncReport": "syncreport",
    "SyncResult": "syncreport",
    "find_referrers": "discovery",
}

__all__ = [
    "ArchiveError",
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
    "Session",
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
