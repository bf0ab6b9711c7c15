"""Key/value tag bindings of workspaces and projects: the tag-bindings
relationship of create and update (replaces; [] removes all), PATCH
.../tag-bindings (adds or changes values), effective bindings with the
project's inherited ones, include=effective_tag_bindings, the limit of
10, the bad-input matrix and access.  Every rejected request is followed
by a read proving nothing changed."""
import pytest

from conftest import assert_error, unique
from test_workspaces import make_user

API = "/api/v2"


def tb(**kv):
    return {"data": [{"type": "tag-bindings",
                      "attributes": {"key": k, "value": v}}
                     for k, v in kv.items()]}


def tb_rel(**kv):
    return {"tag-bindings": tb(**kv)}


def make_project(c, org, rels=None):
    d = {"type": "projects", "attributes": {"name": unique("prj")}}
    if rels is not None:
        d["relationships"] = rels
    r = c.post("%s/organizations/%s/projects" % (API, org), {"data": d})
    assert r.status == 201, r
    return r.json["data"]["id"]


def make_ws(c, org, rels=None, **attrs):
    attrs.setdefault("name", unique("ws"))
    d = {"type": "workspaces", "attributes": attrs}
    if rels is not None:
        d["relationships"] = rels
    r = c.post("%s/organizations/%s/workspaces" % (API, org), {"data": d})
    assert r.status == 201, r
    return r.json["data"]["id"]


def bindings(c, kind, id_, effective=False):
    r = c.get("%s/%s/%s/%stag-bindings" %
              (API, kind, id_, "effective-" if effective else ""))
    assert r.status == 200, r
    want = "effective-tag-bindings" if effective else "tag-bindings"
    assert all(b["type"] == want for b in r.json["data"]), r
    return r.json["data"]


def kv(items):
    return {b["attributes"]["key"]: b["attributes"]["value"] for b in items}


def inherited(items):
    return {b["attributes"]["key"]: b["links"]["inherited-from"]["id"]
            for b in items if "links" in b}


def test_workspace_bindings_lifecycle(admin, org):
    ws = make_ws(admin, org, rels=tb_rel(env="prod", team="a"))
    assert kv(bindings(admin, "workspaces", ws)) == {"env": "prod",
                                                     "team": "a"}
    # PATCH .../tag-bindings adds keys and changes values, keeps the rest
    r = admin.patch("%s/workspaces/%s/tag-bindings" % (API, ws),
                    tb(team="b", tier="1", keyonly=""))
    assert r.status == 200, r
    assert [b["attributes"]["key"] for b in r.json["data"]] == [
        "team", "tier", "keyonly"]
    assert all(b["id"].startswith("tb-") for b in r.json["data"])
    assert kv(bindings(admin, "workspaces", ws)) == {
        "env": "prod", "team": "b", "tier": "1", "keyonly": ""}
    # the relationship of an update replaces them
    r = admin.patch("%s/workspaces/%s" % (API, ws), {"data": {
        "type": "workspaces", "attributes": {},
        "relationships": tb_rel(owner="me")}})
    assert r.status == 200, r
    assert kv(bindings(admin, "workspaces", ws)) == {"owner": "me"}
    # an update without it leaves them alone
    r = admin.patch("%s/workspaces/%s" % (API, ws), {"data": {
        "type": "workspaces", "attributes": {"description": "x"}}})
    assert r.status == 200, r
    assert kv(bindings(admin, "workspaces", ws)) == {"owner": "me"}
    # go-tfe's DeleteAllTagBindings: an empty list
    r = admin.patch("%s/workspaces/%s" % (API, ws), {"data": {
        "type": "workspaces", "relationships": {"tag-bindings": {
            "data": []}}}})
    assert r.status == 200, r
    assert bindings(admin, "workspaces", ws) == []
    # the flat tags are another thing and stay as they were
    r = admin.get("%s/workspaces/%s/relationships/tags" % (API, ws))
    assert r.json["data"] == []


