"""Remote state: state versions (inline and upload-URL flows), downloads,
outputs, listing, rollback, and the bad-input matrix.  Every rejected
request is followed by a read proving nothing changed."""
import base64
import hashlib
import json
import os
import time
import urllib.parse

import pytest

from conftest import assert_error, unique
from terrace import Daemon

LINEAGE = "0b6a1f37-6d2c-4a8e-9d8f-3b0c9f6e1a11"


def make_state(serial, lineage=LINEAGE, outputs=None, resources=None,
               version=4, extra=""):
    """A state file as the CLI writes it (indented, trailing newline)."""
    doc = {"version": version, "terraform_version": "1.6.2",
           "serial": serial, "lineage": lineage,
           "outputs": outputs if outputs is not None else {
               "greeting": {"value": "hello", "type": "string"},
               "secret": {"value": "s3cr3t", "type": "string",
                          "sensitive": True},
               "nums": {"value": [1, 2.5], "type": ["tuple",
                                                    ["number", "number"]]},
           },
           "resources": resources if resources is not None else [
               {"mode": "managed", "type": "null_resource", "name": "a",
                "provider": "provider[\"registry.terraform.io/hashicorp/"
                            "null\"]",
                "instances": [{"schema_version": 0,
                               "attributes": {"id": "1"}}]}],
           "check_results": None}
    return (json.dumps(doc, indent=2) + extra + "\n").encode()


def md5(b):
    return hashlib.md5(b).hexdigest()


def sv_body(state=None, serial=None, md5_=None, lineage=LINEAGE, **attrs):
    a = {}
    if serial is not None:
        a["serial"] = serial
    if md5_ is not None:
        a["md5"] = md5_
    if lineage is not None:
        a["lineage"] = lineage
    if state is not None:
        a["state"] = base64.b64encode(state).decode()
    a.update(attrs)
    return {"data": {"type": "state-versions", "attributes": a}}


def create(client, ws, state, serial=None, **kw):
    if serial is None:
        serial = json.loads(state)["serial"]
    return client.post("/api/v2/workspaces/%s/state-versions" % ws,
                       sv_body(state, serial, md5(state), **kw))


