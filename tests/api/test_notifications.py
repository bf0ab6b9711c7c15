"""Notification configurations: create, read, list, update, delete and
verify against a real HTTP receiver on loopback; saving an enabled
configuration verifies it and answers with the delivery response (a
receiver that never answers holds the request up to the delivery timeout,
no longer); the generic payload and
its HMAC-SHA512 signature; Slack and Microsoft Teams formats; trigger
filtering over a run that plans and applies with the real tofu; a
receiver answering 500 gets the delivery again; a receiver that is down
never holds up a run; e-mail through a local SMTP server (tests/lib/smtpsink.py); the
token is never returned and sealed at rest; the bad-input table (every
refusal changes nothing)."""
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import assert_error, temp_org, unique
from smtpsink import SmtpSink
from terrace import Daemon, free_port, new_workspace, queue_run

API = "/api/v2"
CACHE = os.environ.get("TERRACE_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache",
                                    "terrace"))
TOFU_BIN = os.environ.get("TOFU_BIN",
                          os.path.join(CACHE, "tofu-1.10.10", "tofu"))
MAIN_TF = b'resource "terraform_data" "x" {}\n'
SECRET = "tok-" + os.urandom(8).hex()  # a token that must never be logged
ALL = ["run:created", "run:planning", "run:needs_attention", "run:applying",
       "run:completed", "run:errored"]


# ---- a webhook receiver and an SMTP server -----------------------------------

class Receiver:
    """An HTTP server on loopback recording every POST by path; answers
    the statuses queued for a path (then 200)."""

    def __init__(self):
        self.cv = threading.Condition()
        self.got = []  # (path, headers, body bytes)
        self.answers = {}
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.cv:
                    q = rec.answers.get(self.path) or []
                    code = q.pop(0) if q else 200
                    rec.got.append((self.path, dict(self.headers), body))
                    rec.cv.notify_all()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("X-Receiver", "yes")
                self.end_headers()
                self.wfile.write(b"ok %d" % code)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def at(self, path):
        with self.cv:
            return [g for g in self.got if g[0] == path]

    def wait(self, path, pred, timeout=60):
        """The requests to path once pred(requests) holds."""
        deadline = time.time() + timeout
        with self.cv:
            while True:
                got = [g for g in self.got if g[0] == path]
                if pred(got):
                    return got
                left = deadline - time.time()
                assert left > 0, "receiver got %r" % [
                    json.loads(g[2]) for g in got]
                self.cv.wait(left)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Mailbox:
    def __init__(self):
        self.cv = threading.Condition()
        self.msgs = []

    def deliver(self, mail_from, rcpt_tos, text):
        with self.cv:
            self.msgs.append((mail_from, rcpt_tos, text))
            self.cv.notify_all()

    def wait(self, n, timeout=30):
        deadline = time.time() + timeout
        with self.cv:
            while len(self.msgs) < n:
                left = deadline - time.time()
                assert left > 0, "mailbox got %r" % self.msgs
                self.cv.wait(left)
            return list(self.msgs)


@pytest.fixture(scope="module")
def smtp():
    box = Mailbox()
    ctl = SmtpSink(box.deliver)
    ctl.start()
    yield ctl, box
    ctl.stop()


@pytest.fixture(scope="module")
def d(smtp, rx):
    ctl, _ = smtp
    args = ["--smtp-host", "127.0.0.1", "--smtp-port", str(ctl.port),
            "--smtp-from", "terrace@example.com", "--smtp-tls", "off"]
    if os.access(TOFU_BIN, os.X_OK):
        args += ["--tofu-bin", TOFU_BIN]
    dm = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
                extra_args=args)
    dm.start()
    yield dm
    dm.stop()
    with open(os.path.join(dm.tmp, "terraced.log"), "rb") as f:
        log = f.read().decode(errors="replace")
    dm.close()
    # no sanitizer report (leaks included, at exit), no token and no
    # destination path in the log
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error",
                "s3cret-token", SECRET, rx.url + "/", "?key="):
        assert bad not in log, bad