def test_effective_bindings_inherit_from_project(admin, org):
    prj = make_project(admin, org, rels=tb_rel(cost="42", env="dev"))
    assert kv(bindings(admin, "projects", prj)) == {"cost": "42",
                                                   "env": "dev"}
    ws = make_ws(admin, org, rels=dict(
        tb_rel(env="prod", app="web"),
        project={"data": {"type": "projects", "id": prj}}))
    eff = bindings(admin, "workspaces", ws, effective=True)
    # the workspace's own value wins; the project's other keys come along
    assert kv(eff) == {"app": "web", "env": "prod", "cost": "42"}
    assert inherited(eff) == {"cost": prj}
    # its own list has only its own
    assert kv(bindings(admin, "workspaces", ws)) == {"app": "web",
                                                     "env": "prod"}
    # a project's effective bindings are its own
    assert kv(bindings(admin, "projects", prj, effective=True)) == {
        "cost": "42", "env": "dev"}
    # include=effective_tag_bindings on read and list
    for path in ("%s/workspaces/%s?include=effective_tag_bindings" %
                 (API, ws),
                 "%s/organizations/%s/workspaces?include="
                 "effective_tag_bindings&filter[project][id]=%s" %
                 (API, org, prj)):
        r = admin.get(path)
        assert r.status == 200, r
        data = r.json["data"]
        data = data[0] if isinstance(data, list) else data
        rel = data["relationships"]["effective-tag-bindings"]["data"]
        inc = {i["id"]: i for i in r.json["included"]}
        assert sorted(x["id"] for x in rel) == sorted(inc)
        assert kv(inc.values()) == {"app": "web", "env": "prod",
                                    "cost": "42"}
        assert inherited(inc.values()) == {"cost": prj}
    r = admin.get("%s/projects/%s?include=effective_tag_bindings" %
                  (API, prj))
    assert r.status == 200, r
    assert kv(r.json["included"]) == {"cost": "42", "env": "dev"}
    assert len(r.json["data"]["relationships"]["effective-tag-bindings"][
        "data"]) == 2
    r = admin.get("%s/organizations/%s/projects?include="
                  "effective_tag_bindings" % (API, org))
    assert r.status == 200 and kv(r.json["included"]) == {
        "cost": "42", "env": "dev"}, r
    # without include: links only, nothing included
    d = admin.get("%s/workspaces/%s" % (API, ws)).json
    assert "included" not in d
    assert d["data"]["relationships"]["tag-bindings"]["links"][
        "related"] == "/api/v2/workspaces/%s/tag-bindings" % ws
    # a project update replaces its bindings; the workspace sees it
    r = admin.patch("%s/projects/%s" % (API, prj), {"data": {
        "type": "projects", "relationships": tb_rel(env="qa")}})
    assert r.status == 200, r
    assert kv(bindings(admin, "workspaces", ws, effective=True)) == {
        "app": "web", "env": "prod"}
    assert_error(admin.get("%s/projects/%s?include=bogus" % (API, prj)),
                 400)


def test_limit_of_ten(admin, org):
    ws = make_ws(admin, org, rels=tb_rel(**{"k%d" % i: "v" for i in
                                            range(8)}))
    before = kv(bindings(admin, "workspaces", ws))
    # 8 + 3 new keys: over the limit, nothing changes
    r = admin.patch("%s/workspaces/%s/tag-bindings" % (API, ws),
                    tb(a="1", b="2", c="3"))
    assert_error(r, 422)
    assert "at most 10" in r.json["errors"][0]["detail"]
    assert kv(bindings(admin, "workspaces", ws)) == before
    # changing values of existing keys plus two new ones fits
    r = admin.patch("%s/workspaces/%s/tag-bindings" % (API, ws),
                    tb(k0="x", a="1", b="2"))
    assert r.status == 200, r
    assert len(bindings(admin, "workspaces", ws)) == 10
    # eleven on create: refused, no workspace made
    name = unique("ws")
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": name},
        "relationships": tb_rel(**{"k%d" % i: "v" for i in range(11)})}})
    assert_error(r, 422)
    assert_error(admin.get("%s/organizations/%s/workspaces/%s" %
                           (API, org, name)), 404)


BAD = [
    ("no key", {"data": [{"type": "tag-bindings",
                          "attributes": {"value": "v"}}]}, 422),
    ("empty key", tb(**{"": "v"}), 422),
    ("long key", tb(**{"k" * 129: "v"}), 422),
    ("control char", tb(**{"a\nb": "v"}), 422),
    ("long value", tb(k="v" * 257), 422),
    ("value type", {"data": [{"type": "tag-bindings",
                              "attributes": {"key": "k", "value": 1}}]}, 422),
    ("twice", {"data": [{"type": "tag-bindings",
                         "attributes": {"key": "k", "value": "1"}},
                        {"type": "tag-bindings",
                         "attributes": {"key": "k", "value": "2"}}]}, 422),
    ("wrong type", {"data": [{"type": "tags",
                              "attributes": {"key": "k"}}]}, 409),
    ("not a list", {"data": {"type": "tag-bindings",
                             "attributes": {"key": "k"}}}, 422),
]


