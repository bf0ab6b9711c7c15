"""HTTP hardening: TLS 1.0 and 1.1 are refused while 1.2 and 1.3 work;
every response (API documents, errors, tokens, state, signed log URLs,
discovery, health) carries X-Content-Type-Options: nosniff,
Cache-Control: no-store and, the daemon speaking TLS, HSTS; the access
log never holds a signed URL's signature (the log-read URL's, in its
path, whatever the method, nor an upload URL's, in its query), a path
cannot forge a log line, long request headers are served up to the
connection's memory pool, refused beyond it, and a body over the limit
gets its 413 even by a client that sends all of it first."""
import os
import socket
import ssl
import time
import warnings

import pytest

from conftest import temp_org
from terrace import Daemon
from test_runs import API, make_cv, make_ws, new_run


@pytest.fixture(scope="module")
def d():
    dm = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
                extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


@pytest.fixture(scope="module")
def c(d):
    return d.client()


@pytest.fixture(scope="module")
def org(c):
    yield from temp_org(c)


def handshake(d, version):
    """Handshakes with the client held to exactly version; returns the
    version agreed, or raises ssl.SSLError/OSError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(d.ca)
        # the client must be able to speak the old versions, or a refusal
        # would prove nothing about the server
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = version
        ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.version()


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused(d, version):
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(d, getattr(ssl.TLSVersion, version))


@pytest.mark.parametrize("version,name", [("TLSv1_2", "TLSv1.2"),
                                          ("TLSv1_3", "TLSv1.3")])
def test_current_tls_accepted(d, version, name):
    assert handshake(d, getattr(ssl.TLSVersion, version)) == name


def check_headers(r):
    h = {k.lower(): v for k, v in r.headers.items()}
    assert h.get("x-content-type-options") == "nosniff", r
    assert h.get("cache-control") == "no-store", r
    assert h.get("strict-transport-security") == "max-age=31536000", r


def test_security_headers(d, c, org):
    anon = c.with_token(None)
    ws = make_ws(c, org)
    run = new_run(c, ws, make_cv(c, ws))
    plan = run["relationships"]["plan"]["data"]["id"]
    log_url = c.get("%s/plans/%s" % (API, plan)).json[
        "data"]["attributes"]["log-read-url"]
    tok = c.post("%s/organizations/%s/authentication-token" % (API, org))
    assert tok.status == 201, tok
    seen = [
        c.get("%s/account/details" % API),                 # 200, a user
        tok,                                                # a new token
        c.get("%s/workspaces/%s/current-state-version" % (API, ws)),  # 404
        anon.get("%s/organizations" % API),                 # 401
        c.get("%s/nowhere" % API),                          # 404
        anon.get(log_url),                                  # run output
        anon.get("/.well-known/terraform.json"),            # discovery
        anon.get("%s/ping" % API),
        anon.get("/_health_check"),
    ]
    statuses = [r.status for r in seen]
    assert statuses == [200, 201, 404, 401, 404, 200, 200, 204, 200], \
        statuses
    for r in seen:
        check_headers(r)


def test_long_headers(d, c):
    """The request line and headers may take most of a connection's
    40 KiB memory pool (src/http/server.c, CONN_MEMORY): a 24 KiB header
    beside a 4 KiB query string is served; 64 KiB of headers are refused
    with 431, and the server goes on answering.  The client sends the
    whole request before it reads: the server answers once the pool is
    full, with the rest still on its way, and the answer must reach the
    client, not a reset (src/http/linger.c), every time."""
    details = "%s/account/details" % API
    r = c.get(details + "?pad=" + "p" * 4096, headers={"X-Pad": "a" * 24576})
    assert r.status == 200, r
    for _ in range(20):
        r = c.get(details, headers={"X-Pad": "a" * 65536})
        assert r.status == 431, r
    assert c.get(details).status == 200


def test_oversized_body_is_answered(d, c):
    """A body over --max-body (16 MiB) is refused with 413 as soon as its
    header is read.  The client sends the whole 20 MiB before it reads;
    the connection lingers while the rest comes (src/http/linger.c), so
    the client reads the 413, not a reset, every time."""
    body = b"x" * (20 << 20)
    for _ in range(10):
        r = c.post(API + "/organizations", raw=body,
                   ctype="application/vnd.api+json")
        assert r.status == 413, r
        assert "larger than the limit" in r.json["errors"][0]["detail"], r
    assert c.get(API + "/account/details").status == 200


def test_state_download_headers(d, c, org):
    ws = make_ws(c, org)
    r = c.post("%s/workspaces/%s/actions/lock" % (API, ws), {})
    assert r.status == 200, r
    import base64
    import hashlib
    import json
    state = json.dumps({"version": 4, "serial": 1, "lineage": "l-hdr",
                        "terraform_version": "1.10.0", "outputs": {},
                        "resources": []}).encode()
    r = c.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions",
        "attributes": {"serial": 1, "md5": hashlib.md5(state).hexdigest(),
                       "lineage": "l-hdr",
                       "state": base64.b64encode(state).decode()}}})
    assert r.status == 201, r
    check_headers(r)
    dl = r.json["data"]["attributes"]["hosted-state-download-url"]
    got = c.get(dl)
    assert got.status == 200 and got.body == state, got
    check_headers(got)


def full_log(d, wants, timeout=10):
    """The daemon's whole log once it holds every line part in wants (a
    request's line is written just after its response is sent)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(os.path.join(d.tmp, "terraced.log"), "rb") as f:
            log = f.read().decode(errors="replace")
        if all(w in log for w in wants) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_signatures_not_in_access_log(d, c, org):
    ws = make_ws(c, org)
    # an upload URL signed in its query: make_cv PUTs the tarball to it
    r = c.post("%s/workspaces/%s/configuration-versions" % (API, ws),
               {"data": {"type": "configuration-versions",
                         "attributes": {"auto-queue-runs": False}}})
    assert r.status == 201, r
    upload = r.json["data"]["attributes"]["upload-url"]
    up_sig = upload.split("sig=")[1].split("&")[0]
    cv = make_cv(c, ws)
    run = new_run(c, ws, cv)
    plan = run["relationships"]["plan"]["data"]["id"]
    url = c.get("%s/plans/%s" % (API, plan)).json[
        "data"]["attributes"]["log-read-url"]
    sig = url.rsplit("/", 1)[1]
    assert len(sig) == 64
    anon = c.with_token(None)
    assert anon.get(url + "?offset=0&limit=10").status == 200
    assert anon.post(url).status == 405            # logged as well
    assert anon.put(upload, raw=b"not a tarball").status in (200, 400, 422)
    assert anon.get("%s/logs/x/%s/y/z" % (API, sig)).status == 404
    # a request that would forge a log line if written as is
    assert anon.get("%s/ping%%0Aforged%%20line" % API).status == 404
    path = url.split("://", 1)[1].split("/", 1)[1]
    prefix = "/" + path.rsplit("/", 1)[0] + "/"
    wants = ["GET %sREDACTED 200" % prefix, "POST %sREDACTED 405" % prefix,
             "GET /api/v2/logs/x/REDACTED/y/z 404",
             "GET /api/v2/ping%0Aforged%20line 404"]
    log = full_log(d, wants)
    for w in wants:
        assert w in log, (w, log[-2000:])
    assert sig not in log
    assert up_sig not in log
    assert "\nforged line" not in log