@pytest.fixture(scope="module")
def c(d):
    return d.client()


@pytest.fixture(scope="module")
def rx():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def org(c):
    yield from temp_org(c)


def sql(d, query):
    if d.backend == "pg":
        out = subprocess.check_output(
            ["psql", "-At", "-F", "\x1f", "-d", d.conninfo, "-c", query],
            text=True)
    else:
        out = subprocess.check_output(
            ["sqlite3", "-separator", "\x1f",
             os.path.join(d.data_dir, "terrace.db"), query], text=True)
    return [line.split("\x1f") for line in out.splitlines() if line]


def nc_body(**attrs):
    rels = attrs.pop("users", None)
    doc = {"data": {"type": "notification-configurations",
                    "attributes": attrs}}
    if rels is not None:
        doc["data"]["relationships"] = {"users": {"data": [
            {"type": "users", "id": u} for u in rels]}}
    return doc


def create(c, ws, **attrs):
    attrs.setdefault("name", unique("nc"))
    attrs.setdefault("destination-type", "generic")
    attrs.setdefault("enabled", True)
    r = c.post("%s/workspaces/%s/notification-configurations" % (API, ws),
               nc_body(**attrs))
    assert r.status == 201, r
    return r.json["data"]


def get(c, nc):
    r = c.get("%s/notification-configurations/%s" % (API, nc))
    assert r.status == 200, r
    return r.json["data"]


def responses(c, nc, n, timeout=30):
    """The configuration's delivery responses once it has n (the
    receiver sees a request before the daemon records its answer)."""
    deadline = time.time() + timeout
    while True:
        resp = get(c, nc)["attributes"]["delivery-responses"]
        if len(resp) >= n or time.time() > deadline:
            return resp
        time.sleep(0.1)


def run_status(c, run):
    r = c.get("%s/runs/%s" % (API, run))
    assert r.status == 200, r
    return r.json["data"]["attributes"]["status"]


def wait_run(c, run, want, timeout=120):
    deadline = time.time() + timeout
    s = None
    while time.time() < deadline:
        s = run_status(c, run)
        if s in want:
            return s
        if s in ("errored", "canceled", "discarded"):
            break
        time.sleep(0.2)
    pytest.fail("run %s is %s, not %s" % (run, s, want))


needs_tofu = pytest.mark.skipif(not os.access(TOFU_BIN, os.X_OK),
                                reason="tofu binary missing: " + TOFU_BIN)


# ---- create, read, list, update, delete --------------------------------------

