"""Credentials files, credential helpers, identity tokens and TLS against real registries.

Every test runs with an isolated environment: ``DOCKER_CONFIG`` and ``HOME`` point into the
test's tmp dir and ``REGISTRY_AUTH_FILE``/``XDG_RUNTIME_DIR`` are unset unless a test sets them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from pathlib import Path

import httpx
import pytest
import yaml

import imgmirror
from imgmirror import ClientOptions
from imgmirror.auth.keychain import DefaultKeychain, StaticKeychain
from imgmirror.errors import AuthenticationError, CredentialsError, TLSVerificationError
from tests.support.images import make_image
from tests.support.registry import Registry, RegistryFactory
from tests.support.seed import seed
from tests.support.tools import run_cli

pytestmark = [pytest.mark.registry]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private ``$DOCKER_CONFIG`` directory (and ``HOME``)."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return config_dir


def write_json(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def auths(host: str, user: str, password: str) -> dict[str, object]:
    return {"auths": {host: {"auth": b64(f"{user}:{password}")}}}


@pytest.fixture
def private_token_registry(registry_factory: RegistryFactory) -> Registry:
    """Token auth where even pull needs ``pusher:pushpass``."""
    return registry_factory(name="private", auth="token", anonymous_pull=False)


def seeded(registry: Registry, repo: str = "src/app", marker: str = "auth") -> str:
    image = make_image(marker=marker)
    seed(registry, repo, "1", image)
    return image.digest


def tls_options(registry: Registry) -> ClientOptions:
    return ClientOptions(ca_file=str(registry.ca_file))


# -- credential files ---------------------------------------------------------------------------


def test_docker_config_json_is_read(docker_config, basic_registry, anon_registry):
    digest = seeded(basic_registry)
    write_json(
        docker_config / "config.json",
        auths(f"https://{basic_registry.host}/v1/", "alice", "secret"),
    )

    result = imgmirror.copy(
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        options=tls_options(basic_registry),
    )
    assert result.digest == digest


def _authfile_variants(host: str) -> dict[str, str]:
    config = {
        "auths": {host: {"username": "alice", "password": "secret", "auth": b64("alice:secret")}}
    }
    legacy = {host: {"auth": b64("alice:secret"), "email": "a@example.com"}}
    config_text = json.dumps(config)
    legacy_text = json.dumps(legacy)
    return {
        "config.json": config_text,
        "auth.json-username-password": json.dumps(
            {"auths": {host: {"username": "alice", "password": "secret"}}}
        ),
        ".dockercfg": legacy_text,
        "secret-yaml-data": yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "pull", "namespace": "ns"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": b64(config_text)},
            }
        ),
        "secret-json-stringData": json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "pull"},
                "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": config_text},
            }
        ),
        "secret-dockercfg": yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "pull"},
                "type": "kubernetes.io/dockercfg",
                "data": {".dockercfg": b64(legacy_text)},
            }
        ),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "config.json",
        "auth.json-username-password",
        ".dockercfg",
        "secret-yaml-data",
        "secret-json-stringData",
        "secret-dockercfg",
    ],
)
def test_authfile_kinds(kind, docker_config, tmp_path, basic_registry, anon_registry):
    digest = seeded(basic_registry)
    authfile = tmp_path / "authfile"
    authfile.write_text(_authfile_variants(basic_registry.host)[kind])

    result = imgmirror.copy(
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        authfile=str(authfile),
        options=tls_options(basic_registry),
    )
    assert result.digest == digest


def test_precedence_explicit_then_authfile_then_standard_files(
    docker_config, tmp_path, monkeypatch, basic_registry, anon_registry
):
    seeded(basic_registry)
    host = basic_registry.host
    src, dst = basic_registry.ref("src/app", "1"), anon_registry.ref("dst/app", "1")
    opts = tls_options(basic_registry)
    wrong = write_json(tmp_path / "wrong.json", auths(host, "alice", "wrong-password"))
    right = write_json(tmp_path / "right.json", auths(host, "alice", "secret"))

    # explicit credentials beat a wrong authfile
    imgmirror.copy(src, dst, src_creds="alice:secret", authfile=str(wrong), options=opts)
    # --authfile beats a wrong ~/.docker/config.json
    write_json(docker_config / "config.json", auths(host, "alice", "wrong-password"))
    imgmirror.copy(src, dst, authfile=str(right), options=opts)
    # $REGISTRY_AUTH_FILE beats it too
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(right))
    imgmirror.copy(src, dst, options=opts)
    # then $XDG_RUNTIME_DIR/containers/auth.json
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    runtime = tmp_path / "run"
    write_json(runtime / "containers" / "auth.json", auths(host, "alice", "secret"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    imgmirror.copy(src, dst, options=opts)
    # and the wrong docker config alone fails, naming the user, never the password
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    with pytest.raises(AuthenticationError) as info:
        imgmirror.copy(src, dst, options=opts)
    assert "wrong-password" not in str(info.value)
    assert b64("alice:wrong-password") not in str(info.value)


def test_pluggable_keychain(docker_config, basic_registry, anon_registry):
    digest = seeded(basic_registry)
    result = imgmirror.copy(
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        keychain=StaticKeychain({basic_registry.host: "alice:secret"}),
        options=tls_options(basic_registry),
    )
    assert result.digest == digest


def test_missing_authfile_is_named(docker_config, tmp_path, anon_registry):
    seeded(anon_registry)
    with pytest.raises(CredentialsError) as info:
        imgmirror.copy(
            anon_registry.ref("src/app", "1"),
            anon_registry.ref("dst/app", "1"),
            authfile=str(tmp_path / "nope.json"),
        )
    assert str(tmp_path / "nope.json") in str(info.value)


# -- token registry that needs credentials ------------------------------------------------------


def test_token_registry_needs_credentials(docker_config, private_token_registry, anon_registry):
    seeded(private_token_registry)
    src = private_token_registry.ref("src/app", "1")
    with pytest.raises(AuthenticationError) as info:
        imgmirror.copy(src, anon_registry.ref("dst/app", "1"))
    assert info.value.role == "source"
    assert "credentials for the source registry" in str(info.value)
    assert "--src-creds" not in str(info.value)  # the library names no CLI flags

    write_json(
        docker_config / "config.json", auths(private_token_registry.host, "pusher", "pushpass")
    )
    imgmirror.copy(src, anon_registry.ref("dst/app", "1"))


def _refresh_token(registry: Registry) -> str:
    ts = registry.token_server
    assert ts is not None
    reply = httpx.post(
        ts.realm,
        data={
            "grant_type": "password",
            "username": "pusher",
            "password": "pushpass",
            "service": ts.service,
            "client_id": "test",
            "access_type": "offline",
            "scope": "",
        },
    )
    reply.raise_for_status()
    token: str = reply.json()["refresh_token"]
    return token


def test_identity_token_uses_oauth2_refresh(docker_config, private_token_registry, anon_registry):
    digest = seeded(private_token_registry)
    refresh = _refresh_token(private_token_registry)
    ts = private_token_registry.token_server
    assert ts is not None
    ts.clear_requests()
    write_json(
        docker_config / "config.json",
        {"auths": {private_token_registry.host: {"identitytoken": refresh}}},
    )

    result = imgmirror.copy(
        private_token_registry.ref("src/app", "1"), anon_registry.ref("d/a", "1")
    )

    assert result.digest == digest
    grants = [r.grant_type for r in ts.issued()]
    assert grants
    assert set(grants) == {"refresh_token"}


def test_registry_token_is_used_as_is(docker_config, private_token_registry, anon_registry):
    digest = seeded(private_token_registry)
    ts = private_token_registry.token_server
    assert ts is not None
    reply = httpx.get(
        ts.realm,
        params={"service": ts.service, "scope": "repository:src/app:pull"},
        auth=("pusher", "pushpass"),
    )
    bearer = reply.json()["token"]
    ts.clear_requests()
    write_json(
        docker_config / "config.json",
        {"auths": {private_token_registry.host: {"registrytoken": bearer}}},
    )

    result = imgmirror.copy(
        private_token_registry.ref("src/app", "1"), anon_registry.ref("d/a", "1")
    )

    assert result.digest == digest
    assert ts.issued() == []


# -- credential helpers ---------------------------------------------------------------------------

HELPER = """#!/bin/sh
# a fake docker credential helper: knows one registry, logs each call
[ "$1" = get ] || { echo "unsupported verb $1"; exit 1; }
read -r url
echo "$url" >> "@LOG@"
if [ "$url" = "@HOST@" ]; then
    printf '{"ServerURL":"%s","Username":"@USER@","Secret":"@SECRET@"}\\n' "$url"
    exit 0