def make_ws(client, org, name=None):
    r = client.post("/api/v2/organizations/%s/workspaces" % org, {
        "data": {"type": "workspaces",
                 "attributes": {"name": name or unique("ws")}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def lock(client, ws):
    r = client.post("/api/v2/workspaces/%s/actions/lock" % ws, {})
    assert r.status == 200, r


def unlock(client, ws):
    r = client.post("/api/v2/workspaces/%s/actions/unlock" % ws, {})
    assert r.status == 200, r


def snapshot(client, ws):
    """Everything a rejected request must leave alone."""
    cur = client.get("/api/v2/workspaces/%s/current-state-version" % ws)
    lst = client.get("/api/v2/workspaces/%s/state-versions?page[size]=100"
                     % ws)
    assert lst.status == 200, lst
    cur_id = cur.json["data"]["id"] if cur.status == 200 else None
    body = None
    if cur_id:
        body = client.get(cur.json["data"]["attributes"]
                          ["hosted-state-download-url"]).body
    return (cur.status, cur_id, body,
            [(s["id"], s["attributes"]["status"]) for s in lst.json["data"]])


@pytest.fixture
def ws(admin, org):
    w = make_ws(admin, org)
    lock(admin, w)
    return w


def test_inline_create_read_download(admin, anon, ws):
    st = make_state(1)
    r = create(admin, ws, st)
    assert r.status == 201, r
    assert r.headers["X-Terraform-Snapshot-Interval"] == "5"
    d = r.json["data"]
    assert d["type"] == "state-versions" and d["id"].startswith("sv-")
    a = d["attributes"]
    assert a["status"] == "finalized" and a["serial"] == 1
    assert a["size"] == len(st) and a["state-version"] == 4
    assert a["terraform-version"] == "1.6.2"
    assert a["resources-processed"] is True
    assert a["vcs-commit-sha"] is None
    assert a["created-at"].endswith("Z")
    assert a["hosted-state-upload-url"] is None
    assert a["hosted-json-state-download-url"] is None
    assert a["resources"] == [{
        "name": "a", "type": "null_resource", "count": 1, "module": "root",
        "provider": "provider[\"registry.terraform.io/hashicorp/null\"]"}]
    assert a["modules"] == {"root": {"null-resource": 1}}
    rel = d["relationships"]
    assert rel["workspace"]["data"] == {"type": "workspaces", "id": ws}
    assert rel["run"]["data"] is None
    assert rel["created-by"]["data"]["type"] == "users"
    assert len(rel["outputs"]["data"]) == 3

    # read, current
    r2 = admin.get("/api/v2/state-versions/" + d["id"])
    assert r2.status == 200 and r2.json["data"]["id"] == d["id"]
    cur = admin.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.status == 200 and cur.json["data"]["id"] == d["id"]
    assert cur.headers["X-Terraform-Snapshot-Interval"] == "5"

    # download with the token (what the CLI does) and by signature alone
    url = a["hosted-state-download-url"]
    dl = admin.get(url, headers={"Accept": "application/json"})
    assert dl.status == 200 and dl.body == st
    assert dl.headers["Content-Type"] == "application/json"
    dl = anon.get(url)
    assert dl.status == 200 and dl.body == st
    bad = url.replace("sig=", "sig=0")
    assert_error(anon.get(bad), 404)
    path = urllib.parse.urlparse(url).path
    assert_error(anon.get(path), 404)             # no signature, no token
    assert admin.get(path).body == st             # token, no signature
    assert_error(admin.get(path.replace(d["id"], "sv-nope")), 404)


def files_holding(dirs, needle):
    """Files under dirs whose bytes contain needle."""
    found = []
    for d in dirs:
        for root, _, files in os.walk(d or "/nonexistent"):
            for name in files:
                try:
                    with open(os.path.join(root, name), "rb") as f:
                        if needle in f.read():
                            found.append(os.path.join(root, name))
                except OSError:
                    pass
    return found


def test_outputs(daemon, admin, ws):
    secret = unique("s3cr3t")
    outputs = {
        "greeting": {"value": "hello", "type": "string"},
        "secret": {"value": secret, "type": "string", "sensitive": True},
        "real": {"value": 1000.1, "type": "number"},
        "obj": {"value": {"k": [1, "x"]},
                "type": ["object", {"k": ["tuple", ["number", "string"]]}]},
    }
    st = make_state(1, outputs=outputs)
    r = create(admin, ws, st)
    assert r.status == 201, r
    sv = r.json["data"]["id"]

    # current-state-version-outputs hides sensitive values
    r = admin.get("/api/v2/workspaces/%s/current-state-version-outputs" % ws)
    assert r.status == 200, r
    by = {o["attributes"]["name"]: o for o in r.json["data"]}
    assert set(by) == set(outputs)
    sec = by["secret"]["attributes"]
    assert sec["sensitive"] is True and sec["value"] is None
    assert sec["detailed-type"] == "string" and sec["type"] == "string"
    assert by["obj"]["attributes"]["type"] == "object"
    assert by["obj"]["attributes"]["detailed-type"] == [
        "object", {"k": ["tuple", ["number", "string"]]}]
    assert by["obj"]["attributes"]["value"] == {"k": [1, "x"]}
    # numbers keep their shortest form on the wire
    assert b'"value":1000.1,' in r.body
    assert r.json["meta"]["pagination"]["total-count"] == 4

    # ...and state-version-outputs/:id reveals them
    o = admin.get("/api/v2/state-version-outputs/" + by["secret"]["id"])
    assert o.status == 200 and o.json["data"]["attributes"]["value"] == \
        secret
    # at rest it is sealed: in no file of the data directory (SQLite and
    # blobs) nor of the PostgreSQL cluster
    assert files_holding([daemon.data_dir, daemon.pg_dir],
                         secret.encode()) == []
    assert_error(admin.get("/api/v2/state-version-outputs/wsout-nope"), 404)

    # the per-version list shows values, paginated
    r = admin.get("/api/v2/state-versions/%s/outputs?page[size]=3" % sv)
    assert r.status == 200 and len(r.json["data"]) == 3
    assert r.json["meta"]["pagination"]["total-count"] == 4
    r = admin.get("/api/v2/state-versions/%s/outputs?page[number]=999" % sv)
    assert r.status == 200 and r.json["data"] == []
    assert r.json["meta"]["pagination"]["current-page"] == 999
    vals = {o["attributes"]["name"]: o["attributes"]["value"]
            for o in admin.get("/api/v2/state-versions/%s/outputs" % sv)
            .json["data"]}
    assert vals["secret"] == secret and vals["real"] == 1000.1

    # include=outputs
    for path in ("/api/v2/state-versions/%s?include=outputs" % sv,
                 "/api/v2/workspaces/%s/current-state-version"
                 "?include=outputs" % ws):
        r = admin.get(path)
        assert r.status == 200, r
        inc = r.json["included"]
        assert {i["type"] for i in inc} == {"state-version-outputs"}
        assert len(inc) == 4
    assert_error(admin.get("/api/v2/state-versions/%s?include=bogus" % sv),
                 400)


def test_workspace_without_state(admin, org):
    w = make_ws(admin, org)
    assert_error(admin.get("/api/v2/workspaces/%s/current-state-version" % w),
                 404)
    r = admin.get("/api/v2/workspaces/%s/current-state-version-outputs" % w)
    assert r.status == 200 and r.json["data"] == []
    r = admin.get("/api/v2/workspaces/%s/state-versions" % w)
    assert r.status == 200 and r.json["data"] == []


def test_upload_url_flow(admin, anon, ws):
    st = make_state(4)
    js = b'{"format_version":"1.0","values":{}}'
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 4, md5(st)))
    assert r.status == 201, r
    assert r.headers["X-Terraform-Snapshot-Interval"] == "5"
    d = r.json["data"]
    a = d["attributes"]
    assert a["status"] == "pending" and a["hosted-state-download-url"] is None
    up, jup = a["hosted-state-upload-url"], a["hosted-json-state-upload-url"]
    assert up and jup
    # pending is never current, and cannot be downloaded
    assert_error(admin.get("/api/v2/workspaces/%s/current-state-version"
                           % ws), 404)
    dl = urllib.parse.urlparse(up).path.replace("/upload", "/download")
    assert_error(admin.get(dl), 404)

    # JSON state first (go-tfe uploads both at once), then the state
    assert anon.put(jup, raw=js).status == 200
    assert_error(anon.put(jup, raw=js), 409)
    assert anon.put(up, raw=st).status == 200
    r = admin.get("/api/v2/state-versions/" + d["id"])
    a = r.json["data"]["attributes"]
    assert a["status"] == "finalized" and a["serial"] == 4
    assert a["hosted-state-upload-url"] is None
    assert a["lineage"] == LINEAGE and a["size"] == len(st)
    assert admin.get(a["hosted-state-download-url"]).body == st
    assert admin.get(a["hosted-json-state-download-url"]).body == js
    cur = admin.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.json["data"]["id"] == d["id"]
    outs = admin.get("/api/v2/workspaces/%s/current-state-version-outputs"
                     % ws)
    assert len(outs.json["data"]) == 3

    # after finalization the upload URL is spent
    before = snapshot(admin, ws)
    assert_error(anon.put(up, raw=st), 409)
    assert snapshot(admin, ws) == before


def test_json_state_after_finalize_and_without(admin, anon, ws):
    st = make_state(1)
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 1, md5(st)))
    a = r.json["data"]["attributes"]
    assert anon.put(a["hosted-state-upload-url"], raw=st).status == 200
    sv = admin.get("/api/v2/state-versions/" + r.json["data"]["id"])
    path = urllib.parse.urlparse(sv.json["data"]["attributes"]
                                 ["hosted-state-download-url"]).path
    assert_error(admin.get(path.replace("/download", "/json-download")), 404)
    # the JSON upload may land after the state (parallel PUTs)
    assert_error(anon.put(a["hosted-json-state-upload-url"], raw=b"{nope"),
                 422)
    assert anon.put(a["hosted-json-state-upload-url"], raw=b"[]").status \
        == 200
    assert admin.get(path.replace("/download", "/json-download")).body == \
        b"[]"


