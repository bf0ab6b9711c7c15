"""The CLI's view of a missing tool version (the Terraform CLI pins the
workspace to its own version at init): with a release mirror the first
remote plan installs it and the terminal shows that; without the release
the plan fails and the terminal shows why, rather than ending at
"Waiting for the plan to start...".

The mirror is a loopback HTTP server in this process serving a release
built here: the real tofu zipped as the official Terraform layout names
its zip, with its SHA256SUMS.  Nothing is downloaded from anywhere else.

SPDX-License-Identifier: MPL-2.0
"""
import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

from conftest import SERVER_ERROR, TOFU_BIN, Api, Tofu, own_daemon, unique

CONFIG = '''
terraform {
  cloud {
    hostname     = "%s"
    organization = "%s"
    workspaces {
      name = "%s"
    }
  }
}

resource "terraform_data" "x" {
  input = "installed"
}
'''


class Mirror:
    def __init__(self):
        self.files = {}
        self.requests = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        self.template = ("http://127.0.0.1:%d/terraform/{version}/"
                         "terraform_{version}_{os}_{arch}.zip" % self.port)

    def publish(self, version, binary):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo("terraform")
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, binary)
        name = "terraform_%s_linux_amd64.zip" % version
        base = "/terraform/%s/" % version
        self.files[base + name] = buf.getvalue()
        self.files[base + "terraform_%s_SHA256SUMS" % version] = (
            "%s  %s\n" % (hashlib.sha256(buf.getvalue()).hexdigest(),
                          name)).encode()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def mirror():
    if os.uname().machine != "x86_64":
        pytest.skip("the release built here is linux_amd64")
    m = Mirror()
    with open(TOFU_BIN, "rb") as f:
        m.publish("1.5.7", f.read())
    yield m
    m.close()


@pytest.fixture(scope="module")
def mdaemon(mirror):
    yield from own_daemon(["--tool-mirror", mirror.template],
                          also=SERVER_ERROR)


def workspace(api, tofu, version):
    org = api.create_org()
    ws = unique("tv")
    api.create_workspace(org, ws, **{"execution-mode": "remote",
                                     "terraform-version": version})
    tofu.write(CONFIG % (tofu.host, org, ws))
    tofu.run("init", "-input=false", "-no-color")
    return org, ws


def test_first_plan_installs_the_version(mdaemon, mirror, tmp_path):
    api, tofu = Api(mdaemon), Tofu(mdaemon, tmp_path)
    workspace(api, tofu, "1.5.7")
    r = tofu.run("plan", "-input=false", "-no-color")
    assert "Terrace: installing terraform 1.5.7 from 127.0.0.1:%d" % \
        mirror.port in r.text, r.text
    assert "Terrace: installed terraform 1.5.7 (sha256 " in r.text
    assert "Plan: 1 to add, 0 to change, 0 to destroy" in r.text, r.text
    v = api.ok(api.c.get("/api/v2/admin/terraform-versions"
                         "?filter[version]=1.5.7"), 200).json["data"]
    assert len(v) == 1 and v[0]["attributes"]["official"] is True
    # a second plan uses it as registered
    zips = [p for p in mirror.requests if p.endswith(".zip")]
    r = tofu.run("plan", "-input=false", "-no-color")
    assert "installing" not in r.text
    assert [p for p in mirror.requests if p.endswith(".zip")] == zips


def test_missing_release_says_why(mdaemon, mirror, tmp_path):
    api, tofu = Api(mdaemon), Tofu(mdaemon, tmp_path)
    workspace(api, tofu, "1.14.0")
    r = tofu.run("plan", "-input=false", "-no-color", rc=1)
    assert "Error: the run cannot start: tool version 1.14.0 is not "\
           "registered and could not be installed" in r.text, r.text
    assert "HTTP 404" in r.text, r.text
