"""Integer bounds: every integer a request carries (query parameters
page[number], page[size], offset and limit; the expiry in a signed URL's
path or query; JSON attributes serial, session-timeout and
session-remember) is sent INT64_MAX, INT64_MIN, -1, 2^63, huge digit
strings and non-numbers.  Each answer must be a clean 2xx, 400, 404 or
422 (never a 5xx, never a dropped connection), the daemon must survive
(it runs with UBSan, which aborts on signed overflow) and its log must
hold no sanitizer report.  Then a state whose serial is INT64_MAX is
rolled back to, which must not overflow the next serial."""
import base64
import hashlib
import json
import os
import urllib.parse

import pytest

from conftest import unique
from terrace import Daemon
from test_runs import make_cv, new_run

API = "/api/v2"
I64_MAX = 2 ** 63 - 1
I64_MIN = -2 ** 63

QUERY_VALUES = [str(I64_MAX), str(I64_MIN), "-1", str(2 ** 63),
                str(2 ** 64), str(-2 ** 63 - 1), "9" * 40, "-" + "9" * 40,
                "0", "1", "abc", "", "1e3", "0x10", "+1", " 1", "1 ",
                "1.5", "%00", str(I64_MAX - 1)]
JSON_VALUES = [I64_MAX, I64_MIN, -1, 0, 2 ** 63, -2 ** 63 - 1, 10 ** 40,
               "12", 1.5, 1e300, None, True, [], {}]
CLEAN = (200, 201, 202, 204, 400, 404, 409, 422)


def backend():
    return os.environ.get("TERRACE_TEST_BACKEND", "sqlite")


@pytest.fixture(scope="module")
def d():
    dm = Daemon(backend=backend(), extra_args=["--executors", "0"])
    dm.start()
    yield dm
    dm.close()


def clean(d, r, what):
    assert r.status in CLEAN, (what, r)
    if r.status >= 400:
        doc = r.json
        assert doc["errors"][0]["status"] == str(r.status), (what, r)
    assert d.proc.poll() is None, (what, d.log_text())


def no_reports(d):
    log = d.log_text()
    for bad in ("runtime error", "AddressSanitizer", "UndefinedBehavior"):
        assert bad not in log, log
    assert d.proc.poll() is None


def q(v):
    return urllib.parse.quote(v, safe="")


@pytest.fixture(scope="module")
def objects(d):
    c = d.client()
    org = unique("org")
    r = c.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org, "email": "o@example.com"}}})
    assert r.status == 201, r
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": "w"}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    run = new_run(c, ws, make_cv(c, ws))
    return {"c": c, "org": org, "ws": ws, "run": run}


def new_ws(c, org):
    """A fresh workspace, locked by the caller (to write state)."""
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("w")}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    assert c.post("%s/workspaces/%s/actions/lock" % (API, ws),
                  {}).status == 200
    return ws


def list_paths(o):
    org, ws = o["org"], o["ws"]
    paths = [
        "/organizations", "/organizations/%s/workspaces" % org,
        "/organizations/%s/projects" % org, "/organizations/%s/tags" % org,
        "/organizations/%s/varsets" % org,
        "/organizations/%s/organization-memberships" % org,
        "/organizations/%s/runs/queue" % org,
        "/workspaces/%s/runs" % ws, "/workspaces/%s/state-versions" % ws,
        "/workspaces/%s/configuration-versions" % ws,
        "/workspaces/%s/relationships/tags" % ws,
        "/workspaces/%s/relationships/remote-state-consumers" % ws,
        "/workspaces/%s/vars" % ws, "/workspaces/%s/varsets" % ws,
        "/state-versions?filter[workspace][name]=w"
        "&filter[organization][name]=%s" % org,
        "/admin/terraform-versions", "/admin/users",
    ]
    paths += ["/runs/%s/run-events" % o["run"]["id"],
              "/runs/%s/comments" % o["run"]["id"]]
    return paths


def test_page_parameters(d, objects):
    c = objects["c"]
    for path in list_paths(objects):
        sep = "&" if "?" in path else "?"
        for name in ("page[number]", "page[size]"):
            for v in QUERY_VALUES:
                url = "%s%s%s%s=%s" % (API, path, sep, q(name), q(v))
                clean(d, c.get(url), url)
        url = "%s%s%spage[number]=%d&page[size]=100" % (API, path, sep,
                                                       10 ** 6)
        clean(d, c.get(url), url)
    no_reports(d)


