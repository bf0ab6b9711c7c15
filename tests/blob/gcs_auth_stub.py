#!/usr/bin/env python3
"""gcs_auth_stub.py - a loopback stand-in for Google's OAuth2 token
endpoint and the instance metadata server, in front of fake-gcs-server.

    gcs_auth_stub.py --pubkey PEM --email SA --upstream URL --port-file F

POST /token        checks the JWT bearer grant: RS256 signature against
                   the service account's public key, iss, aud (this
                   URL), scope, iat/exp; answers an access token.
GET  /computeMetadata/v1/instance/service-accounts/default/token
                   needs "Metadata-Flavor: Google"; answers a token.
GET  /__stats      {"issued": n, "refused": n, "unauthorized": n}
POST /__revoke     forgets every token issued so far.
anything else      needs "Authorization: Bearer <issued token>" (401
                   otherwise) and is forwarded to --upstream as it is.

Tokens expire after --expires-in seconds here too.  Bound to 127.0.0.1;
it stops after --lifetime seconds at most.
"""
import argparse
import base64
import http.client
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer",
       "upgrade", "proxy-authorization", "proxy-authenticate", "host",
       "authorization"}


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class State:
    def __init__(self, args):
        self.args = args
        with open(args.pubkey, "rb") as f:
            self.pub = serialization.load_pem_public_key(f.read())
        self.lock = threading.Lock()
        self.tokens = {}
        self.issued = 0
        self.refused = 0
        self.unauthorized = 0
        self.token_uri = None

    def issue(self):
        tok = "stub-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[tok] = time.time() + self.args.expires_in
            self.issued += 1
        return {"access_token": tok, "expires_in": self.args.expires_in,
                "token_type": "Bearer"}

    def valid(self, tok):
        with self.lock:
            exp = self.tokens.get(tok)
            return exp is not None and exp > time.time()

    def check_jwt(self, jwt):
        """None if the assertion is good, else why not."""
        parts = jwt.split(".")
        if len(parts) != 3:
            return "not a JWT"
        try:
            hdr = json.loads(b64d(parts[0]))
            claims = json.loads(b64d(parts[1]))
            sig = b64d(parts[2])
        except ValueError:
            return "undecodable JWT"
        if hdr.get("alg") != "RS256":
            return "alg is not RS256"
        try:
            self.pub.verify(sig, (parts[0] + "." + parts[1]).encode(),
                            padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "bad signature"
        now = time.time()
        if claims.get("iss") != self.args.email:
            return "wrong iss"
        if claims.get("aud") != self.token_uri:
            return "wrong aud %r" % claims.get("aud")
        if SCOPE not in str(claims.get("scope", "")).split():
            return "scope lacks devstorage.read_write"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat/exp missing"
        if abs(iat - now) > 300 or exp <= now or exp - iat > 3600:
            return "iat/exp out of range"
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def reply_json(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        st = self.server.state
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__stats":
            self.body()
            return self.reply_json(200, {"issued": st.issued,
                                         "refused": st.refused,
                                         "unauthorized": st.unauthorized})
        if path == "/__revoke" and self.command == "POST":
            self.body()
            with st.lock:
                st.tokens.clear()
            return self.reply_json(200, {})
        if path == "/token" and self.command == "POST":
            form = urllib.parse.parse_qs(self.body().decode())
            grant = form.get("grant_type", [""])[0]
            why = None
            if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                why = "unsupported grant_type"
            else:
                why = st.check_jwt(form.get("assertion", [""])[0])
            if why:
                with st.lock:
                    st.refused += 1
                return self.reply_json(400, {"error": "invalid_grant",
                                             "error_description": why})
            return self.reply_json(200, st.issue())
        if path.startswith("/computeMetadata/v1/instance/service-accounts/"):
            self.body()
            if self.headers.get("Metadata-Flavor") != "Google":
                with st.lock:
                    st.refused += 1
                return self.reply_json(403, {"error": "no Metadata-Flavor"})
            return self.reply_json(200, st.issue())
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not st.valid(auth[7:]):
            self.body()
            with st.lock:
                st.unauthorized += 1
            return self.reply_json(401, {"error": {
                "code": 401, "message": "Invalid Credentials"}})
        self.forward()

    def forward(self):
        up = urllib.parse.urlsplit(self.server.state.args.upstream)
        body = self.body()
        if len(body) < int(self.headers.get("Content-Length") or 0):
            # the client gave up mid-body: so does the upstream request
            # (a partial body is never forwarded as if whole)
            self.close_connection = True
            return
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body,
                         headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = route


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pubkey", required=True)
    ap.add_argument("--email", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--expires-in", type=int, default=3600)
    ap.add_argument("--lifetime", type=int, default=1800)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    port = srv.server_address[1]
    srv.state.token_uri = "http://127.0.0.1:%d/token" % port
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.lifetime, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
