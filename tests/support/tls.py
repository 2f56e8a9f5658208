"""Certificates for tests: a CA, and server or client certificates it signs (PEM bytes)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast


@dataclass(frozen=True)
class Authority:
    certificate: Any  # cryptography's x509.Certificate
    key: Any  # its private key

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(self.certificate.public_bytes(serialization.Encoding.PEM))


def new_authority(name: str = "test-ca") -> Authority:
    """A self-signed CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def load_authority(certificate: Path, key: Path) -> Authority:
    """A CA from its PEM files (a cluster's pki/ca.crt and ca.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return Authority(
        x509.load_pem_x509_certificate(certificate.read_bytes()),
        cast(Any, serialization.load_pem_private_key(key.read_bytes(), None)),
    )


def issue(
    authority: Authority,
    common_name: str,
    *,
    ips: tuple[str, ...] = (),
    names: tuple[str, ...] = (),
    client: bool = False,
) -> tuple[bytes, bytes]:
    """A certificate the authority signs, for a server at these addresses and DNS names, or for a
    client (common_name is then its user name): its PEM, and its key's PEM (PKCS#8, unencrypted)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([usage]), False)
    )
    alternatives: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    alternatives += [x509.DNSName(name) for name in names]
    if alternatives:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), False)
    certificate = builder.sign(authority.key, hashes.SHA256())
    encoding = serialization.Encoding.PEM
    plain = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return certificate.public_bytes(encoding), key.private_bytes(encoding, *plain)
