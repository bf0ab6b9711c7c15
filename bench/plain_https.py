#!/usr/bin/env python3
"""plain_https.py - the reference for bench/state_io.sh: a plain HTTPS
file server that does nothing but move bytes, with the same certificate
as the demo, so Terrace's state upload and download are compared with a
transfer of the same bytes over the same kind of connection.

  plain_https.py CERT KEY DIR PORT

  GET /NAME   sends DIR/NAME (sendfile is not possible under TLS: 1 MB
              reads)
  PUT /NAME   writes the body to DIR/NAME (1 MB reads), then 204

Binds 127.0.0.1 only; prints "ready" on stdout once listening.

SPDX-License-Identifier: MPL-2.0
"""
import http.server
import os
import shutil
import ssl
import sys

CHUNK = 1 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def path_of(self):
        name = os.path.basename(self.path.split("?", 1)[0])
        return os.path.join(self.server.dir, name) if name else None

    def do_GET(self):
        p = self.path_of()
        if p is None or not os.path.isfile(p):
            self.send_error(404)
            return
        with open(p, "rb") as f:
            self.send_response(200)
            size = os.fstat(f.fileno()).st_size
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            shutil.copyfileobj(f, self.wfile, CHUNK)

    def do_PUT(self):
        p = self.path_of()
        n = int(self.headers.get("Content-Length", "0"))
        if p is None:
            self.send_error(400)
            return
        with open(p + ".part", "wb") as f:
            while n > 0:
                b = self.rfile.read(min(n, CHUNK))
                if not b:
                    break
                f.write(b)
                n -= len(b)
        os.replace(p + ".part", p)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    cert, key, root, port = sys.argv[1:5]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    srv.dir = root
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
