"""Tool versions installed on first use from a release mirror: a
workspace pinned to a version no node has (as `terraform init` pins the
CLI's own) gets it downloaded from --tool-mirror, checked against the
release's SHA256SUMS, unpacked, registered and used; every reason it
cannot be had reaches the plan's log.

The mirror is a loopback HTTP server in this process serving releases
built here: zips of the fake tofu of test_run_logs.py, named as the
official layout names them.  Nothing is downloaded from anywhere else."""
import hashlib
import http.server
import io
import os
import threading
import time
import zipfile

import pytest

from conftest import temp_org, unique
from terrace import Daemon
from test_run_logs import FAKE_TOFU, backend, log_url, read_all
from test_runs import API, make_cv, make_ws, new_run, status

TEMPLATE = "terraform/{version}/terraform_{version}_{os}_{arch}.zip"
FINAL = ("planned", "errored", "planned_and_finished", "canceled",
         "discarded")


class Mirror:
    """Serves files from memory on 127.0.0.1; records request paths."""

    def __init__(self):
        self.files = {}
        self.requests = []
        lock = threading.Lock()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with lock:
                    mirror.requests.append(self.path)
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()
        self.template = "http://127.0.0.1:%d/%s" % (self.port, TEMPLATE)

    def publish(self, version, content=FAKE_TOFU.encode(), name="terraform",
                corrupt=False, sums=True):
        """A release of version: the zip holding `name`, and its sums."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            z.writestr(info, content)
            z.writestr("LICENSE.txt", "not a binary\n")
        zipped = buf.getvalue()
        zip_name = "terraform_%s_linux_amd64.zip" % version
        digest = hashlib.sha256(zipped).hexdigest()
        if corrupt:
            zipped = zipped[:-10] + b"x" * 10
        base = "/terraform/%s/" % version
        self.files[base + zip_name] = zipped
        if sums:
            self.files[base + "terraform_%s_SHA256SUMS" % version] = (
                "%s  terraform_%s_darwin_arm64.zip\n%s  %s\n" %
                ("0" * 64, version, digest, zip_name)).encode()
        return hashlib.sha256(content).hexdigest()

    def zip_requests(self, version):
        return [p for p in self.requests if p.endswith(".zip") and
                "/%s/" % version in p]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def amd64():
    return os.uname().machine in ("x86_64", "amd64")


@pytest.fixture(scope="module")
def mirror():
    if not amd64():
        pytest.skip("the releases built here are linux_amd64")
    m = Mirror()
    yield m
    m.close()


@pytest.fixture(scope="module")
def d(mirror):
    dm = Daemon(backend=backend(),
                extra_args=["--executors", "2", "--tool-mirror",
                            mirror.template])
    dm.start()
    yield dm
    dm.close()


@pytest.fixture(scope="module")
def c(d):
    return d.client()


@pytest.fixture
def org(c):
    yield from temp_org(c)


def new_version():
    n = int(unique("v").split("-")[1][:7], 16)
    return "%d.%d.%d" % (800 + n % 97, n % 1000, n % 7919)


def registered(c, version):
    r = c.get(API + "/admin/terraform-versions?filter[version]=" + version)
    assert r.status == 200, r
    return r.json["data"]


def run_once(c, org, version, want_final):
    """A run in a new workspace pinned to version; its plan log text."""
    ws = make_ws(c, org, **{"terraform-version": version})
    run = new_run(c, ws, make_cv(c, ws))
    deadline = time.time() + 60
    while time.time() < deadline and status(c, run["id"]) not in FINAL:
        time.sleep(0.2)
    plan = run["relationships"]["plan"]["data"]["id"]
    text = read_all(c, log_url(c, plan))[1:-1].decode(errors="replace")
    got = c.get("%s/runs/%s" % (API, run["id"])).json["data"]
    assert got["attributes"]["status"] == want_final, (got, text)
    return text


def test_install_on_first_use(c, d, mirror, org):
    v = new_version()
    sha = mirror.publish(v)
    text = run_once(c, org, v, "planned")
    assert "Terrace: installing terraform %s from 127.0.0.1:%d" % (
        v, mirror.port) in text, text
    assert "Terrace: installed terraform %s (sha256 %s)" % (v, sha) in text
    assert "fake plan line 0" in text  # the installed binary ran the plan
    tools = registered(c, v)
    assert len(tools) == 1, tools
    a = tools[0]["attributes"]
    assert a["sha"] == sha and a["official"] is True and a["enabled"]
    path = os.path.join(d.data_dir, "tools", "terraform-" + v, "terraform")
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == sha
    # no download leftovers beside it
    assert sorted(os.listdir(os.path.dirname(path))) == ["terraform"]
    # the next run uses the registered binary: nothing downloaded again
    before = len(mirror.zip_requests(v))
    assert before == 1
    text = run_once(c, org, v, "planned")
    assert "installing" not in text and "fake plan line 0" in text
    assert len(mirror.zip_requests(v)) == before


def test_concurrent_first_runs_download_once(c, mirror, org):
    v = new_version()
    mirror.publish(v)
    runs = []
    for _ in range(2):
        ws = make_ws(c, org, **{"terraform-version": v})
        runs.append(new_run(c, ws, make_cv(c, ws))["id"])
    deadline = time.time() + 60
    while time.time() < deadline and any(status(c, r) not in FINAL
                                         for r in runs):
        time.sleep(0.2)
    assert [status(c, r) for r in runs] == ["planned", "planned"]
    assert len(mirror.zip_requests(v)) == 1
    assert len(registered(c, v)) == 1


@pytest.mark.parametrize("case,reason", [
    ("corrupt", "does not match its SHA256SUMS line"),
    ("no sums", "cannot download http://127.0.0.1"),
    ("no release", "HTTP 404"),
    ("no binary", "the zip holds no file terraform"),
    ("pre-release", None),
])
def test_failed_install_says_why_in_the_plan_log(c, d, mirror, org, case,
                                                 reason):
    v = new_version()
    if case == "corrupt":
        mirror.publish(v, corrupt=True)
    elif case == "no sums":
        mirror.publish(v, sums=False)
    elif case == "no binary":
        mirror.publish(v, name="tofu")
    elif case == "pre-release":
        v += "-rc1"  # installable like any other: the URL has it as is
        mirror.publish(v)
    if reason is None:
        run_once(c, org, v, "planned")
        assert len(registered(c, v)) == 1
        return
    text = run_once(c, org, v, "errored")
    assert "Error: the run cannot start: tool version %s is not registered "\
           "and could not be installed" % v in text, text
    assert reason in text, text
    assert registered(c, v) == []
    # nothing left behind: no binary, no temporary download
    vdir = os.path.join(d.data_dir, "tools", "terraform-" + v)
    left = os.listdir(vdir) if os.path.isdir(vdir) else []
    assert left == [], left


def test_mirror_off_says_so_in_the_plan_log(admin):
    """The session daemon runs with --tool-mirror off (tests/lib)."""
    org = unique("org")
    r = admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    v = new_version()
    text = run_once(admin, org, v, "errored")
    assert "tool version %s is not registered and installs from a release "\
           "mirror are off (tool-mirror)" % v in text, text