def test_crud(c, d, org, rx):
    ws = new_workspace(c, org)
    nc = create(c, ws, url=rx.url + "/crud", token="s3cret-token",
                triggers=["run:created", "run:errored", "run:created"],
                enabled=False)
    a = nc["attributes"]
    assert nc["id"].startswith("nc-")
    assert "token" not in a
    assert a["destination-type"] == "generic"
    assert a["enabled"] is False
    assert a["url"] == rx.url + "/crud"
    assert a["triggers"] == ["run:created", "run:errored"]
    assert a["delivery-responses"] == []
    assert nc["relationships"]["subscribable"]["data"] == {
        "id": ws, "type": "workspaces"}
    assert get(c, nc["id"]) == nc
    r = c.get("%s/workspaces/%s/notification-configurations" % (API, ws))
    assert r.status == 200, r
    assert [x["id"] for x in r.json["data"]] == [nc["id"]]
    assert r.json["meta"]["pagination"]["total-count"] == 1
    # sealed at rest: the stored token is not the plaintext
    stored = sql(d, "SELECT token FROM notification_configs WHERE id = '%s'"
                 % nc["id"])[0][0]
    assert stored.startswith("tre1:") and "s3cret-token" not in stored

    r = c.patch("%s/notification-configurations/%s" % (API, nc["id"]),
                nc_body(name="renamed", enabled=True,
                        triggers=["run:completed"]))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert (a["name"], a["enabled"], a["triggers"]) == (
        "renamed", True, ["run:completed"])
    assert a["url"] == rx.url + "/crud" and "token" not in a
    assert get(c, nc["id"])["attributes"]["name"] == "renamed"
    # enabled by the update: verified, the response in the answer
    (_, h, body), = rx.at("/crud")
    assert json.loads(body)["notifications"][0]["trigger"] == "verification"
    assert h["X-TFE-Notification-Signature"] == hmac.new(
        b"s3cret-token", body, hashlib.sha512).hexdigest()
    resp, = a["delivery-responses"]
    assert resp["code"] == "200" and resp["successful"] == "true"
    # an empty update changes nothing
    r = c.patch("%s/notification-configurations/%s" % (API, nc["id"]),
                nc_body())
    assert r.status == 200 and r.json["data"]["attributes"]["name"] == \
        "renamed", r
    # saved enabled again: verified again, as TFE does
    assert len(rx.at("/crud")) == 2
    assert len(r.json["data"]["attributes"]["delivery-responses"]) == 2
    r = c.patch("%s/notification-configurations/%s" % (API, nc["id"]),
                nc_body(enabled=False))
    assert r.status == 200 and len(rx.at("/crud")) == 2, r

    r = c.delete("%s/notification-configurations/%s" % (API, nc["id"]))
    assert r.status == 204, r
    assert_error(c.get("%s/notification-configurations/%s" % (API, nc["id"])),
                 404)
    r = c.get("%s/workspaces/%s/notification-configurations" % (API, ws))
    assert r.json["data"] == []


def test_other_org_sees_404(c, d, org, rx):
    ws = new_workspace(c, org)
    nc = create(c, ws, url=rx.url + "/x")
    # a user of no organization: the configuration does not exist for it
    name = unique("u")
    r = c.post(API + "/admin/users", {"data": {"type": "users", "attributes": {
        "username": name, "email": name + "@example.com"}}})
    if r.status != 201:
        pytest.skip("no admin user API: %s" % r.status)
    uid = r.json["data"]["id"]
    r = c.post("%s/users/%s/authentication-tokens" % (API, uid),
               {"data": {"type": "authentication-tokens", "attributes": {}}})
    if r.status != 201:
        pytest.skip("no user token API: %s" % r.status)
    other = c.with_token(r.json["data"]["attributes"]["token"])
    for method, path in (
            ("get", "/notification-configurations/" + nc["id"]),
            ("patch", "/notification-configurations/" + nc["id"]),
            ("delete", "/notification-configurations/" + nc["id"]),
            ("post", "/notification-configurations/%s/actions/verify"
             % nc["id"]),
            ("get", "/workspaces/%s/notification-configurations" % ws)):
        fn = getattr(other, method)
        r = fn(API + path, nc_body()) if method in ("patch", "post") else \
            fn(API + path)
        assert_error(r, 404)
    assert get(c, nc["id"])["attributes"]["name"] == nc["attributes"]["name"]


# ---- verification, signature, formats ----------------------------------------

def test_verify_generic_signed(c, org, rx):
    ws = new_workspace(c, org)
    token = "verify-" + unique()
    nc = create(c, ws, url=rx.url + "/verify", token=token, enabled=False)
    r = c.post("%s/notification-configurations/%s/actions/verify"
               % (API, nc["id"]))
    assert r.status == 200, r
    got = rx.at("/verify")
    assert len(got) == 1
    _, headers, body = got[0]
    want = hmac.new(token.encode(), body, hashlib.sha512).hexdigest()
    assert hmac.compare_digest(headers["X-TFE-Notification-Signature"], want)
    doc = json.loads(body)
    assert doc["payload_version"] == 1
    assert doc["notification_configuration_id"] == nc["id"]
    assert doc["organization_name"] == org
    assert doc["run_id"] is None
    assert doc["notifications"][0]["trigger"] == "verification"
    resp = r.json["data"]["attributes"]["delivery-responses"]
    assert len(resp) == 1
    assert resp[0]["code"] == "200" and resp[0]["successful"] == "true"
    assert resp[0]["url"] == rx.url + "/verify"
    assert resp[0]["body"] == "ok 200"
    assert resp[0]["headers"]["X-Receiver"] == ["yes"]
    assert get(c, nc["id"])["attributes"]["delivery-responses"] == resp


