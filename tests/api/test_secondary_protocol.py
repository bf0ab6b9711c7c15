"""The secondary's side of the internal API against a scripted primary
(plain HTTP on loopback), for what a real primary does not do on
demand: a tool binary whose checksum is not the registered one, and
answers of 503 that must be retried.  A real cluster is in
test_secondary.py.

SPDX-License-Identifier: MPL-2.0
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import BUILD, free_port  # noqa: E402

PREFIX = "/api/internal/v1"
CRED = "trnode-fake-credential"
TOOL = b"#!/bin/sh\necho not-tofu\n"
REGISTERED = "ab" * 32  # what the job says; TOOL hashes to something else


class Primary(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.calls = []  # (method, path, auth, body)
        self.lock = threading.Lock()
        self.job_given = False
        self.log_503 = 2  # answers of 503 before a log append succeeds
        self.finished = threading.Event()
        self.job = job()


def job():
    return {"id": "job-fake", "phase": "plan", "run_id": "run-fake",
            "phase_id": "plan-fake", "org": "o", "org_id": "org-fake",
            "workspace": "w", "workspace_id": "ws-fake", "cv_id": "cv-fake",
            "working_directory": "", "tool_version": "9.9.9",
            "tool_sha256": REGISTERED, "token": "run-token-secret",
            "api_url": "https://127.0.0.1:1", "speculative": False,
            "is_destroy": False, "refresh": True, "refresh_only": False,
            "save_plan": False, "structured": False, "want_schemas": False,
            "targets": [], "replaces": [], "vars": [], "timeout_s": 60}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, doc=None, raw=None, headers=()):
        body = raw if raw is not None else (
            json.dumps(doc).encode() if doc is not None else b"")
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_one(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv = self.server
        path = self.path
        with srv.lock:
            srv.calls.append((method, path,
                              self.headers.get("Authorization"), body))
        if not path.startswith(PREFIX):
            return self.reply(404)
        p = path[len(PREFIX):]
        if p == "/join":
            return self.reply(201, {"node_id": "node-fake",
                                    "credential": CRED})
        if self.headers.get("Authorization") != "Bearer " + CRED:
            return self.reply(401, {"errors": [{"status": "401",
                                                "detail": "unknown node"}]})
        if p == "/nodes/heartbeat":
            return self.reply(200, {"node_id": "node-fake"})
        if p == "/nodes/leave":
            return self.reply(204)
        if p.startswith("/claim"):
            with srv.lock:
                give = not srv.job_given
                srv.job_given = True
            if give:
                return self.reply(200, {"job": srv.job})
            time.sleep(0.3)
            return self.reply(204)
        if p == "/tools/9.9.9":
            return self.reply(200, raw=TOOL, headers=[
                ("X-Terrace-Sha256", hashlib.sha256(TOOL).hexdigest())])
        if p == "/jobs/job-fake/log":
            with srv.lock:
                srv.log_503 -= 1
                busy = srv.log_503 >= 0
            return self.reply(503 if busy else 204)
        if p == "/jobs/job-fake/finish":
            srv.finished.set()
            return self.reply(204)
        if p == "/jobs/job-fake/heartbeat":
            return self.reply(200, {"cancel": 0})
        return self.reply(404)

    def do_GET(self):
        self.handle_one("GET")

    def do_POST(self):
        self.handle_one("POST")

    def do_PUT(self):
        self.handle_one("PUT")


def start(srv, tmp):
    data = os.path.join(tmp, "data")
    log_path = os.path.join(tmp, "secondary.log")
    args = [os.path.join(BUILD, "terraced"), "--role", "secondary",
            "--join-url", "http://127.0.0.1:%d/" % srv.server_address[1],
            "--join-token", "join-secret", "--data-dir", data,
            "--listen", "127.0.0.1:%d" % free_port(), "--tls", "off",
            "--capacity", "1"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def serve(srv):
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def stop(srv, proc, tmp):
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    srv.shutdown()
    srv.server_close()
    shutil.rmtree(tmp, ignore_errors=True)


def test_unreadable_job_is_ended():
    """A job missing a field is ended errored at once, with the field
    named, rather than left to its lease."""
    srv = serve(Primary())
    del srv.job["token"]
    srv.log_503 = 0
    tmp = tempfile.mkdtemp(prefix="terrace-secp-")
    proc = start(srv, tmp)
    try:
        assert srv.finished.wait(60), \
            open(os.path.join(tmp, "secondary.log")).read()
        fin = [c for c in srv.calls if c[1].endswith("/job-fake/finish")]
        res = json.loads(fin[0][3])
        assert res["outcome"] == "errored"
        assert res["error"] == \
            "this node cannot read the job: the job has no token", res
        logs = [c for c in srv.calls if c[1].endswith("/job-fake/log")]
        assert b"the job has no token" in logs[0][3]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        stop(srv, proc, tmp)


def test_tool_checksum_mismatch_and_retries():
    srv = serve(Primary())
    tmp = tempfile.mkdtemp(prefix="terrace-secp-")
    data = os.path.join(tmp, "data")
    log_path = os.path.join(tmp, "secondary.log")
    proc = start(srv, tmp)
    try:
        assert srv.finished.wait(60), open(log_path).read()
        calls = list(srv.calls)
        join = [c for c in calls if c[1] == PREFIX + "/join"]
        assert len(join) == 1
        doc = json.loads(join[0][3])
        assert doc["join_token"] == "join-secret"
        assert doc["capacity"] == 1 and doc["version"]
        # the job is refused with the reason in its log and its finish
        logs = [c for c in calls if c[1].endswith("/jobs/job-fake/log")]
        assert len(logs) == 3, logs  # two 503s, then the same bytes again
        assert logs[0][3] == logs[2][3]
        text = logs[2][3].decode()
        assert "cannot get tool 9.9.9 from the primaries" in text, text
        assert hashlib.sha256(TOOL).hexdigest() in text
        fin = [c for c in calls if c[1].endswith("/jobs/job-fake/finish")]
        res = json.loads(fin[0][3])
        assert res["outcome"] == "errored"
        assert REGISTERED in res["error"]
        # nothing of the bad binary was kept
        tools = os.path.join(data, "tools")
        assert [f for f in os.listdir(tools)] == [], os.listdir(tools)
        cred = os.path.join(data, "node-credential")
        assert open(cred).read().strip() == CRED
        assert os.stat(cred).st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert any(c[1] == PREFIX + "/nodes/leave" for c in srv.calls)
        text = open(log_path).read()
        for secret in ("join-secret", CRED, "run-token-secret"):
            assert secret not in text
        assert "Sanitizer" not in text and "runtime error:" not in text, text
    finally:
        stop(srv, proc, tmp)
