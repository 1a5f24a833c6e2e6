"""imgmirror: copy container images between registries and into docker-loadable archives.

The stable surface is re-exported here; see ``docs/design.md`` for the layering. Values and
errors are imported at once; the operations (and httpx beneath them) on first use, so that
``import imgmirror`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .credentials import Credential
from .digest import Digest
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
from .platform import Platform
from .progress import ProgressListener
from .reference import Reference
from .transport.retry import RetryPolicy
from .transport.tls import ClientOptions

if TYPE_CHECKING:
    from .copier import CopyResult, copy
    from .discovery import find_referrers
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
    from .pusher import PushResult, push
    from .saver import SaveResult, save
    from .syncer import sync
    from .syncreport import SyncReport, SyncResult

_LAZY = {
    "copy": "copier",
    "CopyResult": "copier",
    "save": "saver",
    "SaveResult": "saver",
    "push": "pusher",
    "PushResult": "pusher",
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
    "RateLimited",
    "Reference",
    "ReferrerError",
    "RegistryError",
    "RetryPolicy",
    "SaveResult",
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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'imgmirror' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
