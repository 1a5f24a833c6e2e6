"""A reusable session: one registry client per registry, and one blob engine, for many calls.

``with imgmirror.Session() as s: s.copy(...); s.save(...); s.push(...); s.sync(...)``: each
operation asks the session for the client of a registry; the session builds it once with the
right credentials and connection options and closes them all at the end, so the ``/v2/`` ping,
the challenge and the token cache are shared by every request to the same registry, across
calls. When an operation gives no explicit credential, the session asks its keychain (by
default: ``authfile``, then docker's and podman's standard files and credential helpers), once
per registry. The module-level :func:`imgmirror.copy` (save, push, sync) are one-shot
shortcuts: each opens a session, calls its method and closes it.
"""

from __future__ import annotations

import copy as _copy
import threading
from collections.abc import Sequence
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING

import attrs

from imgmirror._version import __version__
from imgmirror.auth.credentials import Credential
from imgmirror.auth.keychain import DefaultKeychain, Keychain
from imgmirror.registry.blobs import BlobEngine
from imgmirror.registry.manifests import ManifestLedger
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.tls import ClientOptions

if TYPE_CHECKING:
    from imgmirror.archive.layout import ArchiveFormat
    from imgmirror.auth.credentials import CredentialInput
    from imgmirror.model.platform import PlatformsArg
    from imgmirror.model.reference import Reference
    from imgmirror.ops.copy import CopyResult
    from imgmirror.ops.push import ConsentInput, PushResult
    from imgmirror.ops.save import SaveResult
    from imgmirror.ops.saverequest import ImageArg
    from imgmirror.progress import ProgressListener
    from imgmirror.syncing.file import SyncSpec
    from imgmirror.syncing.report import SyncObserver, SyncReport
    from imgmirror.syncing.shards import Shard

__all__ = ["DEFAULT_JOBS", "Session"]

#: Transfers at once by default: enough to hide 20-100 ms round trips.
DEFAULT_JOBS = 8


