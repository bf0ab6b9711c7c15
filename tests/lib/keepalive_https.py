"""keepalive_https.py - an HTTPS server that keeps connections open
(HTTP/1.1 keep-alive), for the unit test of terraced-idle's client
(tests/unit/test_idle_https.c).

    python3 keepalive_https.py CERT KEY PORT_FILE LOG

Binds 127.0.0.1 on a free port and writes the port to PORT_FILE once
listening.  Each new connection appends "conn" to LOG, each request
"req PATH".  GET /ok answers 200 {"ok":true} and keeps the connection;
GET /bye answers the same, then closes the connection without saying
so (as a server does when its keep-alive timeout passes between two
requests); GET /chunked answers a chunked body.  Runs until killed.

SPDX-License-Identifier: MPL-2.0
"""
import http.server
import os
import socketserver
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        note("conn")

    def do_GET(self):
        note("req " + self.path)
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"ok":', b"true}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/bye":
            self.close_connection = True

    def log_message(self, *args):
        pass


def note(line):
    with open(sys.argv[4], "a") as f:
        f.write(line + "\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    cert, key, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
    srv = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