fi
echo "credentials not found in native keychain"
exit 1
"""


def helper_script(log: Path, host: str, user: str, secret: str) -> str:
    return (
        HELPER.replace("@LOG@", str(log))
        .replace("@HOST@", host)
        .replace("@USER@", user)
        .replace("@SECRET@", secret)
    )


def install_helper(bin_dir: Path, name: str, body: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / f"docker-credential-{name}"
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def helper_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bin_dir


@pytest.mark.parametrize("style", ["credHelpers", "credsStore"])
def test_credential_helper(style, docker_config, helper_bin, basic_registry, anon_registry):
    digest = seeded(basic_registry)
    log = helper_bin.parent / "helper.log"
    install_helper(
        helper_bin,
        "fake",
        helper_script(log, basic_registry.host, "alice", "secret"),
    )
    config = (
        {"credHelpers": {basic_registry.host: "fake"}}
        if style == "credHelpers"
        else {"auths": {}, "credsStore": "fake"}
    )
    write_json(docker_config / "config.json", config)

    result = imgmirror.copy(
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        options=tls_options(basic_registry),
    )

    assert result.digest == digest
    asked = log.read_text().split()
    assert basic_registry.host in asked
    if style == "credsStore":
        # "credentials not found" for the destination meant anonymous, not an error
        assert anon_registry.host in asked


def test_helper_identity_token(
    docker_config, helper_bin, tmp_path, private_token_registry, anon_registry
):
    digest = seeded(private_token_registry)
    refresh = _refresh_token(private_token_registry)
    install_helper(
        helper_bin,
        "fake",
        helper_script(tmp_path / "log", private_token_registry.host, "<token>", refresh),
    )
    write_json(
        docker_config / "config.json", {"credHelpers": {private_token_registry.host: "fake"}}
    )
    result = imgmirror.copy(
        private_token_registry.ref("src/app", "1"), anon_registry.ref("d/a", "1")
    )
    assert result.digest == digest


def test_missing_helper_is_named(docker_config, helper_bin, anon_registry):
    seeded(anon_registry)
    write_json(docker_config / "config.json", {"credHelpers": {anon_registry.host: "missing"}})
    with pytest.raises(CredentialsError) as info:
        imgmirror.copy(anon_registry.ref("src/app", "1"), anon_registry.ref("dst/app", "1"))
    message = str(info.value)
    assert "docker-credential-missing" in message
    assert anon_registry.host in message
    assert str(docker_config / "config.json") in message


def test_failing_helper_is_named(docker_config, helper_bin, anon_registry):
    seeded(anon_registry)
    install_helper(helper_bin, "broken", "#!/bin/sh\necho 'keychain is locked'\nexit 3\n")
    write_json(docker_config / "config.json", {"credsStore": "broken"})
    with pytest.raises(CredentialsError) as info:
        imgmirror.copy(anon_registry.ref("src/app", "1"), anon_registry.ref("dst/app", "1"))
    message = str(info.value)
    assert "docker-credential-broken failed" in message
    assert "keychain is locked" in message
    assert anon_registry.host in message


def test_keychain_resolves_hub_key_for_helper(docker_config, helper_bin, tmp_path):
    log = tmp_path / "log"
    install_helper(
        helper_bin,
        "fake",
        helper_script(log, "https://index.docker.io/v1/", "hub", "pw"),
    )
    write_json(docker_config / "config.json", {"credsStore": "fake"})
    credential = DefaultKeychain().resolve("docker.io")
    assert credential is not None
    assert credential.username == "hub"
    assert log.read_text().split() == ["https://index.docker.io/v1/"]


# -- TLS ------------------------------------------------------------------------------------------


def test_tls_unknown_ca_error_names_the_fixes(docker_config, basic_registry, anon_registry):
    seeded(basic_registry)
    with pytest.raises(TLSVerificationError) as info:
        imgmirror.copy(
            basic_registry.ref("src/app", "1"),
            anon_registry.ref("dst/app", "1"),
            src_creds="alice:secret",
            options=ClientOptions(certs_dirs=()),
        )
    message = str(info.value)
    assert f"/etc/docker/certs.d/{basic_registry.host}/ca.crt" in message
    assert f"mark {basic_registry.host} insecure" in message
    assert "--" not in message  # the library names no CLI options; the CLI adds them


@pytest.mark.parametrize("how", ["ca-file", "certs-dir", "insecure"])
def test_tls_trust_options(how, docker_config, tmp_path, basic_registry, anon_registry):
    digest = seeded(basic_registry)
    assert basic_registry.ca_file is not None
    if how == "ca-file":
        options = ClientOptions(ca_file=str(basic_registry.ca_file), certs_dirs=())
    elif how == "certs-dir":
        certs_d = tmp_path / "certs.d"
        (certs_d / basic_registry.host).mkdir(parents=True)
        shutil.copy(basic_registry.ca_file, certs_d / basic_registry.host / "ca.crt")
        options = ClientOptions(certs_dirs=(str(certs_d),))
    else:
        options = ClientOptions(insecure_registries=frozenset({basic_registry.host}), certs_dirs=())
    result = imgmirror.copy(
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        src_creds="alice:secret",
        options=options,
    )
    assert result.digest == digest


def test_mutual_tls_with_client_cert_in_certs_dir(
    docker_config, tmp_path, mtls_registry, anon_registry
):
    digest = seeded(mtls_registry)
    assert mtls_registry.client_cert is not None
    assert mtls_registry.client_key is not None
    assert mtls_registry.ca_file is not None
    certs_d = tmp_path / "certs.d"
    host_dir = certs_d / mtls_registry.host
    host_dir.mkdir(parents=True)
    shutil.copy(mtls_registry.ca_file, host_dir / "ca.crt")

    # without the client pair the registry refuses the handshake, and the error says what to do
    with pytest.raises(imgmirror.NetworkError) as info:
        imgmirror.copy(
            mtls_registry.ref("src/app", "1"),
            anon_registry.ref("dst/app", "1"),
            options=ClientOptions(certs_dirs=(str(certs_d),)),
        )
    message = str(info.value)
    assert "client certificate" in message
    assert str(host_dir / "client.cert") in message or "client.cert" in message

    shutil.copy(mtls_registry.client_cert, host_dir / "client.cert")
    shutil.copy(mtls_registry.client_key, host_dir / "client.key")
    result = imgmirror.copy(
        mtls_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        options=ClientOptions(certs_dirs=(str(certs_d),)),
    )
    assert result.digest == digest


# -- the CLI: flags reach the library, secrets stay out of --debug -----------------------------


def test_cli_tls_and_authfile_flags(docker_config, tmp_path, basic_registry, anon_registry):
    digest = seeded(basic_registry)
    authfile = write_json(tmp_path / "auth.json", auths(basic_registry.host, "alice", "secret"))
    certs_d = tmp_path / "certs.d"
    (certs_d / basic_registry.host).mkdir(parents=True)
    assert basic_registry.ca_file is not None
    shutil.copy(basic_registry.ca_file, certs_d / basic_registry.host / "ca.crt")
    src, dst = basic_registry.ref("src/app", "1"), anon_registry.ref("dst/app", "1")

    no_ca = run_cli("copy", src, dst, "--authfile", str(authfile), "--quiet")
    assert no_ca.returncode == 1
    assert f"--insecure-registry {basic_registry.host}" in no_ca.stderr
    assert "--ca-file FILE" in no_ca.stderr

    for flags in (
        ["--ca-file", str(basic_registry.ca_file)],
        ["--certs-dir", str(certs_d)],
        ["--insecure-registry", basic_registry.host],
    ):
        proc = run_cli("copy", src, dst, "--authfile", str(authfile), "--json", *flags)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.splitlines()[-1])["digest"] == digest


def test_debug_log_never_shows_the_password(docker_config, basic_registry, anon_registry):
    seeded(basic_registry)
    password = "Wr0ng-Passw0rd-Xyz"
    proc = run_cli(
        "--debug",
        "copy",
        basic_registry.ref("src/app", "1"),
        anon_registry.ref("dst/app", "1"),
        "--src-creds",
        f"alice:{password}",
        "--ca-file",
        str(basic_registry.ca_file),
    )
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert "alice" in output  # the user is named …
    assert password not in output  # … the password is not, in any form
    assert b64(f"alice:{password}") not in output
    assert b64(password) not in output
