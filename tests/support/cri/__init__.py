"""A CRI client over containerd's gRPC socket: what the kubelet asks of the runtime.

crictl is not in Debian 12, so the tests speak the Container Runtime Interface themselves:
:func:`stubs` compiles ``api.proto`` (the Kubernetes cri-api's, see ``SOURCE.md``) with
grpcio-tools into a temporary directory once per process, and :class:`CriClient` wraps the few
calls the node tests need: ``Version`` and ``Status`` (RuntimeService), ``PullImage`` (with an
``AuthConfig``, as the kubelet sends a pull Secret's credentials), ``ImageStatus`` and
``ListImages`` (ImageService).
"""

from __future__ import annotations

import atexit
import importlib
import re
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["CriClient", "CriError", "PulledImage", "stubs"]

PROTO = Path(__file__).with_name("api.proto")
_GOGO = re.compile(r'^(import "github\.com/gogo/.*|option \(gogoproto\..*)$', re.MULTILINE)
_lock = threading.Lock()
_stubs: tuple[ModuleType, ModuleType] | None = None


def stubs() -> tuple[ModuleType, ModuleType]:
    """``(cri_api_pb2, cri_api_pb2_grpc)``, generated on first use into a temporary
    directory removed at exit."""
    global _stubs  # noqa: PLW0603 - one generation per process
    with _lock:
        if _stubs is not None:
            return _stubs
        from grpc_tools import protoc

        out = Path(tempfile.mkdtemp(prefix="imgmirror-cri-"))
        atexit.register(shutil.rmtree, out, True)
        source = out / "cri_api.proto"
        source.write_text(_GOGO.sub("", PROTO.read_text()))
        code = protoc.main(
            ["grpc_tools.protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}",
             str(source)]
        )  # fmt: skip
        if code != 0:
            raise RuntimeError(f"protoc failed ({code}) on {PROTO}")
        sys.path.insert(0, str(out))
        try:
            _stubs = (
                importlib.import_module("cri_api_pb2"),
                importlib.import_module("cri_api_pb2_grpc"),
            )
        finally:
            sys.path.remove(str(out))
        return _stubs


class CriError(AssertionError):
    """A CRI call failed (an AssertionError so a test shows it as a failure)."""

    def __init__(self, call: str, code: str, details: str) -> None:
        super().__init__(f"CRI {call} failed: {code}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class PulledImage:
    """What ``ImageStatus`` says of one image."""

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]


class CriClient:
    """The kubelet's side of the CRI, over ``unix://SOCKET``."""

    def __init__(self, socket: Path | str, timeout: float = 60.0) -> None:
        import grpc

        self._grpc = grpc
        self.pb, grpc_mod = stubs()
        self.timeout = timeout
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.runtime = grpc_mod.RuntimeServiceStub(self.channel)
        self.images = grpc_mod.ImageServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CriClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, name: str, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout or self.timeout)
        except self._grpc.RpcError as exc:
            raise CriError(name, str(exc.code()), str(exc.details())) from None

    def version(self) -> Any:
        """``VersionResponse`` (runtime_name, runtime_version, runtime_api_version)."""
        return self._call("Version", self.runtime.Version, self.pb.VersionRequest(), 5)

    def status(self) -> dict[str, bool]:
        """The runtime's conditions: ``{"RuntimeReady": ..., "NetworkReady": ...}``."""
        reply = self._call("Status", self.runtime.Status, self.pb.StatusRequest())
        return {c.type: c.status for c in reply.status.conditions}

    def config(self) -> dict[str, Any]:
        """The runtime's own configuration, as ``Status(verbose=true)`` reports it
        (containerd: its CRI config, ``sandboxImage`` and ``registry`` included)."""
        import json

        reply = self._call("Status", self.runtime.Status, self.pb.StatusRequest(verbose=True))
        config: dict[str, Any] = json.loads(reply.info["config"])
        return config

    def pull(
        self,
        image: str,
        *,
        username: str = "",
        password: str = "",
        server_address: str = "",
    ) -> str:
        """``PullImage``, with an ``AuthConfig`` when credentials are given (as the kubelet
        does for a matching pull Secret); returns the image reference containerd reports."""
        auth = None
        if username or password:
            auth = self.pb.AuthConfig(
                username=username, password=password, server_address=server_address
            )
        request = self.pb.PullImageRequest(image=self.pb.ImageSpec(image=image), auth=auth)
        return str(self._call("PullImage", self.images.PullImage, request).image_ref)

    def image_status(self, image: str) -> PulledImage | None:
        """``ImageStatus``: what the kubelet checks before pulling (None: not present)."""
        request = self.pb.ImageStatusRequest(image=self.pb.ImageSpec(image=image))
        reply = self._call("ImageStatus", self.images.ImageStatus, request)
        if not reply.HasField("image") or not reply.image.id:
            return None
        found = reply.image
        return PulledImage(found.id, tuple(found.repo_tags), tuple(found.repo_digests))

    def list_images(self) -> list[PulledImage]:
        reply = self._call("ListImages", self.images.ListImages, self.pb.ListImagesRequest())
        return [PulledImage(i.id, tuple(i.repo_tags), tuple(i.repo_digests)) for i in reply.images]

    def remove(self, image: str) -> None:
        request = self.pb.RemoveImageRequest(image=self.pb.ImageSpec(image=image))
        self._call("RemoveImage", self.images.RemoveImage, request)
