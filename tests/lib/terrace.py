"""terrace.py - test helpers: start a real terraced daemon and talk to it.

Used by the API tests (pytest) and other Python-driven suites.  Each Daemon
gets its own data dir and a free loopback port; PostgreSQL-backed runs
start a throwaway server with tests/lib/pg.sh.
"""
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

SRC = os.environ.get("TERRACE_SRC_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(
                         os.path.abspath(__file__)))))
BUILD = os.path.abspath(os.environ.get("TERRACE_BUILD_DIR",
                                       os.path.join(SRC, "build")))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def config_tgz(main_tf=None, files=None):
    """A configuration tarball holding main.tf (bytes), or files
    ({path: text}, in path order)."""
    if files is None:
        files = {"main.tf": main_tf}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in sorted(files.items()):
            data = text if isinstance(text, bytes) else text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def new_workspace(c, org):
    """A new auto-apply workspace in org; its id."""
    r = c.post("/api/v2/organizations/%s/workspaces" % org, {"data": {
        "type": "workspaces",
        "attributes": {"name": "ws-" + uuid.uuid4().hex[:8],
                       "auto-apply": True}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def queue_run(c, ws, main_tf):
    """Uploads main_tf as a new configuration of ws and queues a run of
    it; the run's id."""
    r = c.post("/api/v2/workspaces/%s/configuration-versions" % ws,
               {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": False}}})
    assert r.status == 201, r
    cv = r.json["data"]["id"]
    u = c.put(r.json["data"]["attributes"]["upload-url"],
              raw=config_tgz(main_tf), token=None)
    assert u.status == 200, u
    r = c.post("/api/v2/runs", {"data": {
        "type": "runs", "attributes": {},
        "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws}},
            "configuration-version": {
                "data": {"type": "configuration-versions", "id": cv}}}}})
    assert r.status == 201, r
    return r.json["data"]["id"]

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Client:
    """Minimal HTTPS client for the daemon (stdlib only)."""

    def __init__(self, base, ca, token=None):
        self.base = base.rstrip("/")
        self.token = token
        self.ctx = ssl.create_default_context(cafile=ca)

    def with_token(self, token):
        """The same client with another token (None: anonymous)."""
        return _clone(self, token)

    def request(self, method, path, body=None, token=..., headers=None,
                raw=None, ctype=None):
        url = path if path.startswith("http") else self.base + path
        hdrs = {"Accept": "application/vnd.api+json"}
        tok = self.token if token is ... else token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            hdrs["Content-Type"] = ctype or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/vnd.api+json"
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=hdrs)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=60) as r:
                return Response(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, dict(e.headers), e.read())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def put(self, path, raw=None, **kw):
        return self.request("PUT", path, raw=raw, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def _clone(c, token):
    n = Client.__new__(Client)
    n.base, n.ctx, n.token = c.base, c.ctx, token
    return n


class Daemon:
    """A terraced process.  backend: "sqlite" (demo role) or "pg".
    blob: "" (the data dir) or "s3" (tests/lib/s3.sh's server); default
    from TERRACE_TEST_BLOB."""

    def __init__(self, backend="sqlite", extra_args=(), data_dir=None,
                 relative=False, env=None, blob=None):
        # relative: started in self.tmp with --data-dir given relative to
        # it, as `terrace demo` does with ./terrace-data
        self.relative = relative
        self.backend = backend
        self.tmp = tempfile.mkdtemp(prefix="terrace-test-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.pg_dir = None
        self.blob = (os.environ.get("TERRACE_TEST_BLOB", "") if blob is None
                     else blob)
        self.s3_dir = None
        self.extra_args = list(extra_args)
        self.env = env  # extra environment variables for terraced
        self.proc = None

    def start(self):
        ddir = (os.path.relpath(self.data_dir, self.tmp) if self.relative
                else self.data_dir)
        # no test downloads a tool from the internet; tests of the
        # installer pass a loopback --tool-mirror, which wins (later flag)
        args = [os.path.join(BUILD, "terraced"), "--data-dir", ddir,
                "--listen", "127.0.0.1:%d" % self.port,
                "--external-url", self.url,
                "--tool-mirror", "off"] + self.extra_args
        if self.backend == "pg":
            if self.pg_dir is None:
                # its own dir: the postgres user must reach the socket
                self.pg_dir = tempfile.mkdtemp(prefix="terrace-pg-")
                os.chmod(self.pg_dir, 0o755)
                self.conninfo = subprocess.check_output(
                    ["bash", os.path.join(SRC, "tests/lib/pg.sh"), "start",
                     self.pg_dir], text=True).strip()
            args += ["--role", "primary", "--database-url", self.conninfo]
        else:
            args += ["--role", "demo"]
        env = dict(os.environ, **(self.env or {}))
        if self.blob == "s3":
            args += ["--blob-url", self._s3_url(env)]
        self.log = open(os.path.join(self.tmp, "terraced.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env,
                                     cwd=self.tmp if self.relative else None)
        self.wait_ready()
        with open(os.path.join(self.data_dir, "admin-token")) as f:
            self.admin_token = f.read().strip()
        self.ca = os.path.join(self.data_dir, "tls", "ca.pem")
        return self

    def _s3_url(self, env):
        """Starts the S3 test server once; its keys go into env."""
        if self.s3_dir is None:
            self.s3_dir = tempfile.mkdtemp(prefix="terrace-s3-")
            clean = {k: v for k, v in os.environ.items()
                     if not k.startswith("AWS_")}
            self.s3_endpoint = subprocess.check_output(
                ["bash", os.path.join(SRC, "tests/lib/s3.sh"), "start",
                 os.path.join(self.s3_dir, "s")], text=True,
                env=clean).strip()
        with open(os.path.join(self.s3_dir, "s", "env")) as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    env[k] = v
        return ("s3://terrace/api?endpoint=%s&force-path-style=true" %
                self.s3_endpoint)

    def blob_keys(self, prefix):
        """Sorted keys of the stored objects whose key starts with prefix,
        read from the store itself (the data dir's files, or the S3
        server's listing)."""
        if self.blob != "s3":
            root = os.path.join(self.data_dir, "blobs", "objects")
            keys = []
            for dirpath, _, files in os.walk(root):
                for f in files:
                    k = os.path.relpath(os.path.join(dirpath, f), root)
                    if k.startswith(prefix):
                        keys.append(k)
            return sorted(keys)
        env = {}
        self._s3_url(env)
        q = urllib.parse.quote("api/" + prefix, safe="")
        keys, token = [], None
        while True:
            url = "%s/terrace?%slist-type=2&prefix=%s" % (
                self.s3_endpoint,
                "continuation-token=%s&" % urllib.parse.quote(token, safe="")
                if token else "", q)
            xml = subprocess.check_output(
                ["curl", "-sSf", "--aws-sigv4", "aws:amz:us-east-1:s3",
                 "--user", "%s:%s" % (env["AWS_ACCESS_KEY_ID"],
                                      env["AWS_SECRET_ACCESS_KEY"]),
                 "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url])
            doc = ET.fromstring(xml)
            ns = {"s": doc.tag[1:doc.tag.index("}")]} if "}" in doc.tag else {}
            p = "s:" if ns else ""
            keys += [k.text[len("api/"):] for k in
                     doc.findall(".//%sContents/%sKey" % (p, p), ns)]
            tok = doc.find("%sNextContinuationToken" % p, ns)
            if tok is None or not tok.text:
                return sorted(keys)
            token = tok.text

    def blob_read(self, key):
        """The stored bytes of object key, as the store holds them."""
        if self.blob != "s3":
            with open(os.path.join(self.data_dir, "blobs", "objects", key),
                      "rb") as f:
                return f.read()
        env = {}
        self._s3_url(env)
        return subprocess.check_output(
            ["curl", "-sSf", "--aws-sigv4", "aws:amz:us-east-1:s3",
             "--user", "%s:%s" % (env["AWS_ACCESS_KEY_ID"],
                                  env["AWS_SECRET_ACCESS_KEY"]),
             "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
             "%s/terrace/api/%s" % (self.s3_endpoint, key)])

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        ctx = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("terraced exited with %d; log: %s" %
                                   (self.proc.returncode, self.log_text()))
            ca = os.path.join(self.data_dir, "tls", "ca.pem")
            if os.path.exists(ca):
                ctx = ssl.create_default_context(cafile=ca)
                try:
                    urllib.request.urlopen(self.url + "/_health_check",
                                           context=ctx, timeout=2).read()
                    return
                except (urllib.error.URLError, ConnectionError, OSError):
                    pass
            time.sleep(0.05)
        raise RuntimeError("terraced not ready; log: " + self.log_text())

    def client(self, token=...):
        return Client(self.url, self.ca,
                      self.admin_token if token is ... else token)

    def full_log(self):
        """The whole daemon log, as text."""
        try:
            with open(os.path.join(self.tmp, "terraced.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_text(self):
        try:
            with open(os.path.join(self.tmp, "terraced.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def pg_halt(self):
        """Stops the test PostgreSQL (sessions cut), keeping its data."""
        subprocess.check_call(["bash", os.path.join(SRC, "tests/lib/pg.sh"),
                               "halt", self.pg_dir])

    def pg_resume(self):
        subprocess.check_call(["bash", os.path.join(SRC, "tests/lib/pg.sh"),
                               "resume", self.pg_dir])

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        self.stop()
        if self.pg_dir:
            subprocess.call(["bash", os.path.join(SRC, "tests/lib/pg.sh"),
                             "stop", self.pg_dir])
        if self.s3_dir:
            subprocess.call(["bash", os.path.join(SRC, "tests/lib/s3.sh"),
                             "stop", os.path.join(self.s3_dir, "s")])
            shutil.rmtree(self.s3_dir, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
