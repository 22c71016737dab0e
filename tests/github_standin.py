"""A small GitHub on 127.0.0.1 for the deployment protection rule: it issues installation tokens
to a valid App JWT (checked with the App's public key, as GitHub does), accepts reviews on a
workflow run's deployment_protection_rule URL with such a token, and records every call.

Served under /api/v3, as a GitHub Enterprise Server is, so the API URL's path is honoured too.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PREFIX = "/api/v3"
TOKEN_PATH = re.compile(rf"^{PREFIX}/app/installations/(\d+)/access_tokens$")
REVIEW_PATH = re.compile(rf"^{PREFIX}/repos/([^/]+)/([^/]+)/actions/runs/(\d+)/deployment_protection_rule$")


class AppKey:
    """The App's RSA key pair, made here: the private half is what deploycheck is configured with."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


class GitHubStandIn:
    def __init__(self, app_id: str, public_pem: str):
        self.app_id, self.public_pem = app_id, public_pem
        self.calls: list[dict] = []
        self.tokens: dict[str, int] = {}
        self.fail_next = 0  # answer this many calls with 502, as GitHub on a bad day
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = standin.handle(self.path, self.headers.get("Authorization", ""), body)
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{PREFIX}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> GitHubStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, authorization: str, body: bytes):
        with self.lock:
            call = {"path": path, "status": None, "body": json.loads(body) if body else None}
            self.calls.append(call)
            call["status"], answer = self._answer(path, authorization)
            return call["status"], answer

    def _answer(self, path: str, authorization: str):
        if self.fail_next:
            self.fail_next -= 1
            return 502, {"message": "Server Error"}
        bearer = authorization[7:] if authorization.startswith("Bearer ") else ""
        if match := TOKEN_PATH.match(path):
            problem = self.jwt_problem(bearer)
            if problem:
                return 401, {"message": problem}
            token = "ghs_" + secrets.token_hex(16)
            self.tokens[token] = int(match.group(1))
            return 201, {"token": token, "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))}
        if REVIEW_PATH.match(path):
            if bearer not in self.tokens:
                return 401, {"message": "Bad credentials"}
            return 204, None
        return 404, {"message": "Not Found"}

    def jwt_problem(self, token: str) -> str | None:
        """What GitHub would refuse in an App JWT, or None."""
        try:
            claims = jwt.decode(token, self.public_pem, algorithms=["RS256"], issuer=self.app_id, options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError as exc:
            return f"A JSON web token could not be decoded: {exc}"
        if claims["exp"] - claims["iat"] > 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        if claims["iat"] > time.time():
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        return None

    # --- What a test asks ---------------------------------------------------------------------

    def reviews(self) -> list[dict]:
        """Bodies GitHub accepted on a callback URL, oldest first."""
        with self.lock:
            return [c["body"] for c in self.calls if REVIEW_PATH.match(c["path"]) and c["status"] == 204]

    def tokens_issued(self) -> int:
        with self.lock:
            return sum(1 for c in self.calls if TOKEN_PATH.match(c["path"]) and c["status"] == 201)