def test_log_offsets(d, objects):
    c = objects["c"]
    run = objects["run"]
    plan = run["relationships"]["plan"]["data"]["id"]
    apply_ = run["relationships"]["apply"]["data"]["id"]
    r = c.get("%s/plans/%s" % (API, plan))
    assert r.status == 200, r
    signed = r.json["data"]["attributes"]["log-read-url"]
    bases = [signed, "%s/plans/%s/logs" % (API, plan),
             "%s/applies/%s/logs" % (API, apply_)]
    for base in bases:
        for v in QUERY_VALUES:
            for other in ("0", "1", str(I64_MAX), "1048576"):
                for query in ("offset=%s&limit=%s" % (q(v), other),
                              "offset=%s&limit=%s" % (other, q(v))):
                    url = base + "?" + query
                    clean(d, c.get(url, token=None if base == signed
                                   else ...), url)
    # the expiry in the signed path: any value is refused, never a crash
    head, exp, sig = signed.rsplit("/", 2)
    for v in QUERY_VALUES:
        if v in ("", " 1", "1 "):
            continue  # not a path segment
        url = "%s/%s/%s?offset=0&limit=10" % (head, q(v), sig)
        r = c.get(url, token=None)
        clean(d, r, url)
        assert r.status == 404, (url, r)
    no_reports(d)


def test_signed_query_expiry(d, objects):
    c = objects["c"]
    anon = d.client(token=None)
    st = (json.dumps({"version": 4, "terraform_version": "1.6.2",
                      "serial": 1, "lineage": "l-1", "outputs": {},
                      "resources": []}) + "\n").encode()
    ws = new_ws(c, objects["org"])
    r = c.post("%s/workspaces/%s/state-versions" % (API, ws), {"data": {
        "type": "state-versions",
        "attributes": {"serial": 1, "md5": hashlib.md5(st).hexdigest(),
                       "lineage": "l-1",
                       "state": base64.b64encode(st).decode()}}})
    assert r.status == 201, r
    url = r.json["data"]["attributes"]["hosted-state-download-url"]
    parts = urllib.parse.urlsplit(url)
    sig = urllib.parse.parse_qs(parts.query)["sig"][0]
    base = "%s://%s%s" % (parts.scheme, parts.netloc, parts.path)
    for v in QUERY_VALUES:
        u = "%s?expires=%s&sig=%s" % (base, q(v), sig)
        r = anon.get(u)
        clean(d, r, u)
        assert r.status == 404, (u, r)
    assert anon.get(url).body == st
    no_reports(d)


def test_json_integers(d, objects):
    c = objects["c"]
    org = objects["org"]
    for name in ("session-timeout", "session-remember"):
        for v in JSON_VALUES:
            body = json.dumps({"data": {"type": "organizations",
                                        "attributes": {name: v}}})
            r = c.request("PATCH", API + "/organizations/" + org,
                          raw=body, ctype="application/vnd.api+json")
            clean(d, r, (name, v))
            # null is "not set", as TFE answers it and the tfe provider
            # sends it back
            if v is not None and not (isinstance(v, int)
                                      and not isinstance(v, bool)
                                      and 1 <= v <= 525600):
                assert r.status in (400, 422), (name, v, r)
    # serial: a fresh workspace per value, so accepted ones do not
    # change what the next one is checked against
    for v in JSON_VALUES:
        ws = new_ws(c, org)
        body = json.dumps({"data": {"type": "state-versions", "attributes": {
            "serial": v, "md5": "0" * 32, "lineage": "l-1"}}})
        r = c.request("POST", "%s/workspaces/%s/state-versions" % (API, ws),
                      raw=body, ctype="application/vnd.api+json")
        clean(d, r, ("serial", v))
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or \
                v > I64_MAX:
            assert r.status in (400, 422), (v, r)
    no_reports(d)


def state_file(serial):
    return (json.dumps({"version": 4, "terraform_version": "1.6.2",
                        "serial": serial, "lineage": "l-max",
                        "outputs": {}, "resources": []}) + "\n").encode()


def versions(c, path):
    """The workspace's state versions, their signed URLs without the
    query: each read signs them again, with an expiry counted from then,
    so two reads a second apart differ there and nowhere else."""
    data = c.get(path).json["data"]
    for v in data:
        for k, u in v["attributes"].items():
            if k.endswith("-url") and isinstance(u, str):
                v["attributes"][k] = u.split("?", 1)[0]
    return data


def test_rollback_at_the_largest_serial(d, objects):
    """Rolling back makes a new version with the current serial + 1; at
    INT64_MAX there is none, and the answer says so."""
    c = objects["c"]
    org = objects["org"]
    ws = new_ws(c, org)
    path = "%s/workspaces/%s/state-versions" % (API, ws)
    first = None
    for serial in (1, I64_MAX):
        st = state_file(serial)
        r = c.post(path, {"data": {"type": "state-versions", "attributes": {
            "serial": serial, "md5": hashlib.md5(st).hexdigest(),
            "lineage": "l-max", "state": base64.b64encode(st).decode()}}})
        assert r.status == 201, r
        first = first or r.json["data"]["id"]
    before = versions(c, path)
    r = c.patch(path, {"data": {"type": "state-versions", "relationships": {
        "rollback-state-version": {"data": {
            "type": "state-versions", "id": first}}}}})
    clean(d, r, "rollback")
    assert r.status == 422, r
    assert "serial" in r.json["errors"][0]["detail"]
    assert versions(c, path) == before
    no_reports(d)
