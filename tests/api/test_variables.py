"""Workspace variables: create, list, read, update, delete under
/workspaces/:id/vars and the deprecated /vars endpoints; sensitive values
are write-only and never leave the server (responses, log, database
file); the bad-input matrix and access from outside the organization."""
import glob
import os
import subprocess
import uuid

import pytest

from conftest import assert_error, unique
from test_workspaces import API, create_ws, make_user, org_token


def var_body(key=None, value=None, category="terraform", type_="vars",
             rels=None, **attrs):
    a = dict(attrs)
    if key is not None:
        a["key"] = key
    if value is not None:
        a["value"] = value
    if category is not None:
        a["category"] = category
    d = {"type": type_, "attributes": a}
    if rels:
        d["relationships"] = rels
    return {"data": d}


def vars_path(ws_id, var_id=None):
    p = "%s/workspaces/%s/vars" % (API, ws_id)
    return p + "/" + var_id if var_id else p


def create_var(client, ws_id, key=None, value="v", **kw):
    r = client.post(vars_path(ws_id), var_body(key or unique("k"), value,
                                               **kw))
    assert r.status == 201, r
    return r.json["data"]


def list_vars(client, ws_id):
    r = client.get(vars_path(ws_id))
    assert r.status == 200, r
    return r.json["data"]


@pytest.fixture
def ws(admin, org):
    return create_ws(admin, org)


# ---- create, read, list ---------------------------------------------------

def test_create_read_list(admin, org, ws):
    r = admin.post(vars_path(ws["id"]), var_body(
        "region", "eu-west-1", description="where", hcl=False))
    assert r.status == 201, r
    v = r.json["data"]
    assert v["type"] == "vars" and v["id"].startswith("var-")
    a = v["attributes"]
    assert a["key"] == "region" and a["value"] == "eu-west-1"
    assert a["description"] == "where" and a["category"] == "terraform"
    assert a["hcl"] is False and a["sensitive"] is False
    assert len(a["version-id"]) >= 32
    assert v["relationships"]["configurable"]["data"] == {
        "id": ws["id"], "type": "workspaces"}
    assert v["relationships"]["configurable"]["links"]["related"] == \
        "%s/organizations/%s/workspaces/%s" % (
            API, org, ws["attributes"]["name"])
    assert v["links"]["self"] == vars_path(ws["id"], v["id"])
    r = admin.get(vars_path(ws["id"], v["id"]))
    assert r.status == 200 and r.json["data"] == v
    # defaults: value "", description "", hcl and sensitive false
    d = create_var(admin, ws["id"], "bare", None, category="env")
    assert d["attributes"]["value"] == ""
    assert d["attributes"]["description"] == ""
    assert d["attributes"]["category"] == "env"
    got = list_vars(admin, ws["id"])
    assert got == [v, d]
    r = admin.get(vars_path(ws["id"]))
    assert r.json["meta"]["pagination"]["total-count"] == 2


def test_keys(admin, ws):
    # go-tfe creates terraform variables named by UUIDs
    create_var(admin, ws["id"], str(uuid.uuid4()))
    create_var(admin, ws["id"], "_under-score_1")
    # the same key may exist once per category
    create_var(admin, ws["id"], "dup")
    create_var(admin, ws["id"], "dup", category="env")
    r = admin.post(vars_path(ws["id"]), var_body("dup", "x"))
    assert_error(r, 422)
    assert "already been taken" in r.json["errors"][0]["detail"]
    # environment keys may hold dots; terraform keys may not
    create_var(admin, ws["id"], "A.B", category="env")
    assert_error(admin.post(vars_path(ws["id"]), var_body("a.b", "x")), 422)
    assert len(list_vars(admin, ws["id"])) == 5