def test_unsigned_without_token(c, org, rx):
    ws = new_workspace(c, org)
    nc = create(c, ws, url=rx.url + "/unsigned", enabled=False)
    r = c.post("%s/notification-configurations/%s/actions/verify"
               % (API, nc["id"]))
    assert r.status == 200, r
    (_, headers, _), = rx.at("/unsigned")
    assert "X-TFE-Notification-Signature" not in headers


def test_token_removed_and_replaced(c, org, rx):
    ws = new_workspace(c, org)
    nc = create(c, ws, url=rx.url + "/tok", token="first")
    path = "%s/notification-configurations/%s" % (API, nc["id"])
    assert c.patch(path, nc_body(token="second")).status == 200
    c.post(path + "/actions/verify")
    # create and update verified (enabled) with first then second token
    got = rx.at("/tok")
    assert len(got) == 3
    for (_, h, body), tok in zip(got, (b"first", b"second", b"second")):
        assert h["X-TFE-Notification-Signature"] == hmac.new(
            tok, body, hashlib.sha512).hexdigest()
    assert c.patch(path, nc_body(token="")).status == 200
    got = rx.at("/tok")
    assert len(got) == 4 and "X-TFE-Notification-Signature" not in got[3][1]


def test_slack_and_teams_formats(c, org, rx):
    ws = new_workspace(c, org)
    slack = create(c, ws, **{"destination-type": "slack",
                             "url": rx.url + "/slack", "enabled": False})
    teams = create(c, ws, **{"destination-type": "microsoft-teams",
                             "url": rx.url + "/teams", "enabled": False})
    for nc in (slack, teams):
        r = c.post("%s/notification-configurations/%s/actions/verify"
                   % (API, nc["id"]))
        assert r.status == 200, r
    (_, h, body), = rx.at("/slack")
    doc = json.loads(body)
    assert "Verification of" in doc["text"]
    assert doc["attachments"][0]["title"].startswith("Verification of")
    assert "X-TFE-Notification-Signature" not in h
    (_, _, body), = rx.at("/teams")
    doc = json.loads(body)
    assert doc["@type"] == "MessageCard"
    assert "Verification of" in doc["summary"]
    assert doc["sections"][0]["facts"][0]["name"] == "Workspace"


def test_verify_down_receiver_records_failure(c, org):
    ws = new_workspace(c, org)
    url = "http://127.0.0.1:%d/down" % free_port()
    nc = create(c, ws, url=url, enabled=False)
    r = c.post("%s/notification-configurations/%s/actions/verify"
               % (API, nc["id"]))
    assert r.status == 200, r
    resp, = r.json["data"]["attributes"]["delivery-responses"]
    assert resp["successful"] == "false" and resp["code"] == ""
    assert resp["body"]


def test_create_enabled_verifies(c, org, rx):
    """TFE sends a verification when an enabled configuration is saved
    and its create answers with the delivery response; a disabled one
    and an e-mail one are not verified on save."""
    ws = new_workspace(c, org)
    nc = create(c, ws, url=rx.url + "/oncreate", token=SECRET)
    (_, h, body), = rx.at("/oncreate")
    doc = json.loads(body)
    assert doc["notifications"][0]["trigger"] == "verification"
    assert doc["notification_configuration_id"] == nc["id"]
    assert hmac.compare_digest(
        h["X-TFE-Notification-Signature"],
        hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest())
    resp, = nc["attributes"]["delivery-responses"]
    assert (resp["code"], resp["successful"]) == ("200", "true")
    assert resp["url"] == rx.url + "/oncreate"
    assert get(c, nc["id"]) == nc
    off = create(c, ws, url=rx.url + "/oncreate-off", enabled=False)
    assert rx.at("/oncreate-off") == []
    assert off["attributes"]["delivery-responses"] == []
    mail = create(c, ws, **{"destination-type": "email"})
    assert mail["attributes"]["delivery-responses"] == []


