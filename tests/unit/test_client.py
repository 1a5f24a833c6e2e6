"""RegistryClient behaviour a real registry will not show on demand, one handler per case."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import httpx
import pytest

from imgmirror.errors import NetworkError, RegistryError, VerificationError
from imgmirror.model.digest import Digest
from imgmirror.model.manifest import Descriptor
from imgmirror.transport.client import RegistryClient
from imgmirror.transport.options import ClientOptions
from imgmirror.transport.retry import RetryPolicy

MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
    b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,'
    b'"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},'
    b'"layers":[]}'
)
BLOB = b"layer bytes " * 1000


def blob_descriptor(data: bytes = BLOB) -> Descriptor:
    return Descriptor(
        media_type="application/vnd.oci.image.layer.v1.tar+gzip",
        digest=Digest.of(data),
        size=len(data),
    )


Handler = Callable[[httpx.Request], httpx.Response]


def make_client(
    handler: Handler, sleeps: list[float] | None = None, credential=None
) -> RegistryClient:
    from imgmirror.auth.credentials import Credential

    recorded = sleeps if sleeps is not None else []
    return RegistryClient(
        "registry.test",
        credential=Credential.coerce(credential),
        options=ClientOptions(
            retry=RetryPolicy(attempts=4, backoff=0.01, deadline=60), monolithic_bytes=0
        ),
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=recorded.append,
    )


def ping_ok(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/v2/":
        return httpx.Response(200)
    return None


def test_429_waits_for_retry_after_then_succeeds():
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        calls.append(request.url.path)
        if len(calls) == 1:
            return httpx.Response(
                429, headers={"Retry-After": "3"}, json={"errors": [{"code": "TOOMANYREQUESTS"}]}
            )
        return httpx.Response(
            200,
            content=MANIFEST,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )

    sleeps: list[float] = []
    manifest = make_client(handler, sleeps).get_manifest("app", "1")

    assert sleeps == [3.0]
    assert len(calls) == 2
    assert manifest.raw == MANIFEST


def test_503_then_success_backs_off():
    statuses = iter([503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        status = next(statuses)
        return httpx.Response(status, content=MANIFEST if status == 200 else b"busy")

    sleeps: list[float] = []
    make_client(handler, sleeps).get_manifest("app", "1")

    assert len(sleeps) == 2
    assert all(0 < s <= 0.04 for s in sleeps)


def test_retries_are_bounded():
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count
        if (ping := ping_ok(request)) is not None:
            return ping
        count += 1
        return httpx.Response(502, text="bad gateway")

    with pytest.raises(RegistryError) as caught:
        make_client(handler).get_manifest("app", "1")

    assert count == 4
    assert caught.value.status == 502


def test_streaming_body_is_never_retried_blindly():
    patches = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal patches
        if (ping := ping_ok(request)) is not None:
            return ping
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/app/blobs/uploads/u1"})
        if request.method == "PATCH":
            patches += 1
            request.read()
            return httpx.Response(503)
        raise AssertionError(request)

    with pytest.raises(RegistryError):
        make_client(handler).upload_blob("app", blob_descriptor(), iter([BLOB]))

    assert patches == 1


def test_redirected_blob_get_carries_no_authorization():
    seen: dict[str, httpx.Headers] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        seen[host] = request.headers
        if host == "storage.test":
            return httpx.Response(200, content=BLOB)
        if "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        if request.url.path == "/v2/":
            return httpx.Response(200)
        return httpx.Response(307, headers={"Location": "https://storage.test/b?X-Sig=abc"})

    client = make_client(handler, credential="alice:secret")
    with client.open_blob("app", blob_descriptor()) as chunks:
        assert b"".join(chunks) == BLOB

    expected = "Basic " + base64.b64encode(b"alice:secret").decode()
    assert seen["registry.test"]["authorization"] == expected
    assert "authorization" not in seen["storage.test"]


def test_short_blob_is_a_verification_error():
    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        return httpx.Response(200, content=BLOB[:-10])

    client = make_client(handler)
    with pytest.raises(VerificationError), client.open_blob("app", blob_descriptor()) as chunks:
        b"".join(chunks)


def test_upload_keeps_location_query_and_merges_digest():
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        requests.append(request)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/app/blobs/uploads/u1?_state=one"})
        if request.method == "PATCH":
            assert request.read() == BLOB
            assert request.headers["content-length"] == str(len(BLOB))
            assert "transfer-encoding" not in request.headers
            return httpx.Response(
                202,
                headers={"Location": "https://registry.test/v2/app/blobs/uploads/u1?_state=two"},
            )
        return httpx.Response(201)

    descriptor = blob_descriptor()
    make_client(handler).upload_blob("app", descriptor, iter([BLOB[:5000], BLOB[5000:]]))

    put = requests[-1]
    assert put.method == "PUT"
    assert put.url.params["_state"] == "two"
    assert put.url.params["digest"] == str(descriptor.digest)
    assert str(put.url).count("?") == 1


def test_mount_202_continues_on_the_opened_session():
    posts: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        if request.method == "POST":
            posts.append(request.url)
            return httpx.Response(202, headers={"Location": "/v2/dst/blobs/uploads/s1"})
        if request.method == "PATCH":
            assert request.url.path == "/v2/dst/blobs/uploads/s1"
            request.read()
            return httpx.Response(202, headers={"Location": "/v2/dst/blobs/uploads/s1"})
        return httpx.Response(201)

    client = make_client(handler)
    descriptor = blob_descriptor()
    mount = client.mount_blob("dst", descriptor.digest, "src")
    assert not mount.mounted
    client.upload_blob("dst", descriptor, iter([BLOB]), location=mount.location)

    assert len(posts) == 1
    assert posts[0].params["from"] == "src"


def test_tags_follow_link_pagination():
    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        if "last" not in request.url.params:
            return httpx.Response(
                200,
                json={"name": "app", "tags": ["a", "b"]},
                headers={"Link": '</v2/app/tags/list?n=2&last=b>; rel="next"'},
            )
        return httpx.Response(200, json={"name": "app", "tags": ["c"]})

    assert make_client(handler).list_tags("app", page_size=2) == ["a", "b", "c"]


def test_manifest_by_digest_must_match():
    other = hashlib.sha256(b"something else").hexdigest()

    def handler(request: httpx.Request) -> httpx.Response:
        if (ping := ping_ok(request)) is not None:
            return ping
        return httpx.Response(200, content=MANIFEST)

    with pytest.raises(VerificationError):
        make_client(handler).get_manifest("app", f"sha256:{other}")


def test_connection_refused_is_a_network_error_naming_the_host():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(NetworkError) as caught:
        make_client(handler).ping()

    assert "registry.test" in str(caught.value)


def test_ping_retries_a_busy_registry():
    statuses = iter([503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses))

    sleeps: list[float] = []
    client = make_client(handler, sleeps)
    client.ping()

    assert client.base_url == "https://registry.test"
    assert len(sleeps) == 1


def test_deferred_trust_fails_closed_until_loaded(tmp_path):
    import ssl

    from imgmirror.transport.tls import DeferredTrust

    trust = DeferredTrust("127.0.0.1:5000", ClientOptions(certs_dirs=(str(tmp_path),)))
    assert trust.context.verify_mode == ssl.CERT_REQUIRED
    assert trust.context.check_hostname
    assert trust.context.cert_store_stats()["x509_ca"] == 0
    trust.load()
    trust.load()  # once is enough; a second call is free
    assert trust.context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("registry", ["127.0.0.1:5000", "registry.test"])
def test_a_429_on_the_ping_waits_for_retry_after(registry):
    """Loopback registries are probed over plain HTTP first; a 429 there is an answer of a
    plain-HTTP registry and is retried after its Retry-After, like any other request."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if len(seen) <= 2:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return httpx.Response(200)

    sleeps: list[float] = []
    client = RegistryClient(
        registry,
        options=ClientOptions(retry=RetryPolicy(attempts=5, deadline=60)),
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=sleeps.append,
    )
    client.ping()

    scheme = "http" if registry.startswith("127.") else "https"
    assert client.base_url == f"{scheme}://{registry}"
    assert sleeps == [7.0, 7.0]
    assert seen == [f"{scheme}://{registry}/v2/"] * 3


