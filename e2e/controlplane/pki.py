"""Certificates for the local control plane: one CA that signs the apiserver's serving cert, the
client certs of the admin and the platform components, and the webhooks' serving certs (the
apiserver trusts them through each webhook configuration's caBundle). Also the service-account
signing key. Nothing here leaves the run's working directory."""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = dt.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs)])


class Pki:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ca_key = _key()
        now = dt.datetime.now(dt.timezone.utc)
        self._ca = (x509.CertificateBuilder().subject_name(_name("modelrollout-test-ca")).issuer_name(_name("modelrollout-test-ca"))
                    .public_key(self._ca_key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .sign(self._ca_key, hashes.SHA256()))
        self.ca_pem = self._ca.public_bytes(serialization.Encoding.PEM)
        self.ca_file = self.dir / "ca.crt"
        self.ca_file.write_bytes(self.ca_pem)

    def issue(self, name: str, cn: str, orgs: tuple[str, ...] = (), hosts: tuple[str, ...] = (),
              client: bool = False) -> tuple[Path, Path]:
        """A cert and key signed by the CA, written as NAME.crt and NAME.key: a server cert for
        hosts (DNS names or IPs), or a client cert whose CN is the user and O its groups."""
        key, now = _key(), dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn, orgs)).issuer_name(self._ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - DAY).not_valid_after(now + 30 * DAY)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                                         else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if hosts:
            sans = [x509.IPAddress(ipaddress.ip_address(h)) if h.replace(".", "").isdigit() else x509.DNSName(h) for h in hosts]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        crt, pem = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem.write_bytes(_pem(key))
        pem.chmod(0o600)
        return crt, pem

    def signing_key(self, name: str) -> tuple[Path, Path]:
        """A key pair for signing service-account tokens: (public, private)."""
        key = _key()
        public, private = self.dir / f"{name}.pub", self.dir / f"{name}.key"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        private.write_bytes(_pem(key))
        private.chmod(0o600)
        return public, private
