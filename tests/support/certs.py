"""Test PKI: a CA, a loopback server certificate, a client certificate and token-signing keys.

Everything is written as PEM files into one directory. Keys are EC P-256 (fast to generate)
except the RS256 token key, which is RSA 2048.

Layout of the directory::

    ca.crt ca.key                      test CA (signs server and client certificates)
    server.crt server.key              CN=localhost, SANs localhost, 127.0.0.1, ::1
    client.crt client.key              CN=imgmirror-test-client (mutual TLS), clientAuth
    token-rsa.crt token-rsa.key        self-signed, signs RS256 registry tokens
    token-ec.crt token-ec.key          self-signed, signs ES256 registry tokens
    token-bundle.crt                   both token certificates (registry rootcertbundle)
    certdir-ca/ca.crt                  a containers-style --cert-dir trusting the CA
    certdir-client/{ca.crt,client.cert,client.key}   the same plus the client pair
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

__all__ = ["PrivateKey", "SigningKey", "TestPKI", "make_pki"]


@dataclass(frozen=True)
class SigningKey:
    """A token-signing key with its self-signed certificate."""

    key: PrivateKey
    cert: x509.Certificate
    key_file: Path
    cert_file: Path

    @property
    def algorithm(self) -> str:
        """JWS algorithm name for this key (``RS256`` or ``ES256``)."""
        return "RS256" if isinstance(self.key, rsa.RSAPrivateKey) else "ES256"

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class TestPKI:
    """Paths (and a few objects) of the generated test PKI."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    token_rsa: SigningKey
    token_ec: SigningKey
    token_bundle: Path
    cert_dir: Path
    """containers-style cert dir (for ``skopeo --cert-dir``) holding only ``ca.crt``."""
    client_cert_dir: Path
    """containers-style cert dir with ``ca.crt`` plus ``client.cert``/``client.key``."""

    def signing_key(self, algorithm: str = "RS256") -> SigningKey:
        if algorithm == "RS256":
            return self.token_rsa
        if algorithm == "ES256":
            return self.token_ec
        raise ValueError(f"unsupported token algorithm {algorithm!r}")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "imgmirror tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(days=1)).not_valid_after(
        now + dt.timedelta(days=30)
    )


def _write_key(path: Path, key: PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _ec_key()
    name = _name("imgmirror test CA")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


def _self_signed(key: PrivateKey, common_name: str) -> x509.Certificate:
    name = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    return _validity(builder).sign(key, hashes.SHA256())


def make_pki(
    directory: Path, extra_ips: Sequence[str] = (), extra_names: Sequence[str] = ()
) -> TestPKI:
    """Generate the whole test PKI into ``directory`` (created if missing).

    ``extra_ips``: more addresses the server certificate is valid for (the latency lab's);
    ``extra_names``: more DNS names (the node lab's ``registry.k8s.io``, ``registry.corp``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca()
    server_key, server_cert = _leaf(
        ca_key,
        ca_cert,
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in extra_ips),
            *(x509.DNSName(name) for name in extra_names),
        ],
    )
    client_key, client_cert = _leaf(
        ca_key, ca_cert, "imgmirror-test-client", ExtendedKeyUsageOID.CLIENT_AUTH
    )

    paths = {
        name: directory / name
        for name in (
            "ca.crt",
            "ca.key",
            "server.crt",
            "server.key",
            "client.crt",
            "client.key",
            "token-bundle.crt",
        )
    }
    _write_cert(paths["ca.crt"], ca_cert)
    _write_key(paths["ca.key"], ca_key)
    _write_cert(paths["server.crt"], server_cert)
    _write_key(paths["server.key"], server_key)
    _write_cert(paths["client.crt"], client_cert)
    _write_key(paths["client.key"], client_key)

    signing: dict[str, SigningKey] = {}
    token_keys: list[tuple[str, PrivateKey]] = [
        ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ec", _ec_key()),
    ]
    for kind, key in token_keys:
        cert = _self_signed(key, f"imgmirror test token signer ({kind})")
        key_file, cert_file = directory / f"token-{kind}.key", directory / f"token-{kind}.crt"
        _write_key(key_file, key)
        _write_cert(cert_file, cert)
        signing[kind] = SigningKey(key=key, cert=cert, key_file=key_file, cert_file=cert_file)
    paths["token-bundle.crt"].write_bytes(
        signing["rsa"].cert_file.read_bytes() + signing["ec"].cert_file.read_bytes()
    )

    cert_dir = directory / "certdir-ca"
    client_cert_dir = directory / "certdir-client"
    for d in (cert_dir, client_cert_dir):
        d.mkdir(exist_ok=True)
        shutil.copyfile(paths["ca.crt"], d / "ca.crt")
    shutil.copyfile(paths["client.crt"], client_cert_dir / "client.cert")
    shutil.copyfile(paths["client.key"], client_cert_dir / "client.key")

    return TestPKI(
        directory=directory,
        ca_cert=paths["ca.crt"],
        ca_key=paths["ca.key"],
        server_cert=paths["server.crt"],
        server_key=paths["server.key"],
        client_cert=paths["client.crt"],
        client_key=paths["client.key"],
        token_rsa=signing["rsa"],
        token_ec=signing["ec"],
        token_bundle=paths["token-bundle.crt"],
        cert_dir=cert_dir,
        client_cert_dir=client_cert_dir,
    )