def test_a_429_on_the_ping_gives_up_at_the_deadline():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    client = RegistryClient(
        "127.0.0.1:5000",
        options=ClientOptions(retry=RetryPolicy(attempts=10, max_delay=30, deadline=70)),
        http=httpx.Client(
            transport=httpx.MockTransport(
                lambda request: httpx.Response(429, headers={"Retry-After": "25"})
            )
        ),
        sleep=sleep,
        clock=lambda: now[0],
    )
    with pytest.raises(RegistryError) as caught:
        client.ping()

    assert sleeps == [25.0, 25.0]  # a third wait would end past the 70 s deadline
    assert caught.value.status == 429


def test_callers_waiting_for_a_failing_ping_share_its_outcome():
    """Eight threads need the registry while its ping waits out 429s: one ping runs its
    retry budget; the others get its error rather than a budget each."""
    import threading
    import time

    requests: list[str] = []
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(str(request.url))
        return httpx.Response(429, headers={"Retry-After": "1"})

    def sleep(seconds: float) -> None:
        release.wait(5)

    client = RegistryClient(
        "registry.test",
        options=ClientOptions(retry=RetryPolicy(attempts=3, deadline=60)),
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=sleep,
    )
    outcomes: list[BaseException] = []

    def call() -> None:
        try:
            client.ping()
        except RegistryError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # the seven others are waiting for the first one's ping by now
    release.set()
    for thread in threads:
        thread.join(10)

    assert len(outcomes) == 8
    assert len(requests) == 3  # one ping, its three attempts
    with pytest.raises(RegistryError):
        client.ping()  # a later caller pings again
    assert len(requests) == 6