def test_update_changes_version(admin, ws):
    v = create_var(admin, ws["id"], "k1", "one", description="d")
    path = vars_path(ws["id"], v["id"])
    r = admin.patch(path, var_body(None, None, category=None))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["version-id"] != v["attributes"]["version-id"]
    assert a["key"] == "k1" and a["value"] == "one" and a["description"] == "d"
    r = admin.patch(path, {"data": {"type": "vars", "id": v["id"],
                                    "attributes": {"key": "k2",
                                                   "value": "two",
                                                   "hcl": True}}})
    assert r.status == 200, r
    b = r.json["data"]["attributes"]
    assert b["key"] == "k2" and b["value"] == "two" and b["hcl"] is True
    assert b["version-id"] != a["version-id"]
    r = admin.patch(path, var_body(None, None, category="env"))
    assert r.json["data"]["attributes"]["category"] == "env"
    assert admin.get(path).json["data"] == r.json["data"]
    # renaming onto a taken key
    create_var(admin, ws["id"], "taken", category="env")
    assert_error(admin.patch(path, var_body("taken", None, category=None)),
                 422)
    assert admin.get(path).json["data"] == r.json["data"]


def test_delete(admin, ws):
    v = create_var(admin, ws["id"])
    path = vars_path(ws["id"], v["id"])
    assert admin.delete(path).status == 204
    assert_error(admin.get(path), 404)
    assert_error(admin.delete(path), 404)
    assert_error(admin.patch(path, var_body("x", "y")), 404)
    assert list_vars(admin, ws["id"]) == []


def test_workspace_delete_removes_variables(admin, org, ws):
    v = create_var(admin, ws["id"])
    assert admin.delete("%s/workspaces/%s" % (API, ws["id"])).status == 204
    assert_error(admin.get("%s/vars/%s" % (API, v["id"])), 404)


# ---- sensitive values -----------------------------------------------------

def test_sensitive_is_write_only(admin, ws):
    r = admin.post(vars_path(ws["id"]), var_body("pw", "s3cret-value",
                                                 sensitive=True))
    assert r.status == 201, r
    v = r.json["data"]
    assert v["attributes"]["sensitive"] is True
    assert v["attributes"]["value"] is None
    path = vars_path(ws["id"], v["id"])
    assert admin.get(path).json["data"]["attributes"]["value"] is None
    assert list_vars(admin, ws["id"])[0]["attributes"]["value"] is None
    # a new value is accepted and not shown
    r = admin.patch(path, var_body(None, "another", category=None))
    assert r.status == 200 and r.json["data"]["attributes"]["value"] is None
    # no way back
    r = admin.patch(path, var_body(None, None, category=None,
                                   sensitive=False))
    assert_error(r, 422)
    assert admin.get(path).json["data"]["attributes"]["sensitive"] is True
    # a plain variable turning sensitive hides its value from then on
    p = create_var(admin, ws["id"], "plain", "visible")
    ppath = vars_path(ws["id"], p["id"])
    r = admin.patch(ppath, var_body(None, None, category=None,
                                    sensitive=True))
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["value"] is None
    assert admin.get(ppath).json["data"]["attributes"]["value"] is None


def _db_bytes(daemon):
    """Everything the database holds, as bytes."""
    if daemon.backend == "pg":
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        return subprocess.check_output(
            [os.path.join(bindir, "pg_dump"), "-d", daemon.conninfo])
    out = b""
    for suffix in ("", "-wal", "-shm"):
        p = os.path.join(daemon.data_dir, "terrace.db" + suffix)
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


def _log_bytes(daemon):
    with open(os.path.join(daemon.tmp, "terraced.log"), "rb") as f:
        return f.read()