def test_create_enabled_failing_receiver(c, org, rx):
    """A receiver answering 500 or down: the configuration is created
    enabled with the failure recorded, as a later delivery retries."""
    ws = new_workspace(c, org)
    with rx.cv:
        rx.answers["/fail500"] = [500]
    nc = create(c, ws, url=rx.url + "/fail500")
    resp, = nc["attributes"]["delivery-responses"]
    assert (resp["code"], resp["successful"]) == ("500", "false")
    assert nc["attributes"]["enabled"] is True
    nc = create(c, ws, url="http://127.0.0.1:%d/down" % free_port())
    resp, = nc["attributes"]["delivery-responses"]
    assert (resp["code"], resp["successful"]) == ("", "false")


def test_create_silent_receiver_bounded(c, org):
    """A receiver that accepts the connection and never answers holds the
    create up to the delivery timeout (10 s), not longer, and the
    timeout is recorded."""
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    try:
        ws = new_workspace(c, org)
        t0 = time.monotonic()
        nc = create(c, ws, url="http://127.0.0.1:%d/silent"
                    % ls.getsockname()[1])
        took = time.monotonic() - t0
        resp, = nc["attributes"]["delivery-responses"]
        assert resp["successful"] == "false" and resp["code"] == ""
        assert took < 30, took
    finally:
        ls.close()


# ---- deliveries of runs ------------------------------------------------------

@needs_tofu
def test_trigger_filtering(c, org, rx):
    """A run that plans and applies: the configuration with two triggers
    gets exactly those, the one with every trigger all four the run goes
    through, the disabled one none.  Deliveries go out in event order, so
    once run:completed (the last event) has arrived, any delivery of an
    earlier event would have too."""
    ws = new_workspace(c, org)
    some = create(c, ws, url=rx.url + "/some?key=" + SECRET, token=SECRET,
                  triggers=["run:planning", "run:completed"])
    create(c, ws, url=rx.url + "/all", triggers=ALL)
    create(c, ws, url=rx.url + "/off", triggers=ALL, enabled=False)
    run = queue_run(c, ws, MAIN_TF)
    assert wait_run(c, run, ("applied",)) == "applied"

    def trig(got):
        return [json.loads(g[2])["notifications"][0]["trigger"] for g in got]
    got = rx.wait("/all", lambda g: "run:completed" in trig(g))
    assert trig(got) == ["verification", "run:created", "run:planning",
                         "run:applying", "run:completed"]
    got = rx.wait("/some?key=" + SECRET, lambda g: "run:completed" in trig(g))
    assert trig(got) == ["verification", "run:planning", "run:completed"]
    doc = json.loads(got[2][2])
    assert doc["run_id"] == run and doc["workspace_id"] == ws
    assert doc["organization_name"] == org
    assert doc["notifications"][0]["run_status"] == "applied"
    assert doc["run_url"].endswith("/runs/" + run)
    for _, h, body in got:
        assert hmac.compare_digest(
            h["X-TFE-Notification-Signature"],
            hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest())
    assert rx.at("/off") == []
    assert len(responses(c, some["id"], 3)) == 3


@needs_tofu
def test_retry_after_500(c, org, rx):
    ws = new_workspace(c, org)
    nc = create(c, ws, url=rx.url + "/retry", triggers=["run:created"])
    with rx.cv:  # after the verification on create
        rx.answers["/retry"] = [500]
    run = queue_run(c, ws, MAIN_TF)
    got = rx.wait("/retry", lambda g: len(g) >= 3)[1:]
    assert len(got) == 2 and got[0][2] == got[1][2]
    assert json.loads(got[1][2])["run_id"] == run
    resp = responses(c, nc["id"], 3)
    assert [(x["code"], x["successful"]) for x in resp] == [
        ("200", "true"), ("500", "false"), ("200", "true")]
    wait_run(c, run, ("applied",))


