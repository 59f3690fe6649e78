"""A local stand-in for the Bot Framework's OpenID metadata + JWKS, and the channel tokens signed with its key.

botbuilder fetches the metadata with blocking ``requests`` (in the bridge, from a worker thread), so this
server runs on its own thread (stdlib ``ThreadingHTTPServer``), never on the test's event loop.

``GET /<prefix>/v1/.well-known/openidconfiguration`` -> ``{"issuer", "jwks_uri", ...}``;
``GET /<prefix>/v1/keys`` -> the JWKS: one RS256 key with ``"endorsements": ["msteams"]``,
as the real service publishes it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CHANNEL_ISSUER = "https://api.botframework.com"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
KEYS_PATH = "/v1/keys"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OpenIdSandbox:
    """Serves metadata + JWKS on 127.0.0.1 from a daemon thread; signs tokens as the Teams channel would."""

    def __init__(self, *, issuer: str = CHANNEL_ISSUER, kid: str = "sandbox-key-1") -> None:
        self.issuer = issuer
        self.kid = kid
        self.key = new_key()
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        # botbuilder caches metadata + keys per metadata URL for the whole process (refreshed at most hourly).
        # A later sandbox on a reused port would be answered from that cache with this sandbox's key, so every
        # instance serves under its own path prefix and so has its own URL.
        self.prefix = "/" + secrets.token_hex(6)

    @property
    def metadata_url(self) -> str:
        return self.base_url + self.prefix + METADATA_PATH

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]})
        return {"keys": [jwk]}

    def start(self) -> str:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                sandbox.requests.append(self.path)
                if self.path == sandbox.prefix + METADATA_PATH:
                    body: dict[str, Any] = {
                        "issuer": sandbox.issuer,
                        "authorization_endpoint": "https://invalid.example/authorize",
                        "jwks_uri": sandbox.base_url + sandbox.prefix + KEYS_PATH,
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                    }
                elif self.path == sandbox.prefix + KEYS_PATH:
                    body = sandbox.jwks()
                else:
                    self.send_error(404)
                    return
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="openid-sandbox", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def token(
        self,
        audience: str,
        service_url: str,
        *,
        lifetime: float = 3600,
        issued_at: float | None = None,
        key: rsa.RSAPrivateKey | None = None,
        issuer: str | None = None,
    ) -> str:
        """A channel token as Teams sends it: ``iss``, ``aud`` = the bot's app id, ``serviceurl``, RS256 + kid."""
        now = time.time() if issued_at is None else issued_at
        claims = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": int(now) - 5,
            "iat": int(now),
            "exp": int(now + lifetime),
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})