def test_sensitive_value_never_leaks(daemon, admin, org, ws):
    secrets = ["LEAK-%s" % uuid.uuid4().hex for _ in range(6)]
    bodies = []

    def keep(r, status):
        assert r.status == status, r
        bodies.append(r.body)
        return r.json

    # workspace variable: create, read, list, update
    v = keep(admin.post(vars_path(ws["id"]), var_body(
        "db_password", secrets[0], sensitive=True)), 201)["data"]
    keep(admin.get(vars_path(ws["id"], v["id"])), 200)
    keep(admin.get(vars_path(ws["id"])), 200)
    keep(admin.patch(vars_path(ws["id"], v["id"]), var_body(
        None, secrets[1], category=None, sensitive=True)), 200)
    # the deprecated endpoints
    keep(admin.post(API + "/vars", var_body(
        "TOKEN", secrets[2], category="env", sensitive=True,
        rels={"workspace": {"data": {"type": "workspaces",
                                     "id": ws["id"]}}})), 201)
    keep(admin.get("%s/vars?filter[organization][name]=%s"
                   "&filter[workspace][name]=%s"
                   % (API, org, ws["attributes"]["name"])), 200)
    # a variable set with sensitive variables, read with include=vars
    s = keep(admin.post("%s/organizations/%s/varsets" % (API, org), {
        "data": {"type": "varsets",
                 "attributes": {"name": unique("s"), "global": False},
                 "relationships": {"vars": {"data": [
                     {"type": "vars", "attributes": {
                         "key": "set_secret", "value": secrets[3],
                         "category": "terraform", "sensitive": True}}]}}}}),
        201)["data"]
    sv = keep(admin.post("%s/varsets/%s/relationships/vars" % (API, s["id"]),
                         var_body("other", secrets[4], sensitive=True)),
              201)["data"]
    keep(admin.patch("%s/varsets/%s/relationships/vars/%s"
                     % (API, s["id"], sv["id"]),
                     var_body(None, secrets[5], category=None)), 200)
    keep(admin.get("%s/varsets/%s?include=vars" % (API, s["id"])), 200)
    keep(admin.get("%s/varsets/%s/relationships/vars" % (API, s["id"])), 200)
    keep(admin.get("%s/organizations/%s/varsets?include=vars"
                   % (API, org)), 200)
    keep(admin.get("%s/workspaces/%s/varsets?include=vars"
                   % (API, ws["id"])), 200)
    # bad requests that carry the secret are not echoed either
    keep(admin.post(vars_path(ws["id"]), var_body(
        "bad key!", secrets[0], sensitive=True)), 422)
    keep(admin.post(vars_path(ws["id"]), var_body(
        "db_password", secrets[0], sensitive=True)), 422)
    for body in bodies:
        for sec in secrets:
            assert sec.encode() not in body
    log = _log_bytes(daemon)
    db = _db_bytes(daemon)
    assert b"db_password" in db  # the keys are there, in the clear
    for sec in secrets:
        assert sec.encode() not in log
        assert sec.encode() not in db


# ---- the deprecated /vars endpoints ---------------------------------------

def test_legacy_endpoints(admin, org, ws):
    name = ws["attributes"]["name"]
    rels = {"workspace": {"data": {"type": "workspaces", "id": ws["id"]}}}
    r = admin.post(API + "/vars", var_body("a", "1", rels=rels))
    assert r.status == 201, r
    a = r.json["data"]
    assert a["relationships"]["configurable"]["data"]["id"] == ws["id"]
    # the old filter form in the body
    body = var_body("b", "2", category="env")
    body["filter"] = {"organization": {"name": org},
                      "workspace": {"name": name}}
    r = admin.post(API + "/vars", body)
    assert r.status == 201, r
    b = r.json["data"]
    lst = "%s/vars?filter[organization][name]=%s&filter[workspace][name]=%s" \
        % (API, org, name)
    r = admin.get(lst)
    assert r.status == 200 and [v["id"] for v in r.json["data"]] == [
        a["id"], b["id"]]
    r = admin.patch("%s/vars/%s" % (API, a["id"]),
                    var_body(None, "11", category=None))
    assert r.status == 200 and r.json["data"]["attributes"]["value"] == "11"
    assert admin.get("%s/vars/%s" % (API, a["id"])).json["data"][
        "attributes"]["value"] == "11"
    assert admin.delete("%s/vars/%s" % (API, a["id"])).status == 204
    assert [v["id"] for v in admin.get(lst).json["data"]] == [b["id"]]
    # bad requests
    assert_error(admin.get(API + "/vars"), 400)
    assert_error(admin.get(API + "/vars?filter[organization][name]=" + org),
                 400)
    assert_error(admin.get("%s/vars?filter[organization][name]=%s"
                           "&filter[workspace][name]=nope" % (API, org)), 404)
    assert_error(admin.post(API + "/vars", var_body("c", "3")), 422)
    assert_error(admin.post(API + "/vars", var_body("c", "3", rels={
        "workspace": {"data": {"type": "workspaces", "id": "ws-nope"}}})),
        404)
    assert_error(admin.post(API + "/vars", var_body("c", "3", rels={
        "workspace": {"data": {"type": "projects", "id": ws["id"]}}})), 422)
    assert_error(admin.get("%s/vars/var-nope" % API), 404)
    assert [v["id"] for v in admin.get(lst).json["data"]] == [b["id"]]