def test_inline_json_state(admin, ws):
    st = make_state(1)
    js = b'{"format_version":"1.0"}'
    r = create(admin, ws, st,
               **{"json-state": base64.b64encode(js).decode(),
                  "json-state-outputs": base64.b64encode(b"{}").decode()})
    assert r.status == 201, r
    url = r.json["data"]["attributes"]["hosted-json-state-download-url"]
    assert admin.get(url).body == js


def test_upload_rejections_change_nothing(admin, anon, ws):
    base = make_state(1)
    assert create(admin, ws, base).status == 201
    st = make_state(2)
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 2, md5(st)))
    up = r.json["data"]["attributes"]["hosted-state-upload-url"]
    sv = r.json["data"]["id"]
    before = snapshot(admin, ws)
    notjson = b"this is not json"
    for body in (make_state(3), b""):                  # md5 mismatch
        assert_error(anon.put(up, raw=body), 422)
        assert snapshot(admin, ws) == before
    assert_error(anon.put(up.replace("sig=", "sig=f"), raw=st), 404)
    assert_error(anon.put(urllib.parse.urlparse(up).path, raw=st), 404)
    # a signature for another state version's path does not transfer
    other = up.replace(sv, "sv-AAAAAAAAAAAAAAAA")
    assert_error(anon.put(other, raw=st), 404)
    assert snapshot(admin, ws) == before
    # a pending version whose declared md5 matches bytes that are not a
    # state: rejected at upload
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 2, md5(notjson)))
    up2 = r.json["data"]["attributes"]["hosted-state-upload-url"]
    assert_error(anon.put(up2, raw=notjson), 422)
    # the first pending one still works afterwards
    assert anon.put(up, raw=st).status == 200
    cur = admin.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.json["data"]["id"] == sv
    # and the other pending one was discarded by that finalization
    r = admin.get("/api/v2/state-versions/" + r.json["data"]["id"])
    assert r.json["data"]["attributes"]["status"] == "discarded"
    assert_error(anon.put(up2, raw=notjson), 409)


