"""Test certificates made at test time with the `cryptography` package: a CA, server
certificates for 127.0.0.1/localhost, client certificates (also expired ones, or from a foreign
CA), written as PEM files for the broker (`--ssl-*-location`) and the clients.

    ca = CertAuthority(tmp_path / "ca", "samsa-test-ca")
    server = ca.issue("broker", sans=["localhost", "127.0.0.1"])
    alice = ca.issue("alice", client=True)
    old = ca.issue("old", client=True, expired=True)
    server.cert, server.key, ca.cert          # paths
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    """One certificate and its key as PEM files."""
    name: str
    cert: Path
    key: Path

    def chain_and_key(self):
        """cert + key in one PEM file (the Java client's PEM keystore wants both)."""
        path = self.cert.with_suffix(".keystore.pem")
        path.write_bytes(self.key.read_bytes() + self.cert.read_bytes())
        return path


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CertAuthority:
    """A self-signed CA that issues leaves into `directory`."""

    def __init__(self, directory, name):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (x509.CertificateBuilder()
                      .subject_name(_name(name)).issuer_name(_name(name))
                      .public_key(self._key.public_key())
                      .serial_number(x509.random_serial_number())
                      .not_valid_before(now - datetime.timedelta(hours=1))
                      .not_valid_after(now + datetime.timedelta(days=2))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                   False, False), True)
                      .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                          self._key.public_key()), False)
                      .sign(self._key, hashes.SHA256()))
        self.cert = self.dir / ("%s.crt" % name)
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn, sans=(), client=False, expired=False, file_name=None):
        """A leaf for `cn`: a server certificate (DNS/IP `sans`) or a client one."""
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        if expired:
            before, after = now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)
        else:
            before, after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn)).issuer_name(self._cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(before).not_valid_after(after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self._key.public_key()), False)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.CLIENT_AUTH if client
                        else ExtendedKeyUsageOID.SERVER_AUTH]), False))
        if sans:
            names = []
            for s in sans:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(s)))
                except ValueError:
                    names.append(x509.DNSName(s))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        cert = builder.sign(self._key, hashes.SHA256())
        stem = file_name or cn
        out = Issued(cn, self.dir / ("%s.crt" % stem), self.dir / ("%s.key" % stem))
        out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, out.key)
        return out
