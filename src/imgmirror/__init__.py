"""imgmirror: copy container images between registries and into docker-loadable archives.

The stable surface is re-exported here; see ``docs/design.md`` for the layering.
"""

from ._version import __version__
from .copy import CopyResult, copy
from .credentials import Credential
from .digest import Digest
from .errors import (
    ArchiveError,
    AuthenticationError,
    CredentialsError,
    ImgmirrorError,
    InvalidDigest,
    InvalidManifest,
    InvalidPlatform,
    InvalidReference,
    ManifestError,
    NetworkError,
    NotFound,
    PermissionDenied,
    PlatformNotFound,
    RateLimited,
    RegistryError,
    TLSVerificationError,
    UnsupportedMediaType,
    VerificationError,
)
from .keychain import DefaultKeychain, Keychain, StaticKeychain
from .platform import Platform
from .progress import ProgressListener
from .push import PushResult, push
from .reference import Reference
from .save import SaveResult, save
from .transport.retry import RetryPolicy
from .transport.tls import ClientOptions

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
    "InvalidDigest",
    "InvalidManifest",
    "InvalidPlatform",
    "InvalidReference",
    "Keychain",
    "ManifestError",
    "NetworkError",
    "NotFound",
    "PermissionDenied",
    "Platform",
    "PlatformNotFound",
    "ProgressListener",
    "PushResult",
    "RateLimited",
    "Reference",
    "RegistryError",
    "RetryPolicy",
    "SaveResult",
    "StaticKeychain",
    "TLSVerificationError",
    "UnsupportedMediaType",
    "VerificationError",
    "__version__",
    "copy",
    "push",
    "save",
]