def test_upload_outputs_bound_and_big_attributes(admin, anon, ws):
    """Uploads are checked streaming: outputs over 16 MB are refused with
    413 and change nothing; a 20 MB resource attribute is fine and only
    its summary is kept."""
    base = make_state(1)
    assert create(admin, ws, base).status == 201
    before = snapshot(admin, ws)
    big_out = make_state(2, outputs={"o": {"value": "x" * (17 << 20),
                                           "type": "string"}})
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 2, md5(big_out)))
    assert r.status == 201, r
    up = r.json["data"]["attributes"]["hosted-state-upload-url"]
    resp = anon.put(up, raw=big_out)
    assert_error(resp, 413)
    assert "outputs are larger than 16 MB" in \
        resp.json["errors"][0]["detail"]
    assert snapshot(admin, ws)[:3] == before[:3]
    pending = admin.get("/api/v2/state-versions/" + r.json["data"]["id"])
    assert pending.json["data"]["attributes"]["status"] == "pending"
    res = [{"mode": "managed", "type": "terraform_data", "name": "blob",
            "provider": "provider[\"terraform.io/builtin/terraform\"]",
            "instances": [{"attributes": {"input": "y" * (20 << 20)}},
                          {"attributes": {}}]}]
    st = make_state(3, resources=res)
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 3, md5(st)))
    up = r.json["data"]["attributes"]["hosted-state-upload-url"]
    assert anon.put(up, raw=st).status == 200
    a = admin.get("/api/v2/state-versions/" + r.json["data"]["id"]) \
        .json["data"]["attributes"]
    assert a["status"] == "finalized" and a["size"] == len(st)
    assert a["resources"] == [{
        "name": "blob", "type": "terraform_data", "count": 2,
        "module": "root",
        "provider": "provider[\"terraform.io/builtin/terraform\"]"}]
    assert admin.get(a["hosted-state-download-url"]).body == st


