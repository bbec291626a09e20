"""Certificates for the TLS tests, made fresh: two CAs, a server certificate, client certificates.

``Pki.create(directory)`` writes them as PEM files, as an operator would hand
them to the server (RATING_TLS_CERT, RATING_TLS_KEY, RATING_TLS_CLIENT_CA), and
keeps the bytes for the clients.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM bytes and as files."""

    cert: bytes
    key: bytes
    cert_path: Path
    key_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class Authority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, common_name: str, directory: Path) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name(common_name)
        self._directory = directory
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
            .sign(self._key, hashes.SHA256())
        )
        self.cert = self.certificate.public_bytes(serialization.Encoding.PEM)
        self.cert_path = directory / f"{common_name}.pem"
        self.cert_path.write_bytes(self.cert)

    def issue(self, common_name: str, *, server: bool) -> Issued:
        """A leaf certificate: for localhost and 127.0.0.1 when ``server``, else a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        key_pem = _key_pem(key)
        cert_path = self._directory / f"{common_name}.crt"
        key_path = self._directory / f"{common_name}.key"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key_pem)
        return Issued(cert, key_pem, cert_path, key_path)


@dataclass(frozen=True)
class Pki:
    """Everything the TLS tests need, under one directory."""

    ca: Authority
    other_ca: Authority
    server: Issued
    client: Issued
    stranger: Issued
    """A client certificate issued by ``other_ca``: the server must not accept it."""

    @classmethod
    def create(cls, directory: Path) -> Pki:
        directory.mkdir(parents=True, exist_ok=True)
        ca = Authority("test-ca", directory)
        other_ca = Authority("other-ca", directory)
        return cls(
            ca=ca,
            other_ca=other_ca,
            server=ca.issue("server", server=True),
            client=ca.issue("client", server=False),
            stranger=other_ca.issue("stranger", server=False),
        )
