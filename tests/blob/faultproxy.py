#!/usr/bin/env python3
"""faultproxy.py - a loopback HTTP proxy that stands in front of a blob
server (S3, GCS or Azure test server) and breaks on request, for the blob
suite's fault cases (tests/unit/test_blob_suite.c).

    faultproxy.py --listen PORT --upstream http://127.0.0.1:P [--port-file F]

Every request is forwarded as it came (method, path, headers, including
Host, so signatures made for the proxy's address still verify upstream;
bodies streamed both ways).  Control requests, answered by the proxy
itself:

    POST /__fault/500?count=N  the next N forwarded requests answer 500
    POST /__fault/down         every other connection is closed unanswered
    POST /__fault/up           back to forwarding
"""
import argparse
import http.client
import http.server
import sys
import threading
import urllib.parse

STATE = {"fail": 0, "down": False}
LOCK = threading.Lock()
HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
       "transfer-encoding", "upgrade"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, fmt, *args):  # quiet: the suite prints its own
        pass

    def _control(self):
        u = urllib.parse.urlsplit(self.path)
        what = u.path[len("/__fault/"):]
        q = urllib.parse.parse_qs(u.query)
        with LOCK:
            if what == "500":
                STATE["fail"] = int(q.get("count", ["1"])[0])
            elif what == "down":
                STATE["down"] = True
            elif what == "up":
                STATE["down"] = False
                STATE["fail"] = 0
            else:
                self.send_error(404)
                return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body_chunks(self):
        """The request body as it comes; self.short is set when the
        client stopped before its Content-Length."""
        self.short = False
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("Content-Length", "0") or 0)
        while left > 0:
            part = self.rfile.read(min(left, 1 << 20))
            if not part:
                self.short = True
                return
            left -= len(part)
            yield part

    def _forward(self):
        if self.path.startswith("/__fault/"):
            self._control()
            return
        with LOCK:
            down = STATE["down"]
            fail = STATE["fail"] > 0
            if fail:
                STATE["fail"] -= 1
        if down:
            self.close_connection = True
            self.connection.close()
            return
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if fail:  # drain the request, then answer 500
            for _ in self._body_chunks():
                pass
            body = b"injected failure"
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has no body
                self.wfile.write(body)
            return
        up = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        conn.putrequest(self.command, self.path, skip_host=True,
                        skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP:
                conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for part in self._body_chunks():
            if chunked:
                conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
            else:
                conn.send(part)
        if chunked:
            conn.send(b"0\r\n\r\n")
        if self.short:  # the client gave up mid-body: so does upstream
            conn.close()
            self.close_connection = True
            return
        resp = conn.getresponse()
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        no_body = self.command == "HEAD" or resp.status in (204, 304)
        if length is None and not no_body:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while not no_body:
            part = resp.read(1 << 16)
            if length is None:
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            elif part:
                self.wfile.write(part)
            if not part:
                break
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    Handler.upstream = args.upstream
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.listen), Handler)
    srv.daemon_threads = True
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