# ---- refused environment variable names ----------------------------------

# (name, words its refusal gives): the loader, the C library, shells,
# interpreters' start-up hooks, and what Terrace sets for every run
REFUSED_ENV = [
    ("LD_PRELOAD", "dynamic loader"),
    ("LD_LIBRARY_PATH", "dynamic loader"),
    ("LD_AUDIT", "dynamic loader"),
    ("GLIBC_TUNABLES", "C library"),
    ("GCONV_PATH", "C library"),
    ("MALLOC_TRACE", "C library"),
    ("BASH_ENV", "shells"),
    ("ENV", "shells"),
    ("BASH_FUNC_ls%%", "shells"),
    ("PS4", "shells"),
    ("PYTHONPATH", "interpreter"),
    ("PERL5OPT", "interpreter"),
    ("NODE_OPTIONS", "interpreter"),
    ("JAVA_TOOL_OPTIONS", "interpreter"),
    ("TF_CLI_CONFIG_FILE", "it is set by Terrace for every run"),
    ("TF_FORCE_LOCAL_BACKEND", "it is set by Terrace for every run"),
    ("TF_PLUGIN_CACHE_DIR", "it is set by Terrace for every run"),
    ("PATH", "it is set by Terrace for every run"),
    ("HOME", "it is set by Terrace for every run"),
    ("SSL_CERT_FILE", "it is set by Terrace for every run"),
]

# names real configurations use, close to refused ones
ALLOWED_ENV = ["AWS_ACCESS_KEY_ID", "TF_VAR_region", "TF_LOG", "TF_CLI_ARGS",
               "TF_CLI_ARGS_plan", "GOOGLE_CREDENTIALS", "ARM_CLIENT_ID",
               "GIT_SSH_COMMAND", "GIT_CONFIG_COUNT", "LDFLAGS", "ld_preload",
               "ENVIRONMENT", "SSL_CERT_DIR", "GOGC", "GOMEMLIMIT"]


def assert_refused(resp, name, why):
    assert_error(resp, 422)
    detail = resp.json["errors"][0]["detail"]
    assert detail.startswith(
        name + " cannot be an environment variable: "), detail
    assert why in detail, detail


def test_refused_env_names_on_create(admin, ws):
    keep = create_var(admin, ws["id"], "keep", "k", category="env")
    rels = {"workspace": {"data": {"type": "workspaces", "id": ws["id"]}}}
    for name, why in REFUSED_ENV:
        assert_refused(admin.post(vars_path(ws["id"]), var_body(
            name, "/work/evil.so", category="env")), name, why)
        assert_refused(admin.post(vars_path(ws["id"]), var_body(
            name, "v", category="env", sensitive=True)), name, why)
        assert_refused(admin.post(API + "/vars", var_body(
            name, "v", category="env", rels=rels)), name, why)
    assert list_vars(admin, ws["id"]) == [keep]
    # terraform variables are not environment variables
    for name in ("LD_PRELOAD", "PATH", "BASH_ENV"):
        create_var(admin, ws["id"], name)
    for name in ALLOWED_ENV:
        create_var(admin, ws["id"], name, category="env")
    assert len(list_vars(admin, ws["id"])) == 1 + 3 + len(ALLOWED_ENV)


