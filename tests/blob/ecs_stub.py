#!/usr/bin/env python3
"""ecs_stub.py - a loopback stand-in for the AWS credential endpoints
(ECS container endpoint and EC2 IMDSv2), for tests/blob/run_s3.sh.

    ecs_stub.py --port-file F --hits H

ECS: GET /creds with "Authorization: ecs-auth".  IMDSv2: PUT
/latest/api/token (with X-aws-ec2-metadata-token-ttl-seconds) gives a
token; GET /latest/meta-data/iam/security-credentials/ (the role name)
and .../terrace-role (the credentials) need it in
X-aws-ec2-metadata-token.  Credentials are AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN of its own environment,
expiring in four minutes (inside Terrace's five-minute refresh window,
so every request of a refreshing client asks again); anything else is
401/404.  H gets the number of credential answers.
"""
import argparse
import datetime
import http.server
import json
import os
import threading

LOCK = threading.Lock()
HITS = [0]
IMDS_TOKEN = b"imds-session-token"


class Handler(http.server.BaseHTTPRequestHandler):
    hits_file = None

    def log_message(self, fmt, *args):
        pass

    def _send(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        if (self.path != "/latest/api/token" or not
                self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")):
            self.send_error(400)
            return
        self._send(IMDS_TOKEN)

    def do_GET(self):
        imds = "/latest/meta-data/iam/security-credentials/"
        if self.path.startswith(imds):
            if self.headers.get("X-aws-ec2-metadata-token") != \
                    IMDS_TOKEN.decode():
                self.send_error(401)
                return
            if self.path == imds:
                self._send(b"terrace-role")
                return
            if self.path != imds + "terrace-role":
                self.send_error(404)
                return
        elif self.path != "/creds":
            self.send_error(404)
            return
        elif self.headers.get("Authorization") != "ecs-auth":
            self.send_error(401)
            return
        exp = (datetime.datetime.now(datetime.timezone.utc)
               + datetime.timedelta(minutes=4))
        body = json.dumps({
            "Code": "Success",
            "AccessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
            "SecretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
            "Token": os.environ["AWS_SESSION_TOKEN"],
            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode()
        with LOCK:
            HITS[0] += 1
            with open(self.hits_file + ".tmp", "w") as f:
                f.write("%d\n" % HITS[0])
            os.replace(self.hits_file + ".tmp", self.hits_file)
        self._send(body, "application/json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--hits", required=True)
    args = ap.parse_args()
    Handler.hits_file = args.hits
    with open(args.hits, "w") as f:
        f.write("0\n")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