@needs_tofu
def test_down_receiver_never_stalls_a_run(c, org):
    ws = new_workspace(c, org)
    url = "http://127.0.0.1:%d/gone" % free_port()
    nc = create(c, ws, url=url, triggers=ALL)
    run = queue_run(c, ws, MAIN_TF)
    assert wait_run(c, run, ("applied",)) == "applied"
    resp = responses(c, nc["id"], 2)
    assert all(x["successful"] == "false" for x in resp)


@needs_tofu
def test_needs_attention_and_errored(c, org, rx):
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws")}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    create(c, ws, url=rx.url + "/attn",
           triggers=["run:needs_attention", "run:errored"])
    run = queue_run(c, ws, MAIN_TF)
    wait_run(c, run, ("planned",))
    got = rx.wait("/attn", lambda g: len(g) >= 2)
    assert len(got) == 2
    doc = json.loads(got[1][2])
    assert doc["notifications"][0]["trigger"] == "run:needs_attention"
    assert doc["notifications"][0]["run_status"] == "planned"
    r = c.post("%s/runs/%s/actions/discard" % (API, run), {})
    assert r.status == 202, r
    bad = queue_run(c, ws, b'resource "terraform_data" {\n')
    assert wait_run(c, bad, ("errored",)) == "errored"
    got = rx.wait("/attn", lambda g: len(g) >= 3)
    doc = json.loads(got[2][2])
    assert doc["run_id"] == bad
    assert doc["notifications"][0]["trigger"] == "run:errored"
    assert doc["notifications"][0]["run_status"] == "errored"


# ---- e-mail ------------------------------------------------------------------

def test_email_verify_and_run(c, org, smtp):
    _, box = smtp
    me = c.get(API + "/account/details").json["data"]
    ws = new_workspace(c, org)
    before = len(box.msgs)
    nc = create(c, ws, **{"destination-type": "email",
                          "email-addresses": ["ops@example.com"],
                          "users": [me["id"]],
                          "triggers": ["run:created"]})
    assert nc["attributes"]["url"] is None
    assert nc["relationships"]["users"]["data"] == [
        {"id": me["id"], "type": "users"}]
    r = c.post("%s/notification-configurations/%s/actions/verify"
               % (API, nc["id"]))
    assert r.status == 200, r
    msgs = box.wait(before + 1)
    frm, rcpt, text = msgs[before]
    assert frm == "terrace@example.com"
    want = {"ops@example.com"}
    if me["attributes"].get("email"):
        want.add(me["attributes"]["email"])
    assert set(rcpt) == want
    assert "Subject: Terrace: Verification of " + nc["attributes"]["name"] \
        in text
    resp, = r.json["data"]["attributes"]["delivery-responses"]
    assert resp["successful"] == "true"
    if os.access(TOFU_BIN, os.X_OK):
        run = queue_run(c, ws, MAIN_TF)
        msgs = box.wait(before + 2)
        assert run in msgs[before + 1][2]
        assert "Run Created" in msgs[before + 1][2]
        wait_run(c, run, ("applied",))


def test_email_users_replaced_on_update(c, org):
    me = c.get(API + "/account/details").json["data"]["id"]
    ws = new_workspace(c, org)
    nc = create(c, ws, **{"destination-type": "email", "users": [me]})
    path = "%s/notification-configurations/%s" % (API, nc["id"])
    r = c.patch(path, nc_body(name="n2"))
    assert r.status == 200, r
    assert r.json["data"]["relationships"]["users"]["data"] == []
    r = c.patch(path, nc_body(users=[me]))
    assert r.json["data"]["relationships"]["users"]["data"] == [
        {"id": me, "type": "users"}]
    # no addresses or users yet is allowed, as in TFE
    create(c, ws, **{"destination-type": "email"})


# ---- bad input ---------------------------------------------------------------