def test_refused_env_names_on_update(admin, ws):
    env = create_var(admin, ws["id"], "SAFE", "s3cret", category="env",
                     sensitive=True)
    tf = create_var(admin, ws["id"], "LD_PRELOAD", "v")
    env_path, tf_path = (vars_path(ws["id"], env["id"]),
                         vars_path(ws["id"], tf["id"]))
    for name, why in REFUSED_ENV:
        # a rename, alone or with the category given again
        assert_refused(admin.patch(env_path, var_body(
            name, None, category=None)), name, why)
        assert_refused(admin.patch(env_path, var_body(
            name, "x", category="env")), name, why)
        assert_refused(admin.patch("%s/vars/%s" % (API, env["id"]),
                                   var_body(name, None, category=None)),
                       name, why)
    # a terraform variable so named cannot become an environment one
    assert_refused(admin.patch(tf_path, var_body(None, None, category="env")),
                   "LD_PRELOAD", "dynamic loader")
    assert_refused(admin.patch(tf_path, var_body("BASH_ENV", None,
                                                 category="env")),
                   "BASH_ENV", "shells")
    assert admin.get(env_path).json["data"] == env
    assert admin.get(tf_path).json["data"] == tf
    # renamed on the way, or the other way round, all is well
    r = admin.patch(tf_path, var_body("AWS_REGION", None, category="env"))
    assert r.status == 200, r
    assert (r.json["data"]["attributes"]["key"],
            r.json["data"]["attributes"]["category"]) == ("AWS_REGION", "env")
    r = admin.patch(env_path, var_body("PATH", None, category="terraform"))
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["key"] == "PATH"
    # and an existing variable's other attributes still change
    r = admin.patch(tf_path, var_body(None, "eu-west-1", category=None))
    assert r.status == 200, r


# ---- bad input ------------------------------------------------------------

LONG = "d" * 513

BAD_CREATE = [
    ("malformed", b"{x", 400),
    ("empty body", b"", 400),
    ("no data", {"x": 1}, 422),
    ("wrong type", var_body("k", "v", type_="workspaces"), 409),
    ("attributes not object", {"data": {"type": "vars",
                                        "attributes": []}}, 422),
    ("missing key", var_body(None, "v"), 422),
    ("empty key", var_body("", "v"), 422),
    ("key with space", var_body("a b", "v"), 422),
    ("long key", var_body("k" * 256, "v"), 422),
    ("env key with =", var_body("A=B", "v", category="env"), 422),
    ("missing category", var_body("k", "v", category=None), 422),
    ("bad category", var_body("k", "v", category="policy-set"), 422),
    ("key type", var_body(5, "v"), 422),
    ("value type", var_body("k", 5), 422),
    ("category type", var_body("k", "v", category=True), 422),
    ("hcl type", var_body("k", "v", hcl="yes"), 422),
    ("sensitive type", var_body("k", "v", sensitive=1), 422),
    ("description type", var_body("k", "v", description=[]), 422),
    ("long description", var_body("k", "v", description=LONG), 422),
]


def _send(client, method, path, body):
    if isinstance(body, bytes):
        return client.request(method, path, raw=body,
                              ctype="application/vnd.api+json")
    return client.request(method, path, body=body)


@pytest.mark.parametrize("label,body,status", BAD_CREATE,
                         ids=[b[0] for b in BAD_CREATE])
def test_create_bad_input(admin, ws, label, body, status):
    existing = create_var(admin, ws["id"], "k", "keep")
    assert_error(_send(admin, "POST", vars_path(ws["id"]), body), status)
    assert list_vars(admin, ws["id"]) == [existing]