def test_pending_rechecked_at_upload(admin, anon, ws):
    """A pending version loses to a newer state written meanwhile."""
    st = make_state(5)
    r = admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                   sv_body(None, 5, md5(st)))
    up = r.json["data"]["attributes"]["hosted-state-upload-url"]
    assert create(admin, ws, make_state(9)).status == 201
    before = snapshot(admin, ws)
    assert_error(anon.put(up, raw=st), 409)   # discarded by the inline one
    assert snapshot(admin, ws) == before


def test_successor_rules(admin, org, ws):
    assert create(admin, ws, make_state(5)).status == 201
    before = snapshot(admin, ws)
    for st, kw in [
        (make_state(4), {}),                           # lower serial
        (make_state(5, extra=" "), {}),                # same serial, new md5
        (make_state(6, lineage="other-lineage"), {"lineage":
                                                  "other-lineage"}),
    ]:
        r = create(admin, ws, st, **kw)
        assert_error(r, 409)
        assert snapshot(admin, ws) == before
    # pending creation is checked up front as well
    st = make_state(3)
    assert_error(admin.post("/api/v2/workspaces/%s/state-versions" % ws,
                            sv_body(None, 3, md5(st))), 409)
    assert snapshot(admin, ws) == before
    # a retried upload of the current state is fine
    assert create(admin, ws, make_state(5)).status == 201
    # force replaces anything
    st = make_state(1, lineage="other-lineage")
    r = create(admin, ws, st, lineage="other-lineage", force=True)
    assert r.status == 201, r
    cur = admin.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.json["data"]["attributes"]["serial"] == 1
    assert cur.json["data"]["attributes"]["lineage"] == "other-lineage"
    # without a lineage attribute the file's is used (and checked)
    assert_error(create(admin, ws, make_state(2), lineage=None), 409)
    r = create(admin, ws, make_state(2, lineage="other-lineage"),
               lineage=None)
    assert r.status == 201, r


def test_lock_required(admin, org):
    w = make_ws(admin, org)
    st = make_state(1)
    before = snapshot(admin, w)
    assert_error(create(admin, w, st), 409)             # not locked
    # locked by someone else: the organization's token
    r = admin.post("/api/v2/organizations/%s/authentication-token" % org, {})
    assert r.status == 201, r
    orgc = admin.with_token(r.json["data"]["attributes"]["token"])
    lock(orgc, w)
    assert_error(create(admin, w, st), 409)
    assert_error(admin.post("/api/v2/workspaces/%s/state-versions" % w,
                            sv_body(None, 1, md5(st))), 409)
    assert snapshot(admin, w) == before
    # the holder may write
    assert create(orgc, w, st).status == 201