def test_bad_input(c, d, org, rx):
    ws = new_workspace(c, org)
    url = rx.url + "/bad"
    good = {"name": "n", "destination-type": "generic", "url": url,
            "enabled": True}
    cases = [
        ({"name": "n", "url": url}, 422, "Destination type"),
        (dict(good, **{"destination-type": "pager"}), 422, "Destination type"),
        ({"destination-type": "generic", "url": url}, 422, "Name"),
        (dict(good, name=""), 422, "Name"),
        (dict(good, name="x" * 256), 422, "Name"),
        (dict(good, name=5), 422, "name"),
        ({"name": "n", "destination-type": "generic"}, 422, "URL"),
        ({"name": "n", "destination-type": "slack"}, 422, "URL"),
        ({"name": "n", "destination-type": "microsoft-teams", "url": ""},
         422, "URL"),
        (dict(good, url="ftp://127.0.0.1/x"), 422, "http"),
        (dict(good, url="not a url"), 422, "http"),
        (dict(good, url="http://u:p@127.0.0.1/x"), 422, "password"),
        (dict(good, url="http://h/" + "x" * 2100), 422, "long"),
        (dict(good, triggers=["fly you fools!"]), 422, "trigger"),
        (dict(good, triggers="run:created"), 422, "trigger"),
        (dict(good, triggers=[5]), 422, "trigger"),
        (dict(good, enabled="yes"), 422, "enabled"),
        (dict(good, token="t" * 1025), 422, "token"),
        (dict(good, **{"email-addresses": ["a@b.c"]}), 422, "email"),
        ({"name": "n", "destination-type": "email",
          "email-addresses": ["not-an-address"]}, 422, "e-mail"),
        ({"name": "n", "destination-type": "email",
          "email-addresses": ["a@b.c\r\nBcc: x@y.z"]}, 422, "e-mail"),
        ({"name": "n", "destination-type": "email",
          "email-addresses": "a@b.c"}, 422, "e-mail"),
        ({"name": "n", "destination-type": "email",
          "users": ["user-doesnotexist"]}, 422, "member"),
    ]
    path = "%s/workspaces/%s/notification-configurations" % (API, ws)
    for attrs, status, word in cases:
        r = c.post(path, nc_body(**dict(attrs)))
        assert_error(r, status)
        assert word.lower() in r.json["errors"][0]["detail"].lower(), (
            attrs, r)
    assert_error(c.post(path, raw=b"{nope", ctype="application/json"), 400)
    assert_error(c.post(path, {"data": {"type": "vars",
                                        "attributes": good}}), 409)
    assert_error(c.post("%s/workspaces/ws-doesnotexist/"
                        "notification-configurations" % API,
                        nc_body(**good)), 404)
    assert_error(c.get("%s/workspaces/ws-doesnotexist/"
                       "notification-configurations" % API), 404)
    assert c.get(path).json["data"] == []

    nc = create(c, ws, url=url)
    npath = "%s/notification-configurations/%s" % (API, nc["id"])
    for attrs, word in (({"destination-type": "slack"}, "cannot be changed"),
                        ({"url": "gopher://x"}, "http"),
                        ({"url": ""}, "URL"),
                        ({"name": ""}, "Name"),
                        ({"triggers": ["run:exploded"]}, "trigger"),
                        ({"users": [nc["id"]]}, "email")):
        r = c.patch(npath, nc_body(**attrs))
        assert_error(r, 422)
        assert word.lower() in r.json["errors"][0]["detail"].lower(), r
    assert get(c, nc["id"]) == nc
    for method in ("get", "patch", "delete"):
        fn = getattr(c, method)
        r = fn("%s/notification-configurations/nc-doesnotexist" % API,
               nc_body()) if method == "patch" else \
            fn("%s/notification-configurations/nc-doesnotexist" % API)
        assert_error(r, 404)
    assert_error(c.post("%s/notification-configurations/nc-doesnotexist/"
                        "actions/verify" % API), 404)
    assert sql(d, "SELECT count(*) FROM notification_configs"
               " WHERE workspace_id = '%s'" % ws) == [["1"]]