class Session:
    """Registry clients keyed by (registry, credentials), and the blob engine, closed together.

    Reusable: ``with imgmirror.Session(jobs=8, timeout=30) as s:`` then :meth:`copy`,
    :meth:`save`, :meth:`push` and :meth:`sync` as often as needed share connections, tokens
    and the ``/v2/`` checks (three copies to one registry: one ``/v2/`` request there). A
    session may be used from several threads at once.

    Args:
        options: connection settings for every client.
        authfile: credentials file consulted first when an operation gives no explicit
            credential (docker config.json, podman auth.json, .dockercfg or a pull Secret).
        keychain: where credentials come from when none are explicit. Default:
            :class:`~imgmirror.auth.keychain.DefaultKeychain` (``authfile``, then the standard
            files). A custom keychain is asked after ``authfile`` (if given), instead of the
            standard files.
        jobs: blob transfers at once across everything done through this session; also each
            call's default ``jobs``.
        timeout: seconds a request may wait for a reply or stall (``options.timeout``
            otherwise); each call may give its own.
    """

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        authfile: str | PathLike[str] | None = None,
        keychain: Keychain | None = None,
        jobs: int = DEFAULT_JOBS,
        timeout: float | None = None,
    ) -> None:
        self.options = options or ClientOptions(user_agent=f"imgmirror/{__version__}")
        if timeout is not None:
            self.options = attrs.evolve(self.options, timeout=timeout)
        self.authfile = authfile
        self._keychains: list[Keychain] = []
        if keychain is None:
            self._keychains.append(DefaultKeychain(authfile))
        else:
            if authfile is not None:
                self._keychains.append(DefaultKeychain(authfile, defaults=False))
            self._keychains.append(keychain)
        self._clients: dict[
            tuple[str, Credential | None, str | None, ClientOptions], RegistryClient
        ] = {}
        self._resolved: dict[str, Credential | None] = {}
        self._lock = threading.Lock()
        self.blobs = BlobEngine(jobs, self.options.retry)
        #: The manifests stored through this session (one PUT path; see its module).
        self.manifests = ManifestLedger()
        #: Transfers at once for one call (the engine's budget, or what the call asked).
        self.jobs = jobs

    def credential_for(self, registry: str) -> Credential | None:
        """What the keychain(s) hold for ``registry``; asked once per session."""
        with self._lock:
            if registry not in self._resolved:
                found: Credential | None = None
                for keychain in self._keychains:
                    found = keychain.resolve(registry)
                    if found is not None:
                        break
                self._resolved[registry] = found
            return self._resolved[registry]

    def client(
        self, registry: str, credential: Credential | None, *, role: str | None = None
    ) -> RegistryClient:
        """The client for ``registry``, created on first use.

        ``credential`` (explicit) wins; if None, the keychain is asked.
        """
        if credential is None:
            credential = self.credential_for(registry)
        key = (registry, credential, role, self.options)  # one per side: errors name the side
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = RegistryClient(
                    registry, credential=credential, options=self.options, role=role
                )
                self._clients[key] = client
        return client

    def scoped(
        self,
        jobs: int | None = None,
        timeout: float | None = None,
        authfile: str | PathLike[str] | None = None,
    ) -> Session:
        """This session for one call: the same clients, tokens and blob engine, with the
        call's ``jobs`` (at most the engine's) and ``timeout`` (clients of their own), and
        ``authfile`` asked first when the session was given none (a sync file's)."""
        if jobs is None and timeout is None and (authfile is None or self.authfile is not None):
            return self
        view = _copy.copy(self)  # shares the client cache, the lock and the engine
        if jobs is not None:
            view.jobs = min(jobs, self.blobs.jobs)
        if timeout is not None:
            view.options = attrs.evolve(self.options, timeout=timeout)
        if authfile is not None and self.authfile is None:
            view.authfile = authfile
            view._keychains = [DefaultKeychain(authfile, defaults=False), *self._keychains]
            view._resolved = {}
        return view

    def copy(
        self,
        src: str | Reference,
        dst: str | Reference,
        *,
        platforms: PlatformsArg = None,
        src_creds: CredentialInput = None,
        dest_creds: CredentialInput = None,
        jobs: int | None = None,
        timeout: float | None = None,
        progress: ProgressListener | None = None,
        referrers: bool | str | Sequence[str] | None = None,
        referrers_optional: bool = False,
    ) -> CopyResult:
        """Copy an image (or a whole index) from ``src`` to ``dst``; see :func:`imgmirror.copy`.

        ``jobs`` and ``timeout`` default to the session's.
        """
        from imgmirror.ops.copy import copy_image, endpoints  # noqa: PLC0415 - they sit above the session

        source, destination = endpoints(src, dst)
        return copy_image(
            self.scoped(jobs, timeout),
            source,
            destination,
            platforms=platforms,
            src_creds=Credential.coerce(src_creds, setting="src_creds"),
            dest_creds=Credential.coerce(dest_creds, setting="dest_creds"),
            progress=progress,
            referrers=referrers,
            referrers_optional=referrers_optional,
        )

    def save(
        self,
        images: Sequence[ImageArg],
        path: str | PathLike[str],
        *,
        platforms: PlatformsArg = None,
        format: ArchiveFormat = "docker",
        src_creds: CredentialInput = None,
        jobs: int | None = None,
        timeout: float | None = None,
        progress: ProgressListener | None = None,
        referrers: bool | str | Sequence[str] | None = None,
        referrers_optional: bool = False,
    ) -> SaveResult:
        """Save images into one archive at ``path``; see :func:`imgmirror.save`.

        ``jobs`` and ``timeout`` default to the session's.
        """
        from imgmirror.ops.save import save_images  # noqa: PLC0415

        return save_images(
            self.scoped(jobs, timeout),
            images,
            path,
            platforms=platforms,
            format=format,
            src_creds=src_creds,
            progress=progress,
            referrers=referrers,
            referrers_optional=referrers_optional,
        )

    def push(
        self,
        path: str | PathLike[str],
        dest: str | None = None,
        *,
        platforms: PlatformsArg = None,
        dest_creds: CredentialInput = None,
        jobs: int | None = None,
        timeout: float | None = None,
        progress: ProgressListener | None = None,
        to_archive_names: ConsentInput = False,
        image: str | None = None,
        referrers: bool | str | Sequence[str] | None = True,
        referrers_optional: bool = False,
    ) -> PushResult:
        """Push the images of an archive, layout or stream; see :func:`imgmirror.push`.

        ``jobs`` and ``timeout`` default to the session's.
        """
        from imgmirror.ops.push import push_archive  # noqa: PLC0415

        return push_archive(
            self.scoped(jobs, timeout),
            path,
            dest,
            platforms=platforms,
            dest_creds=dest_creds,
            progress=progress,
            to_archive_names=to_archive_names,
            image=image,
            referrers=referrers,
            referrers_optional=referrers_optional,
        )

    def sync(
        self,
        spec: SyncSpec | str | PathLike[str],
        *,
        to: str | None = None,
        platforms: PlatformsArg = None,
        src_creds: CredentialInput = None,
        dest_creds: CredentialInput = None,
        jobs: int | None = None,
        timeout: float | None = None,
        progress: ProgressListener | None = None,
        dry_run: bool = False,
        fail_fast: bool = False,
        shard: Shard | str | None = None,
        observer: SyncObserver | None = None,
    ) -> SyncReport:
        """Mirror every image a sync file selects; see :func:`imgmirror.sync`.

        ``jobs`` and ``timeout`` default to the session's; the file's ``authfile:`` is asked
        first when the session was given no ``authfile``.
        """
        from imgmirror.syncing.run import sync_spec  # noqa: PLC0415

        return sync_spec(
            self.scoped(jobs, timeout),
            spec,
            to=to,
            platforms=platforms,
            src_creds=src_creds,
            dest_creds=dest_creds,
            progress=progress,
            dry_run=dry_run,
            fail_fast=fail_fast,
            shard=shard,
            observer=observer,
        )

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self.blobs.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
