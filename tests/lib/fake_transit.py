#!/usr/bin/env python3
"""fake_transit.py - a small server speaking the parts of Vault's HTTP API
that Terrace uses, as Vault's documentation specifies them: transit
keys (create, read, rotate), encrypt, decrypt and hmac; token
lookup-self and renew-self; AppRole login.  Used only when a real Vault
cannot be built (tests/lib/vault.sh is the real one); tests run against
it are marked so in README.md.

    fake_transit.py PORT ROOT_TOKEN ROLE_ID SECRET_ID

Binds 127.0.0.1 only.  Ciphertext is "vault:v<N>:" + base64(nonce ||
AES-GCM(key_N, plaintext)) as in Vault; keys live in memory."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PORT, ROOT, ROLE_ID, SECRET_ID = (int(sys.argv[1]), sys.argv[2],
                                  sys.argv[3], sys.argv[4])
KEYS = {}    # name -> list of 32-byte versions (index 0 = v1)
TOKENS = {ROOT: {"ttl": 0, "expires": 0}}


def token_ok(tok):
    t = TOKENS.get(tok)
    return t is not None and (t["expires"] == 0 or t["expires"] > time.time())


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, doc=None):
        body = json.dumps(doc if doc is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def err(self, status, msg):
        self.reply(status, {"errors": [msg]})

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("POST")

    def route(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self.err(400, "failed to parse JSON input")
        p = self.path.split("?")[0]
        if not p.startswith("/v1/"):
            return self.err(404, "not found")
        p = p[4:]
        if p == "sys/health":
            return self.reply(200, {"initialized": True, "sealed": False})
        if p == "auth/approle/login" and method == "POST":
            if (body.get("role_id") != ROLE_ID or
                    body.get("secret_id") != SECRET_ID):
                return self.err(400, "invalid role or secret ID")
            tok = "hvs." + secrets.token_urlsafe(18)
            TOKENS[tok] = {"ttl": 3600, "expires": time.time() + 3600}
            return self.reply(200, {"auth": {
                "client_token": tok, "lease_duration": 3600,
                "renewable": True}})
        tok = self.headers.get("X-Vault-Token", "")
        if not token_ok(tok):
            return self.err(403, "permission denied")
        t = TOKENS[tok]
        if p == "auth/token/lookup-self":
            left = 0 if t["expires"] == 0 else int(t["expires"] - time.time())
            return self.reply(200, {"data": {"ttl": left,
                                             "renewable": t["ttl"] > 0}})
        if p == "auth/token/renew-self":
            if t["ttl"] > 0:
                t["expires"] = time.time() + t["ttl"]
            return self.reply(200, {"auth": {"client_token": tok,
                                             "lease_duration": t["ttl"],
                                             "renewable": t["ttl"] > 0}})
        if p == "auth/token/create" and tok == ROOT:
            ttl = int(str(body.get("ttl", "3600")).rstrip("s"))
            new = "hvs." + secrets.token_urlsafe(18)
            TOKENS[new] = {"ttl": ttl, "expires": time.time() + ttl}
            return self.reply(200, {"auth": {"client_token": new,
                                             "lease_duration": ttl}})
        parts = p.split("/")
        if len(parts) >= 3 and parts[0] == "transit":
            return self.transit(method, parts[1], parts[2], parts[3:], body)
        return self.err(404, "no handler for route")

    def transit(self, method, op, name, rest, body):
        if op == "keys" and not rest and method == "POST":
            KEYS.setdefault(name, [os.urandom(32)])
            return self.reply(204)
        if op == "keys" and rest == ["rotate"]:
            if name not in KEYS:
                return self.err(400, "key not found")
            KEYS[name].append(os.urandom(32))
            return self.reply(200, {"data": {}})
        versions = KEYS.get(name)
        if op == "keys" and not rest:
            if versions is None:
                return self.err(404, "")
            return self.reply(200, {"data": {
                "name": name, "type": "aes256-gcm96",
                "latest_version": len(versions),
                "supports_encryption": True}})
        if versions is None:
            return self.err(400, "encryption key not found")
        if op == "encrypt":
            pt = base64.b64decode(body.get("plaintext", ""))
            v = len(versions)
            nonce = os.urandom(12)
            ct = nonce + AESGCM(versions[v - 1]).encrypt(nonce, pt, None)
            return self.reply(200, {"data": {
                "ciphertext": "vault:v%d:%s" % (
                    v, base64.b64encode(ct).decode()),
                "key_version": v}})
        if op == "decrypt":
            try:
                _, vs, b = body.get("ciphertext", "").split(":", 2)
                v = int(vs[1:])
                raw = base64.b64decode(b)
                pt = AESGCM(versions[v - 1]).decrypt(raw[:12], raw[12:],
                                                      None)
            except Exception:
                return self.err(400, "cipher: message authentication failed")
            return self.reply(200, {"data": {
                "plaintext": base64.b64encode(pt).decode()}})
        if op == "hmac":
            v = int(body.get("key_version") or len(versions))
            mac = hmac.new(versions[v - 1],
                           base64.b64decode(body.get("input", "")),
                           hashlib.sha256).digest()
            return self.reply(200, {"data": {
                "hmac": "vault:v%d:%s" % (v, base64.b64encode(mac).decode())}})
        return self.err(404, "no handler for route")


ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
