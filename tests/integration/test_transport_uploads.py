"""Fewer round trips (issue 13): small blobs go in one PUT (the chunked path when a registry
refuses that), and clients share one TLS context per trust setting without reference cycles."""

from __future__ import annotations

import gc
import weakref
from typing import ClassVar

import pytest

from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.tls import trust_for
from tests.support.handlers import Quiet, serving
from tests.support.registry import Registry


def _descriptor(data: bytes) -> Descriptor:
    return Descriptor(media_type="application/octet-stream", digest=Digest.of(data), size=len(data))


@pytest.mark.registry
def test_small_blob_is_one_monolithic_put(anon_registry: Registry):
    data = b"small layer " * 1000
    with RegistryClient(anon_registry.host) as client:
        client.upload_blob("app", _descriptor(data), iter([data[:5000], data[5000:]]))
        with client.open_blob("app", _descriptor(data)) as chunks:
            assert b"".join(chunks) == data

    log = anon_registry.log_tail(200)
    assert '"PUT /v2/app/blobs/uploads/' in log
    assert '"PATCH ' not in log


class _NoMonolithic(Quiet):
    """A registry that refuses a PUT carrying data (only PATCH then an empty PUT works)."""

    requests: ClassVar[list[str]] = []
    stored = bytearray()

    def do_GET(self) -> None:
        self.reply(200, b"{}")

    def do_POST(self) -> None:
        self.requests.append("POST")
        self.reply(202, headers={"Location": f"/v2/app/blobs/uploads/s{len(self.requests)}"})

    def do_PATCH(self) -> None:
        self.requests.append("PATCH")
        self.stored += self.drain()
        self.reply(202, headers={"Location": self.path})

    def do_PUT(self) -> None:
        body = self.drain()
        self.requests.append(f"PUT {len(body)}")
        if body:
            self.reply(
                405,
                b'{"errors":[{"code":"UNSUPPORTED","message":"use PATCH"}]}',
                {"Content-Type": "application/json"},
            )
        else:
            self.reply(201)


def test_a_refused_monolithic_put_falls_back_to_the_chunked_path():
    data = b"tiny"
    with serving(_NoMonolithic) as host, RegistryClient(host) as client:
        client.upload_blob("app", _descriptor(data), [data])

    assert _NoMonolithic.requests == ["POST", "PUT 4", "POST", "PATCH", "PUT 0"]
    assert bytes(_NoMonolithic.stored) == data


def test_clients_share_one_tls_context_per_trust_setting(tmp_path):
    options = ClientOptions(certs_dirs=(str(tmp_path),))
    clients = [RegistryClient(f"registry{i}.test", options=options) for i in range(20)]
    contexts = {id(c._trust.context) for c in clients if c._trust is not None}
    for client in clients:
        client.close()
    assert len(contexts) == 1
    other = ClientOptions(certs_dirs=(str(tmp_path),), insecure_registries=frozenset({"x.test"}))
    assert trust_for("x.test", other) is not trust_for("y.test", other)


def test_a_closed_client_is_freed_without_the_garbage_collector():
    gc.disable()
    try:
        client = RegistryClient("registry.test", credential=None)
        client.close()
        ref = weakref.ref(client)
        del client
        assert ref() is None
    finally:
        gc.enable()