BAD_UPDATE = [b for b in BAD_CREATE
              if b[0] not in ("missing key", "missing category")] + [
    ("id mismatch", {"data": {"type": "vars", "id": "var-other",
                              "attributes": {"value": "x"}}}, 409),
    ("make non-sensitive", var_body(None, None, category=None,
                                    sensitive=False), 422),
    ("key taken", var_body("other", None, category=None), 422),
]


@pytest.mark.parametrize("label,body,status", BAD_UPDATE,
                         ids=[b[0] for b in BAD_UPDATE])
def test_update_bad_input(admin, ws, label, body, status):
    v = create_var(admin, ws["id"], "k", "keep", sensitive=True)
    create_var(admin, ws["id"], "other", "x")
    path = vars_path(ws["id"], v["id"])
    assert_error(_send(admin, "PATCH", path, body), status)
    assert admin.get(path).json["data"] == v


def test_too_large_and_no_token(admin, anon, ws):
    v = create_var(admin, ws["id"], "k", "keep")
    big = var_body("big", "x" * (16 * 1024 * 1024 + 10))
    for method, path in (("POST", vars_path(ws["id"])),
                         ("PATCH", vars_path(ws["id"], v["id"]))):
        try:
            assert_error(admin.request(method, path, body=big), 413)
        except (ConnectionError, OSError):
            pass  # the server may close while the client is still sending
        assert_error(anon.request(method, path, body=var_body("a", "b")),
                     401)
    assert_error(anon.get(vars_path(ws["id"])), 401)
    assert_error(anon.delete(vars_path(ws["id"], v["id"])), 401)
    assert list_vars(admin, ws["id"]) == [v]


def test_unknown_and_foreign_ids(admin, org, ws):
    v = create_var(admin, ws["id"], "k", "keep")
    other = create_ws(admin, org)
    # a variable of another workspace is not found under this one
    for method in ("GET", "PATCH", "DELETE"):
        body = var_body(None, "x", category=None) if method == "PATCH" \
            else None
        assert_error(admin.request(method, vars_path(other["id"], v["id"]),
                                   body=body), 404)
        assert_error(admin.request(method, vars_path("ws-nope", v["id"]),
                                   body=body), 404)
    assert_error(admin.get(vars_path("ws-nope")), 404)
    assert_error(admin.post(vars_path("ws-nope"), var_body("a", "b")), 404)
    assert list_vars(admin, ws["id"]) == [v]


def test_outsiders_see_nothing(admin, anon, org, ws):
    v = create_var(admin, ws["id"], "k", "keep")
    other = unique("org")
    r = admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": other, "email": "o@example.com"}}})
    assert r.status == 201
    _, _, user = make_user(admin)
    try:
        for c in (org_token(admin, other), user):
            assert_error(c.get(vars_path(ws["id"])), 404)
            assert_error(c.post(vars_path(ws["id"]), var_body("x", "y")), 404)
            assert_error(c.get(vars_path(ws["id"], v["id"])), 404)
            assert_error(c.patch(vars_path(ws["id"], v["id"]),
                                 var_body(None, "stolen", category=None)),
                         404)
            assert_error(c.delete(vars_path(ws["id"], v["id"])), 404)
            assert_error(c.get("%s/vars/%s" % (API, v["id"])), 404)
            assert_error(c.patch("%s/vars/%s" % (API, v["id"]),
                                 var_body(None, "stolen", category=None)),
                         404)
            assert_error(c.delete("%s/vars/%s" % (API, v["id"])), 404)
            assert_error(c.get(
                "%s/vars?filter[organization][name]=%s"
                "&filter[workspace][name]=%s"
                % (API, org, ws["attributes"]["name"])), 404)
        assert list_vars(admin, ws["id"]) == [v]
    finally:
        admin.delete(API + "/organizations/" + other)