def test_bad_input_matrix(admin, anon, org, ws):
    st = make_state(1)
    assert create(admin, ws, make_state(0)).status == 201
    before = snapshot(admin, ws)
    path = "/api/v2/workspaces/%s/state-versions" % ws
    good = sv_body(st, 1, md5(st))["data"]["attributes"]

    def body(**over):
        a = dict(good)
        for k, v in over.items():
            if v is ...:
                a.pop(k, None)
            else:
                a[k] = v
        return {"data": {"type": "state-versions", "attributes": a}}

    cases = [
        (admin.request("POST", path, raw=b'{"data": ',
                       ctype="application/vnd.api+json"), 400),
        (admin.post(path, {"data": {"type": "workspaces",
                                    "attributes": good}}), 409),
        (admin.post(path, {"nodata": 1}), 422),
        (admin.post(path, body(serial="1")), 422),
        (admin.post(path, body(serial=1.5)), 422),
        (admin.post(path, body(serial=-1)), 422),
        (admin.post(path, body(serial=...)), 422),
        (admin.post(path, body(md5=...)), 422),
        (admin.post(path, body(md5="abc")), 422),
        (admin.post(path, body(md5=7)), 422),
        (admin.post(path, body(md5=md5(b"other"))), 422),
        (admin.post(path, body(state="!!!not base64!!!")), 422),
        (admin.post(path, body(state=12)), 422),
        (admin.post(path, body(force="yes")), 422),
        (admin.post(path, body(lineage=["x"])), 422),
        (admin.post(path, body(state=base64.b64encode(b"not json")
                               .decode(), md5=md5(b"not json"))), 422),
        (admin.post(path, body(state=base64.b64encode(make_state(
            1, version=3)).decode(), md5=md5(make_state(1, version=3)))),
         422),
        (admin.post(path, body(**{"json-state": "%%%"})), 422),
        (admin.post(path, body(**{"json-state": base64.b64encode(
            b"nope").decode()})), 422),
        (admin.post(path, body(**{"json-state-outputs": "%%%"})), 422),
        (admin.post(path, body(state=..., **{"json-state": base64.b64encode(
            b"{}").decode()})), 422),
        (admin.post(path, {"data": {"type": "state-versions",
                                    "attributes": good,
                                    "relationships": {"run": {"data": {
                                        "type": "runs", "id": 5}}}}}), 422),
        (admin.post("/api/v2/workspaces/ws-nope000000000000/state-versions",
                    body()), 404),
        (anon.post(path, body()), 401),
    ]
    for i, (r, status) in enumerate(cases):
        assert r.status == status, (i, r)
        assert_error(r, status)
        assert snapshot(admin, ws) == before, i

    # another organization's workspace looks missing to a non-member
    name = unique("u")
    r = admin.post("/api/v2/admin/users", {"data": {"type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    try:
        r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid,
                       {})
        other = admin.with_token(r.json["data"]["attributes"]["token"])
        assert_error(other.post(path, body()), 404)
        sv = before[1]
        for p in ("/api/v2/workspaces/%s/current-state-version" % ws,
                  "/api/v2/workspaces/%s/current-state-version-outputs" % ws,
                  "/api/v2/workspaces/%s/state-versions" % ws,
                  "/api/v2/state-versions/" + sv,
                  "/api/v2/state-versions/%s/outputs" % sv,
                  "/api/v2/state-versions/%s/download" % sv,
                  "/api/v2/state-versions?filter[workspace][name]=x"
                  "&filter[organization][name]=" + org):
            assert_error(other.get(p), 404)
        assert snapshot(admin, ws) == before
    finally:
        admin.delete("/api/v2/admin/users/" + uid)


def test_list(admin, org):
    name = unique("ws")
    w = make_ws(admin, org, name)
    lock(admin, w)
    ids = []
    for serial in range(3):
        r = create(admin, w, make_state(serial))
        assert r.status == 201
        ids.append(r.json["data"]["id"])
    r = admin.get("/api/v2/workspaces/%s/state-versions" % w)
    assert r.status == 200
    assert [s["id"] for s in r.json["data"]] == ids[::-1]
    assert r.json["meta"]["pagination"]["total-count"] == 3
    q = "filter[workspace][name]=%s&filter[organization][name]=%s" % (name,
                                                                      org)
    r = admin.get("/api/v2/state-versions?" + q)
    assert r.status == 200 and [s["id"] for s in r.json["data"]] == ids[::-1]
    r = admin.get("/api/v2/state-versions?%s&page[size]=2&page[number]=2" % q)
    assert [s["id"] for s in r.json["data"]] == ids[:1]
    p = r.json["meta"]["pagination"]
    assert p["current-page"] == 2 and p["total-pages"] == 2
    r = admin.get("/api/v2/state-versions?%s&page[number]=999" % q)
    assert r.status == 200 and r.json["data"] == []
    assert r.json["meta"]["pagination"]["total-count"] == 3
    assert_error(admin.get("/api/v2/state-versions"), 400)
    assert_error(admin.get("/api/v2/state-versions?filter[organization]"
                           "[name]=" + org), 400)
    assert_error(admin.get("/api/v2/state-versions?filter[workspace][name]="
                           "nope&filter[organization][name]=" + org), 404)
    assert_error(admin.get("/api/v2/state-versions?filter[workspace][name]="
                           "%s&filter[organization][name]=nope-org" % name),
                 404)
    assert_error(admin.get("/api/v2/workspaces/%s/state-versions"
                           "?page[size]=x" % w), 400)


def test_rollback(admin, org, ws):
    v1 = make_state(1, outputs={"o": {"value": "one", "type": "string"}})
    v2 = make_state(2, outputs={"o": {"value": "two", "type": "string"}})
    r1 = create(admin, ws, v1)
    assert create(admin, ws, v2).status == 201
    sv1 = r1.json["data"]["id"]
    path = "/api/v2/workspaces/%s/state-versions" % ws

    def rb(target, client=admin):
        return client.patch(path, {"data": {
            "type": "state-versions", "relationships": {
                "rollback-state-version": {"data": {
                    "type": "state-versions", "id": target}}}}})

    before = snapshot(admin, ws)
    assert_error(rb("sv-nope000000000000"), 404)
    assert_error(admin.patch(path, {"data": {"type": "state-versions"}}),
                 422)
    assert_error(admin.patch(path, {"data": {"type": "runs"}}), 409)
    other = make_ws(admin, org)
    lock(admin, other)
    r = create(admin, other, make_state(1))
    assert_error(rb(r.json["data"]["id"]), 404)    # another workspace's
    unlock(admin, ws)
    assert_error(rb(sv1), 409)                     # must hold the lock
    lock(admin, ws)
    assert snapshot(admin, ws) == before

    r = rb(sv1)
    assert r.status == 201, r
    d = r.json["data"]
    assert d["attributes"]["serial"] == 3 and d["id"] != sv1
    assert d["relationships"]["rollback-state-version"]["data"]["id"] == sv1
    cur = admin.get("/api/v2/workspaces/%s/current-state-version" % ws)
    assert cur.json["data"]["id"] == d["id"]
    body = admin.get(d["attributes"]["hosted-state-download-url"]).body
    # v1's bytes with only the serial changed
    assert body == v1.replace(b'"serial": 1,', b'"serial": 3,')
    outs = admin.get("/api/v2/workspaces/%s/current-state-version-outputs"
                     % ws).json["data"]
    assert outs[0]["attributes"]["value"] == "one"


def test_limits_and_expiry():
    """A dedicated daemon with a 1 KiB state limit and 2 s URLs."""
    d = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
               extra_args=["--max-state", "1024", "--upload-url-ttl", "2"])
    d.start()
    try:
        c = d.client()
        anon = d.client(token=None)
        org = unique("org")
        assert c.post("/api/v2/organizations", {"data": {
            "type": "organizations",
            "attributes": {"name": org, "email": "o@example.com"}}}) \
            .status == 201
        w = make_ws(c, org)
        lock(c, w)
        small = make_state(1, outputs={}, resources=[])
        assert len(small) < 1024
        assert create(c, w, small).status == 201
        before = snapshot(c, w)
        big = make_state(2, extra=" " * 2000)
        assert_error(create(c, w, big), 413)
        assert snapshot(c, w) == before
        r = c.post("/api/v2/workspaces/%s/state-versions" % w,
                   sv_body(None, 2, md5(big)))
        assert r.status == 201
        up = r.json["data"]["attributes"]["hosted-state-upload-url"]
        assert_error(anon.put(up, raw=big), 413)
        assert snapshot(c, w)[:3] == before[:3]
        # an expired URL is a missing one
        ok = make_state(3, outputs={}, resources=[])
        r = c.post("/api/v2/workspaces/%s/state-versions" % w,
                   sv_body(None, 3, md5(ok)))
        up = r.json["data"]["attributes"]["hosted-state-upload-url"]
        time.sleep(3.1)
        assert_error(anon.put(up, raw=ok), 404)
        assert snapshot(c, w)[:3] == before[:3]
    finally:
        d.close()


def test_workspace_list_includes_current_state_version(admin, org, ws):
    """include=current_state_version puts each workspace's current state
    version, with its download URL, into `included`."""
    r = create(admin, ws, make_state(1))
    assert r.status == 201, r
    sv = r.json["data"]["id"]
    r = admin.get("/api/v2/organizations/%s/workspaces"
                  "?include=current_state_version" % org)
    assert r.status == 200, r
    inc = [i for i in r.json.get("included", []) if i["id"] == sv]
    assert len(inc) == 1 and inc[0]["type"] == "state-versions"
    assert inc[0]["attributes"]["hosted-state-download-url"]