@pytest.mark.parametrize("label,body,status", BAD,
                         ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(admin, org, label, body, status):
    prj = make_project(admin, org, rels=tb_rel(p="1"))
    ws = make_ws(admin, org, rels=tb_rel(w="1"))
    for kind, id_ in (("workspaces", ws), ("projects", prj)):
        before = kv(bindings(admin, kind, id_))
        assert_error(admin.patch("%s/%s/%s/tag-bindings" %
                                 (API, kind, id_), body), status)
        # the same list as the relationship of an update
        r = admin.patch("%s/%s/%s" % (API, kind, id_), {"data": {
            "type": kind, "attributes": {"description": "changed"},
            "relationships": {"tag-bindings": body}}})
        assert_error(r, 422 if label in ("not a list",) else status)
        assert kv(bindings(admin, kind, id_)) == before
        got = admin.get("%s/%s/%s" % (API, kind, id_)).json["data"]
        assert got["attributes"]["description"] != "changed"
    # and on create: nothing made
    name = unique("ws")
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": name},
        "relationships": {"tag-bindings": body}}})
    assert_error(r, 422 if label in ("not a list",) else status)
    assert_error(admin.get("%s/organizations/%s/workspaces/%s" %
                           (API, org, name)), 404)


def test_access(admin, org):
    ws = make_ws(admin, org, rels=tb_rel(env="prod"))
    prj = make_project(admin, org, rels=tb_rel(env="dev"))
    _, _, stranger = make_user(admin)
    for path in ("workspaces/%s/tag-bindings" % ws,
                 "workspaces/%s/effective-tag-bindings" % ws,
                 "projects/%s/tag-bindings" % prj,
                 "projects/%s/effective-tag-bindings" % prj,
                 "workspaces/ws-doesnotexist1/tag-bindings",
                 "projects/prj-doesnotexist1/tag-bindings"):
        assert_error(stranger.get("%s/%s" % (API, path)), 404)
        if "effective" not in path:
            assert_error(stranger.patch("%s/%s" % (API, path), tb(x="1")),
                         404)
        else:
            assert_error(admin.patch("%s/%s" % (API, path), tb(x="1")), 405)
        assert_error(admin.get("%s/%s" % (API, path), token=None), 401)
    assert kv(bindings(admin, "workspaces", ws)) == {"env": "prod"}
    assert kv(bindings(admin, "projects", prj)) == {"env": "dev"}
    # deleting the workspace and the project takes their bindings along
    assert admin.delete("%s/workspaces/%s" % (API, ws)).status == 204
    assert admin.delete("%s/projects/%s" % (API, prj)).status == 204
    assert_error(admin.get("%s/workspaces/%s/tag-bindings" % (API, ws)),
                 404)


def test_list_filter_by_tag_bindings(admin, org):
    """filter[tagged][N][key|value] (go-tfe, pytfe): on the effective
    bindings; no value matches any value."""
    prj = make_project(admin, org, rels=tb_rel(team="core"))
    names = {}
    for label, rels in (
            ("w1", tb_rel(key1="value1", key2="value2a")),
            ("w2", tb_rel(key2="value2b", key3="value3")),
            ("w3", dict(tb_rel(team="edge"),
                        project={"data": {"type": "projects", "id": prj}})),
            ("w4", {"project": {"data": {"type": "projects", "id": prj}}})):
        name = unique(label)
        make_ws(admin, org, rels=rels, name=name)
        names[label] = name

    def listed(**q):
        # key0=..., value0=...: filter[tagged][0][key]=...
        qs = "&".join("filter[tagged][%s][%s]=%s" % (k[-1], k[:-1], v)
                      for k, v in q.items())
        r = admin.get("%s/organizations/%s/workspaces?%s" % (API, org, qs))
        assert r.status == 200, r
        inv = {v: k for k, v in names.items()}
        return sorted(inv[w["attributes"]["name"]] for w in r.json["data"])

    assert listed(**{"key0": "key1"}) == ["w1"]
    assert listed(**{"key0": "key2"}) == ["w1", "w2"]
    assert listed(**{"key0": "key2", "value0": "value2b"}) == ["w2"]
    assert listed(**{"key0": "key2", "key1": "key3"}) == ["w2"]
    # inherited from the project, unless the workspace binds the key
    assert listed(**{"key0": "team"}) == ["w3", "w4"]
    assert listed(**{"key0": "team", "value0": "core"}) == ["w4"]
    assert listed(**{"key0": "team", "value0": "edge"}) == ["w3"]
    assert listed(**{"key0": "nope"}) == []
    assert_error(admin.get("%s/organizations/%s/workspaces?filter[tagged]"
                           "[0][value]=x" % (API, org)), 400)
