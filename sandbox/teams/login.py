"""A stand-in for Microsoft Entra ID as the bot's own outbound token comes from it, reached the production way.

botbuilder's credentials give MSAL the real authority, ``https://login.microsoftonline.com/<tenant>`` (the bot's
tenant for SingleTenant, ``botframework.com`` for MultiTenant), and MSAL insists on https and on the authority's
OpenID discovery. So this stand-in does not ask the bridge to point elsewhere: it answers for that very host,
the way a TLS-inspecting corporate egress proxy would.

- :attr:`proxy_url`: an HTTP ``CONNECT`` proxy on 127.0.0.1 (set ``HTTPS_PROXY`` to it). It tunnels
  ``login.microsoftonline.com:443`` to the local TLS server and refuses every other host (recorded in
  ``refused``). ``NO_PROXY=127.0.0.1,localhost`` keeps the other stand-ins direct.
- The TLS server holds a certificate for ``login.microsoftonline.com`` issued by a throwaway CA whose
  certificate is :attr:`ca_file` (set ``REQUESTS_CA_BUNDLE`` to it: ``requests``, which MSAL uses, trusts it).
  It serves ``GET /<tenant>/v2.0/.well-known/openid-configuration``, ``GET /common/discovery/instance`` and
  ``POST /<tenant>/oauth2/v2.0/token`` (client credentials; each request is recorded in ``token_requests``).
- The same plain-HTTP server also answers as Azure App Service's managed identity endpoint
  (``GET /msi/token``, header ``X-IDENTITY-HEADER``; set ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``), which
  MSAL's ``ManagedIdentityClient`` calls for a user-assigned managed identity (recorded in ``identity_requests``).

Every token issued is passed to ``on_issue`` (give it the connector stand-in's ``tokens.add``). Both servers run
on their own threads: MSAL calls them with blocking ``requests``.
"""

from __future__ import annotations

import datetime
import json
import secrets
import select
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOGIN_HOST = "login.microsoftonline.com"
IDENTITY_PATH = "/msi/token"
INSTANCE_METADATA = {
    "tenant_discovery_endpoint": f"https://{LOGIN_HOST}/{{tenant}}/v2.0/.well-known/openid-configuration",
    "api-version": "1.1",
    "metadata": [
        {
            "preferred_network": LOGIN_HOST,
            "preferred_cache": "login.windows.net",
            "aliases": [LOGIN_HOST, "login.windows.net", "login.microsoft.com", "sts.windows.net"],
        }
    ],
}


@dataclass(frozen=True)
class TokenRequest:
    """One client-credentials request: the tenant in the path, and the form MSAL posted."""

    path: str
    tenant: str
    form: dict[str, str]
    access_token: str | None  # what was issued (None: refused)


