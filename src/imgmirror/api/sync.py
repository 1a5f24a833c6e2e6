"""Mirror every image a sync file selects: the one-shot ``imgmirror.sync``."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike

from imgmirror.auth.credentials import CredentialInput
from imgmirror.auth.keychain import Keychain
from imgmirror.model.platform import PlatformsArg
from imgmirror.progress import ProgressListener
from imgmirror.registry.pool import ClientPool
from imgmirror.syncing.file import SyncSpec
from imgmirror.syncing.report import SyncObserver, SyncReport
from imgmirror.syncing.run import sync as sync_in
from imgmirror.syncing.shards import Shard
from imgmirror.transport.options import ClientOptions, Paths
from imgmirror.verify.policy import Policy

__all__ = ["sync"]


def sync(
    spec: SyncSpec | str | PathLike[str],
    *,
    to: str | None = None,
    platforms: PlatformsArg = None,
    src_creds: CredentialInput = None,
    dest_creds: CredentialInput = None,
    jobs: int = 8,
    timeout: float | None = None,
    progress: ProgressListener | None = None,
    dry_run: bool = False,
    check: bool = False,
    fail_fast: bool = False,
    shard: Shard | str | None = None,
    observer: SyncObserver | None = None,
    authfile: str | PathLike[str] | None = None,
    keychain: Keychain | None = None,
    options: ClientOptions | None = None,
    ca_file: str | PathLike[str] | None = None,
    certs_dirs: Paths | None = None,
    insecure_registries: Iterable[str] | None = None,
    verify: Policy | None = None,
    verify_cache: str | None = None,
) -> SyncReport:
    """Mirror every image a sync file selects (see the sync guide).

    Args:
        spec: a path to a sync file, or a parsed ``SyncSpec``
            (``imgmirror.syncing.file.parse_sync_file``).
        to: destination prefix replacing the file's ``defaults.to`` (only with a path).
        platforms: ``"linux/arm64"`` or a list: every entry takes these platforms, in place
            of the file's ``platforms:``. None: as the file says.
        src_creds: explicit source credentials, only when the file reads from a single
            registry. Otherwise use ``authfile`` or the keychain.
        dest_creds: explicit destination credentials, only when the file writes to a
            single registry.
        jobs: images checked and blobs transferred at once (one budget for the whole run).
        timeout: seconds a request may wait for a reply or stall (default:
            ``options.timeout``, 30).
        progress: per-blob events of the copies.
        dry_run: check what is there and report ``would-copy``/``would-move``/``unchanged``;
            write nothing.
        check: a dry run whose report says whether the mirror is in sync
            (``report.drift``, ``to_json()["in_sync"]``): a manifest ``HEAD`` at each end
            per image, nothing written (``sync --check``).
        fail_fast: stop at the first failure (images not started are not reported).
        shard: ``"I/N"`` or a ``Shard``: only the entries in it.
        observer: per-image events (started, finished with its result).
        authfile: a credentials file; wins over the file's ``defaults.authfile``.
        keychain: a custom credential source, asked instead of the standard files.
        options: TLS, retry and timeout settings as one value.
        ca_file: a PEM bundle trusted for every registry (the CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched first (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).
        verify: a verification policy replacing the file's ``defaults.verify`` (only with a
            path); an entry's own ``verify:`` wins. See the verification guide.
        verify_cache: a file keeping accepted decisions between runs.

    Returns:
        A [SyncReport][imgmirror.syncing.report.SyncReport]; ``report.failed`` counts
        failures (a failure never raises).

    Raises:
        InvalidSyncFile: the file is malformed (before anything is contacted).
        ShardError: ``shard`` is not ``I/N``.
        CredentialsError: explicit credentials with several registries on that side.
    """
    with ClientPool(
        options, authfile=authfile, keychain=keychain, jobs=jobs, timeout=timeout,
        ca_file=ca_file, certs_dirs=certs_dirs, insecure_registries=insecure_registries,
    ) as pool:  # fmt: skip
        return sync_in(
            pool, spec, to=to, platforms=platforms, src_creds=src_creds, dest_creds=dest_creds,
            progress=progress, dry_run=dry_run, check=check, fail_fast=fail_fast, shard=shard,
            observer=observer, verify=verify, verify_cache=verify_cache,
        )  # fmt: skip
