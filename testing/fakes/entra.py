"""A fake Entra ID token endpoint over HTTPS, for the bot's outbound Bot Framework tokens.

MSAL takes only an https authority, so the fake serves TLS with a throw-away certificate
authority made for the test (`ca_file` is what the process under test must trust, through
`REQUESTS_CA_BUNDLE`). It answers MSAL's tenant discovery and the client-credentials grant,
issues its own token for the right app id, secret and scope, refuses a wrong secret the way
Entra ID does (401 `invalid_client`), and can be taken down (connections dropped unanswered)
and brought back.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TENANT = "botframework.test"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate for 127.0.0.1 and localhost, signed by
    it: (CA file to trust, server certificate, server key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Flywheel test CA"))
        .issuer_name(_name("Flywheel test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


class FakeEntra:
    """Entra ID's discovery and token endpoints for one app, served from a thread."""

    def __init__(self, folder: Path, *, app_id: str, secret: str, scope: str) -> None:
        self.app_id, self.secret, self.scope = app_id, secret, scope
        self.token = f"entra-issued-{secrets.token_hex(8)}"
        self.down = False
        self.issued = 0
        self.refused = 0
        self.ca_file, cert_file, key_file = make_certificates(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if fake.down:
                    self.close_connection = True
                    return
                if self.path != f"/{TENANT}/v2.0/.well-known/openid-configuration":
                    self._json(404, {"error": "not_found"})
                    return
                base = f"{fake.url}/{TENANT}"
                self._json(
                    200,
                    {
                        "issuer": f"{base}/v2.0",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                    },
                )

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if fake.down:
                    self.close_connection = True
                    return
                if self.path != f"/{TENANT}/oauth2/v2.0/token":
                    self._json(404, {"error": "not_found"})
                    return
                if (
                    form.get("grant_type") != "client_credentials"
                    or form.get("client_id") != fake.app_id
                    or form.get("client_secret") != fake.secret
                ):
                    fake.refused += 1
                    self._json(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret provided.",
                        },
                    )
                    return
                if form.get("scope") != f"{fake.scope}/.default":
                    self._json(400, {"error": "invalid_scope"})
                    return
                fake.issued += 1
                self._json(
                    200,
                    {"token_type": "Bearer", "expires_in": 3600, "access_token": fake.token},
                )

            def _json(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def login_url(self) -> str:
        """What MICROSOFT_LOGIN_URL is set to: the authority with its tenant."""
        return f"{self.url}/{TENANT}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