@dataclass(frozen=True)
class IdentityRequest:
    """One managed identity token request (App Service protocol)."""

    query: dict[str, str]
    identity_header: str | None
    access_token: str | None


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for LOGIN_HOST it issued: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Rally Bridge sandbox CA"))
        .issuer_name(_name("Rally Bridge sandbox CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(LOGIN_HOST))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(LOGIN_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


def _answer(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, 30)
        if broken or not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


class EntraLoginSandbox:
    """``login.microsoftonline.com`` (client credentials) and a managed identity endpoint, on 127.0.0.1."""

    def __init__(self, clients: dict[str, str], *, on_issue: Callable[[str], None] = lambda token: None) -> None:
        self.clients = dict(clients)  # client id -> client secret
        self.on_issue = on_issue
        self.identity_header = secrets.token_urlsafe(12)
        self.token_requests: list[TokenRequest] = []
        self.identity_requests: list[IdentityRequest] = []
        self.discovery_requests: list[str] = []
        self.refused: list[str] = []
        self._dir = tempfile.TemporaryDirectory(prefix="entra-sandbox-")
        self.ca_file, self._cert_file, self._key_file = _certificates(Path(self._dir.name))
        self._servers: list[ThreadingHTTPServer] = []
        self.proxy_url = ""
        self.identity_endpoint = ""
        self._tls_port = 0

    def environment(self) -> dict[str, str]:
        """What the bridge's process needs so its MSAL calls reach this stand-in (and nothing else changes)."""
        return {
            "HTTPS_PROXY": self.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
        }

    def managed_identity_environment(self) -> dict[str, str]:
        """What Azure App Service sets for a managed identity (MSAL's ``ManagedIdentityClient`` reads it)."""
        return {"IDENTITY_ENDPOINT": self.identity_endpoint, "IDENTITY_HEADER": self.identity_header}

    # ---- Entra ID over TLS --------------------------------------------------------------------------------
    def _issue(self) -> str:
        token = "sandbox-" + secrets.token_urlsafe(24)
        self.on_issue(token)
        return token

    def _login_handler(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class Login(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path).path.strip("/").split("/")
                if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    sandbox.discovery_requests.append(self.path)
                    base = f"https://{LOGIN_HOST}/{parts[0]}"
                    _answer(
                        self,
                        200,
                        {
                            "issuer": f"{base}/v2.0",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "token_endpoint": f"{base}/oauth2/v2.0/token",
                            "jwks_uri": f"{base}/discovery/v2.0/keys",
                            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                        },
                    )
                    return
                sandbox.discovery_requests.append(self.path)
                if parts == ["common", "discovery", "instance"]:  # MSAL's instance metadata (its cache's aliases)
                    _answer(self, 200, INSTANCE_METADATA)
                    return
                _answer(self, 404, {"error": "not_found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                parts = path.strip("/").split("/")
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
                    _answer(self, 404, {"error": "not_found"})
                    return
                client = form.get("client_id", "")
                good = form.get("grant_type") == "client_credentials" and sandbox.clients.get(client) == form.get(
                    "client_secret"
                )
                token = sandbox._issue() if good and client in sandbox.clients else None
                sandbox.token_requests.append(TokenRequest(path, parts[0], form, token))
                if token is None:
                    _answer(
                        self,
                        401,
                        {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."},
                    )
                    return
                _answer(self, 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Login

    # ---- the CONNECT proxy and the managed identity endpoint (plain HTTP) --------------------------------------
    def _front_handler(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class Front(BaseHTTPRequestHandler):
            def do_CONNECT(self) -> None:
                if self.path != f"{LOGIN_HOST}:443":
                    sandbox.refused.append(self.path)
                    self.send_error(403)
                    return
                upstream = socket.create_connection(("127.0.0.1", sandbox._tls_port), timeout=10)
                try:
                    self.send_response(200, "Connection established")
                    self.end_headers()
                    _pipe(self.connection, upstream)
                finally:
                    upstream.close()
                    self.close_connection = True

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != IDENTITY_PATH:
                    sandbox.refused.append(self.path)
                    self.send_error(403)
                    return
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                header = self.headers.get("X-IDENTITY-HEADER")
                good = header == sandbox.identity_header and query.get("client_id") in sandbox.clients
                token = sandbox._issue() if good else None
                sandbox.identity_requests.append(IdentityRequest(query, header, token))
                if token is None:
                    _answer(self, 400, {"error": "invalid_request"})
                    return
                expires = str(int(time.time()) + 3600)
                _answer(
                    self,
                    200,
                    {
                        "access_token": token,
                        "expires_on": expires,
                        "resource": query.get("resource"),
                        "token_type": "Bearer",
                    },
                )

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Front

    # ---- lifecycle --------------------------------------------------------------------------------------
    def _serve(self, server: ThreadingHTTPServer, name: str) -> None:
        server.daemon_threads = True
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, name=name, daemon=True).start()

    def start(self) -> None:
        tls = ThreadingHTTPServer(("127.0.0.1", 0), self._login_handler())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert_file, self._key_file)
        tls.socket = context.wrap_socket(tls.socket, server_side=True)
        self._tls_port = tls.server_address[1]
        self._serve(tls, "entra-sandbox-tls")
        front = ThreadingHTTPServer(("127.0.0.1", 0), self._front_handler())
        base = f"http://127.0.0.1:{front.server_address[1]}"
        self.proxy_url, self.identity_endpoint = base, base + IDENTITY_PATH
        self._serve(front, "entra-sandbox-proxy")

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        self._dir.cleanup()
