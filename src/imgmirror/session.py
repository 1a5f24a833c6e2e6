"""A reusable session: every operation, over one pool of registry clients and one blob engine.

``with imgmirror.Session() as s: s.copy(...); s.save(...); s.push(...); s.sync(...)``: each
call shares the session's connections, tokens, ``/v2/`` checks and blob engine (its
[ClientPool][imgmirror.registry.pool.ClientPool]). The module-level one-shots
([imgmirror.copy][imgmirror.api.copy.copy] and the others, in [imgmirror.api][imgmirror.api]) each
open a
client pool, run the same operation and close it.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from imgmirror.archive.layout import ArchiveFormat
from imgmirror.auth.credentials import Credential, CredentialInput
from imgmirror.errors import ImgmirrorError
from imgmirror.model.artifacts import ReferrersArg
from imgmirror.model.manifest import Descriptor
from imgmirror.model.platform import Platform, PlatformsArg
from imgmirror.model.reference import Reference
from imgmirror.model.referrers import MAX_DEPTH
from imgmirror.ops import copy as ops_copy
from imgmirror.ops import lookup
from imgmirror.ops import push as ops_push
from imgmirror.ops import save as ops_save
from imgmirror.ops.copy import CopyResult
from imgmirror.ops.push import ConsentInput, PushResult
from imgmirror.ops.save import SaveResult
from imgmirror.ops.saverequest import ImageArg
from imgmirror.progress import ProgressListener
from imgmirror.referrers import discover
from imgmirror.referrers.discover import ReferrerListing
from imgmirror.registry.pool import DEFAULT_JOBS, ClientPool
from imgmirror.syncing import run
from imgmirror.syncing.file import SyncSpec
from imgmirror.syncing.report import SyncObserver, SyncReport
from imgmirror.syncing.shards import Shard
from imgmirror.verify.decision import Decision
from imgmirror.verify.gate import Gate, gate_for
from imgmirror.verify.policy import Policy

__all__ = ["DEFAULT_JOBS", "Session"]


class Session(ClientPool):
    """Registry clients, tokens and the blob engine, shared by every call made through it.

    Reusable: ``with imgmirror.Session(jobs=8, timeout=30) as s:`` then
    [copy][imgmirror.session.Session.copy], [save][imgmirror.session.Session.save],
    [push][imgmirror.session.Session.push], [sync][imgmirror.session.Session.sync] and the
    look-ups as often as needed share
    connections, tokens and the ``/v2/`` checks (three copies to one registry: one ``/v2/``
    request there). A session may be used from several threads at once.

    Args:
        options: connection settings for every client
            ([ClientOptions][imgmirror.transport.options.ClientOptions]).
        authfile: credentials file consulted first when a call gives no explicit credential
            (docker config.json, podman auth.json, .dockercfg or a pull Secret).
        keychain: where credentials come from when none are explicit. Default:
            [DefaultKeychain][imgmirror.auth.keychain.DefaultKeychain] (``authfile``, then the
            standard files). A custom keychain is asked after ``authfile`` (if given),
            instead of the standard files.
        jobs: blob transfers at once across everything done through this session; also each
            call's default ``jobs``.
        timeout: seconds a request may wait for a reply or stall (``options.timeout``
            otherwise); each call may give its own.
        ca_file: a PEM bundle trusted for every registry, on top of the system store (the
            CLI's ``--ca-file``).
        certs_dirs: ``certs.d`` directories searched per host before docker's and podman's
            (``--certs-dir``).
        insecure_registries: hosts reached over plain HTTP or unverified HTTPS
            (``--insecure-registry``).
    """

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
        referrers: ReferrersArg = None,
        referrers_optional: bool = False,
        verify: Policy | Gate | None = None,
    ) -> CopyResult:
        """Copy an image (or a whole index) from ``src`` to ``dst``; see
        [imgmirror.copy][imgmirror.api.copy.copy]. ``jobs`` and ``timeout`` default to the
        session's."""
        return ops_copy.copy(
            self.scoped(jobs, timeout), src, dst, platforms=platforms, src_creds=src_creds,
            dest_creds=dest_creds, progress=progress, referrers=referrers,
            referrers_optional=referrers_optional, verify=gate_for(verify),
        )  # fmt: skip

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
        referrers: ReferrersArg = None,
        referrers_optional: bool = False,
        verify: Policy | Gate | None = None,
    ) -> SaveResult:
        """Save images into one archive at ``path``; see [imgmirror.save][imgmirror.api.save.save].
        ``jobs`` and ``timeout`` default to the session's."""
        return ops_save.save(
            self.scoped(jobs, timeout), images, path, platforms=platforms, format=format,
            src_creds=src_creds, progress=progress, referrers=referrers,
            referrers_optional=referrers_optional, verify=gate_for(verify),
        )  # fmt: skip

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
        referrers: ReferrersArg = True,
        referrers_optional: bool = False,
    ) -> PushResult:
        """Push the images of an archive, layout or stream; see
        [imgmirror.push][imgmirror.api.push.push]. ``jobs`` and ``timeout`` default to the
        session's."""
        return ops_push.push(
            self.scoped(jobs, timeout), path, dest, platforms=platforms, dest_creds=dest_creds,
            progress=progress, to_archive_names=to_archive_names, image=image,
            referrers=referrers, referrers_optional=referrers_optional,
        )  # fmt: skip

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
        check: bool = False,
        fail_fast: bool = False,
        shard: Shard | str | None = None,
        observer: SyncObserver | None = None,
        verify: Policy | None = None,
        verify_cache: str | None = None,
    ) -> SyncReport:
        """Mirror every image a sync file selects; see [imgmirror.sync][imgmirror.api.sync.sync].

        ``jobs`` and ``timeout`` default to the session's; the file's ``authfile:`` is asked
        first when the session was given no ``authfile``.
        """
        return run.sync(
            self.scoped(jobs, timeout), spec, to=to, platforms=platforms, src_creds=src_creds,
            dest_creds=dest_creds, progress=progress, dry_run=dry_run, check=check,
            fail_fast=fail_fast, shard=shard, observer=observer, verify=verify,
            verify_cache=verify_cache,
        )  # fmt: skip

    def verify(
        self,
        image: str | Reference,
        policy: Policy | Gate,
        *,
        src_creds: CredentialInput = None,
    ) -> Decision:
        """Check ``image`` against a verification policy without copying it (see the
        verification guide): the decision, accepted or not (nothing is cached)."""
        gate = gate_for(policy)
        assert gate is not None
        reference = image if isinstance(image, Reference) else Reference.parse(image)
        client = self.client(
            reference.registry, Credential.coerce(src_creds, setting="src_creds"), role="source"
        )
        found = client.head_manifest(reference.repository, reference.identifier)
        if found is None:
            raise ImgmirrorError(f"{reference} does not exist at the source")
        return gate.decide(client, reference.repository, found.digest)[0]

    def list_tags(
        self, repository: str, *, creds: CredentialInput = None, page_size: int = 1000
    ) -> list[str]:
        """Every tag of ``repository``; see
        [imgmirror.list_tags][imgmirror.api.lookup.list_tags]."""
        return lookup.list_tags(self, repository, creds=creds, page_size=page_size)

    def list_repositories(
        self, registry: str, *, creds: CredentialInput = None, page_size: int = 1000
    ) -> list[str]:
        """Every repository of ``registry``; see
        [imgmirror.list_repositories][imgmirror.api.lookup.list_repositories]."""
        return lookup.list_repositories(self, registry, creds=creds, page_size=page_size)

    def image_digest(self, image: str, *, creds: CredentialInput = None) -> Descriptor:
        """What ``image`` resolves to, from one ``HEAD``; see
        [imgmirror.image_digest][imgmirror.api.lookup.image_digest]."""
        return lookup.image_digest(self, image, creds=creds)

    def inspect(
        self,
        image: str,
        *,
        platform: str | Platform | None = None,
        creds: CredentialInput = None,
    ) -> lookup.Inspection:
        """``image``'s manifest described; see [imgmirror.inspect][imgmirror.api.lookup.inspect]."""
        return lookup.inspect(self, image, platform=platform, creds=creds)

    def find_referrers(
        self,
        image: str | Reference,
        *,
        types: ReferrersArg = True,
        src_creds: CredentialInput = None,
        max_depth: int = MAX_DEPTH,
    ) -> ReferrerListing:
        """What refers to ``image``; see
        [imgmirror.find_referrers][imgmirror.api.referrers.find_referrers]."""
        return discover.find_referrers(
            self, image, types=types, src_creds=src_creds, max_depth=max_depth
        )
