"""Teams: CRUD, validation, the owners team's rules, members by username
and by organization membership, team access to workspaces and projects,
and team tokens acting with the team's permissions."""
import pytest

from conftest import assert_error, unique

API = "/api/v2"


def make_user(admin):
    name = unique("u")
    r = admin.post(API + "/admin/users", {"data": {
        "type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("%s/admin/users/%s/authentication-tokens" % (API, uid), {})
    assert r.status == 201, r
    return uid, name, admin.with_token(r.json["data"]["attributes"]["token"])


@pytest.fixture
def member(admin, org):
    """A user who is a plain member of org (in no team)."""
    uid, name, client = make_user(admin)
    r = admin.post("%s/organizations/%s/organization-memberships" % (API, org),
                   {"data": {"type": "organization-memberships",
                             "attributes": {"email": name + "@example.com"}}})
    assert r.status == 201, r
    a = client.post("%s/organization-memberships/%s/actions/accept"
                    % (API, r.json["data"]["id"]), {})
    assert a.status == 200, a
    yield uid, name, client
    admin.delete("%s/admin/users/%s" % (API, uid))


def team_body(name=None, **attrs):
    a = dict(attrs)
    if name is not None:
        a["name"] = name
    return {"data": {"type": "teams", "attributes": a}}


def create_team(client, org, name=None, **attrs):
    r = client.post("%s/organizations/%s/teams" % (API, org),
                    team_body(name or unique("team"), **attrs))
    assert r.status == 201, r
    return r.json["data"]


def owners(client, org):
    r = client.get("%s/organizations/%s/teams?filter[names]=owners"
                   % (API, org))
    assert r.status == 200, r
    assert len(r.json["data"]) == 1, r
    return r.json["data"][0]


def team(client, tid):
    r = client.get("%s/teams/%s" % (API, tid))
    assert r.status == 200, r
    return r.json["data"]


def users_body(*names):
    return {"data": [{"type": "users", "id": n} for n in names]}


def add_users(client, tid, *names):
    return client.post("%s/teams/%s/relationships/users" % (API, tid),
                       users_body(*names))


def new_ws(client, org, name=None):
    r = client.post("%s/organizations/%s/workspaces" % (API, org), {
        "data": {"type": "workspaces",
                 "attributes": {"name": name or unique("ws")}}})
    assert r.status == 201, r
    return r.json["data"]


def give(client, tid, wid, access, **perms):
    attrs = {"access": access}
    attrs.update(perms)
    r = client.post(API + "/team-workspaces", {"data": {
        "type": "team-workspaces", "attributes": attrs,
        "relationships": {
            "team": {"data": {"type": "teams", "id": tid}},
            "workspace": {"data": {"type": "workspaces", "id": wid}}}}})
    return r


# ---- owners team -------------------------------------------------------------


def test_owners_team_made_with_the_organization(admin, org):
    o = owners(admin, org)
    assert o["attributes"]["name"] == "owners"
    assert o["attributes"]["visibility"] == "organization"
    assert o["attributes"]["users-count"] == 1
    access = o["attributes"]["organization-access"]
    assert access["manage-workspaces"] is True
    assert access["manage-membership"] is True
    assert o["attributes"]["permissions"]["can-destroy"] is False


def test_owners_team_cannot_be_deleted_renamed_or_emptied(admin, org):
    o = owners(admin, org)
    before = team(admin, o["id"])
    assert_error(admin.delete("%s/teams/%s" % (API, o["id"])), 422)
    assert_error(admin.patch("%s/teams/%s" % (API, o["id"]),
                             team_body("renamed")), 422)
    assert_error(admin.patch("%s/teams/%s" % (API, o["id"]), team_body(
        **{"organization-access": {"manage-workspaces": False}})), 422)
    only = admin.get("%s/teams/%s?include=users" % (API, o["id"]))
    username = only.json["included"][0]["attributes"]["username"]
    assert_error(admin.request("DELETE", "%s/teams/%s/relationships/users"
                               % (API, o["id"]), users_body(username)), 422)
    assert team(admin, o["id"]) == before


def test_last_owner_cannot_leave_the_organization(admin, org, member):
    o = owners(admin, org)
    only = admin.get("%s/teams/%s?include=organization-memberships"
                     % (API, o["id"]))
    assert only.status == 200, only
    mid = only.json["data"]["relationships"]["organization-memberships"][
        "data"][0]["id"]
    assert only.json["included"][0]["id"] == mid
    assert_error(admin.delete("%s/organization-memberships/%s" % (API, mid)),
                 409)
    assert team(admin, o["id"])["attributes"]["users-count"] == 1


# ---- CRUD and validation -------------------------------------------------------


def test_team_crud(admin, org):
    t = create_team(admin, org, "devs", visibility="organization",
                    **{"organization-access": {"read-workspaces": True}})
    assert t["attributes"]["name"] == "devs"
    assert t["attributes"]["visibility"] == "organization"
    assert t["attributes"]["organization-access"]["read-workspaces"] is True
    assert t["attributes"]["organization-access"]["manage-workspaces"] is False
    assert t["attributes"]["users-count"] == 0
    assert team(admin, t["id"]) == t
    r = admin.patch("%s/teams/%s" % (API, t["id"]), team_body(
        "devs2", visibility="secret",
        **{"organization-access": {"manage-projects": True}}))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["name"] == "devs2" and a["visibility"] == "secret"
    assert a["organization-access"]["manage-projects"] is True
    assert a["organization-access"]["read-workspaces"] is True  # kept
    names = [x["attributes"]["name"] for x in admin.get(
        "%s/organizations/%s/teams" % (API, org)).json["data"]]
    assert sorted(names) == ["devs2", "owners"]
    q = admin.get("%s/organizations/%s/teams?q=DEV" % (API, org)).json["data"]
    assert [x["id"] for x in q] == [t["id"]]
    assert admin.delete("%s/teams/%s" % (API, t["id"])).status == 204
    assert_error(admin.get("%s/teams/%s" % (API, t["id"])), 404)


@pytest.mark.parametrize("attrs,status", [
    ({}, 422),
    ({"name": ""}, 422),
    ({"name": 5}, 422),
    ({"name": "x", "visibility": "public"}, 422),
    ({"name": "x", "organization-access": {"fly": True}}, 422),
    ({"name": "x", "organization-access": {"manage-workspaces": "yes"}}, 422),
    ({"name": "x", "organization-access": []}, 422),
    ({"name": "owners"}, 422),
])
def test_team_create_validation(admin, org, attrs, status):
    before = admin.get("%s/organizations/%s/teams" % (API, org)).json
    assert_error(admin.post("%s/organizations/%s/teams" % (API, org),
                            {"data": {"type": "teams", "attributes": attrs}}),
                 status)
    assert admin.get("%s/organizations/%s/teams" % (API, org)).json == before


def test_team_wrong_type_and_unknown_ids(admin, org):
    assert_error(admin.post("%s/organizations/%s/teams" % (API, org),
                            {"data": {"type": "workspaces",
                                      "attributes": {"name": "a"}}}), 409)
    assert_error(admin.get(API + "/teams/team-nope"), 404)
    assert_error(admin.get(API + "/organizations/nope-org/teams"), 404)
    t = create_team(admin, org)
    assert_error(add_users(admin, t["id"], "no-such-user"), 404)
    assert_error(admin.get("%s/teams/%s?include=bogus" % (API, t["id"])), 400)



# every flag go-tfe's OrganizationAccessOptions sends (the tfe provider
# sends them all, false or not)
ORG_ACCESS_FLAGS = [
    "manage-policies", "manage-policy-overrides", "delegate-policy-overrides",
    "manage-workspaces", "manage-vcs-settings", "manage-providers",
    "manage-modules", "manage-run-tasks", "manage-projects",
    "read-workspaces", "read-projects", "manage-membership", "manage-teams",
    "manage-organization-access", "access-secret-teams",
    "manage-agent-pools"]


def test_team_takes_every_organization_access_flag(admin, org):
    t = create_team(admin, org, "all-flags", **{"organization-access": dict(
        (k, k == "delegate-policy-overrides") for k in ORG_ACCESS_FLAGS)})
    a = t["attributes"]["organization-access"]
    assert set(ORG_ACCESS_FLAGS) <= set(a)
    assert [k for k in ORG_ACCESS_FLAGS if a[k]] == [
        "delegate-policy-overrides"]
    r = admin.patch("%s/teams/%s" % (API, t["id"]), team_body(
        **{"organization-access": {"delegate-policy-overrides": False}}))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]["organization-access"]
    assert not any(a[k] for k in ORG_ACCESS_FLAGS)
    # the owners team holds every one
    a = owners(admin, org)["attributes"]["organization-access"]
    assert all(a[k] for k in ORG_ACCESS_FLAGS)

# ---- members -------------------------------------------------------------------


def test_members_by_username_and_membership(admin, org, member):
    uid, name, user = member
    t = create_team(admin, org)
    assert add_users(admin, t["id"], name).status == 204
    d = admin.get("%s/teams/%s?include=users" % (API, t["id"])).json
    assert d["data"]["attributes"]["users-count"] == 1
    assert d["data"]["relationships"]["users"]["data"] == [
        {"type": "users", "id": uid}]
    assert d["included"][0]["id"] == uid
    mid = d["data"]["relationships"]["organization-memberships"]["data"][0][
        "id"]
    r = admin.request("DELETE",
                      "%s/teams/%s/relationships/organization-memberships"
                      % (API, t["id"]),
                      {"data": [{"type": "organization-memberships",
                                 "id": mid}]})
    assert r.status == 204, r
    assert team(admin, t["id"])["attributes"]["users-count"] == 0
    r = admin.post("%s/teams/%s/relationships/organization-memberships"
                   % (API, t["id"]),
                   {"data": [{"type": "organization-memberships",
                              "id": mid}]})
    assert r.status == 204, r
    assert team(admin, t["id"])["attributes"]["users-count"] == 1


def test_non_member_user_cannot_join_a_team(admin, org):
    uid, name, _ = make_user(admin)
    try:
        t = create_team(admin, org)
        assert_error(add_users(admin, t["id"], name), 422)
        assert team(admin, t["id"])["attributes"]["users-count"] == 0
    finally:
        admin.delete("%s/admin/users/%s" % (API, uid))


def test_plain_member_may_not_manage_teams(admin, org, member):
    uid, name, user = member
    t = create_team(admin, org, visibility="organization")
    before = team(admin, t["id"])
    assert_error(user.post("%s/organizations/%s/teams" % (API, org),
                           team_body("mine")), 403)
    assert_error(user.patch("%s/teams/%s" % (API, t["id"]),
                            team_body("x")), 403)
    assert_error(user.delete("%s/teams/%s" % (API, t["id"])), 403)
    assert_error(add_users(user, t["id"], name), 403)
    o = owners(admin, org)
    assert_error(add_users(user, o["id"], name), 403)
    assert team(admin, t["id"]) == before
    assert owners(admin, org)["attributes"]["users-count"] == 1


def test_secret_team_hidden_from_non_members(admin, org, member):
    uid, name, user = member
    secret = create_team(admin, org, visibility="secret")
    visible = create_team(admin, org, visibility="organization")
    assert_error(user.get("%s/teams/%s" % (API, secret["id"])), 404)
    assert user.get("%s/teams/%s" % (API, visible["id"])).status == 200
    ids = [x["id"] for x in user.get(
        "%s/organizations/%s/teams" % (API, org)).json["data"]]
    assert visible["id"] in ids and secret["id"] not in ids
    assert add_users(admin, secret["id"], name).status == 204
    assert user.get("%s/teams/%s" % (API, secret["id"])).status == 200


def test_manage_teams_permission(admin, org, member):
    uid, name, user = member
    mgr = create_team(admin, org, **{"organization-access": {
        "manage-teams": True, "manage-membership": True}})
    assert add_users(admin, mgr["id"], name).status == 204
    t = create_team(user, org, "by-manager", visibility="organization")
    assert add_users(user, t["id"], name).status == 204
    # managing teams does not give organization access to hand out
    assert_error(user.post("%s/organizations/%s/teams" % (API, org),
                           team_body("x", **{"organization-access": {
                               "manage-workspaces": True}})), 403)
    # nor the owners team
    assert_error(add_users(user, owners(admin, org)["id"], name), 403)


# ---- team access -----------------------------------------------------------------


def test_team_workspace_levels(admin, org, member):
    uid, name, user = member
    t = create_team(admin, org)
    assert add_users(admin, t["id"], name).status == 204
    ws = new_ws(admin, org)
    wid = ws["id"]
    assert_error(user.get("%s/workspaces/%s" % (API, wid)), 404)
    r = give(admin, t["id"], wid, "read")
    assert r.status == 201, r
    tw = r.json["data"]
    assert tw["attributes"]["runs"] == "read"
    assert tw["attributes"]["workspace-locking"] is False
    r = user.get("%s/workspaces/%s" % (API, wid))
    assert r.status == 200, r
    p = r.json["data"]["attributes"]["permissions"]
    assert p["can-read-settings"] is True and p["can-update"] is False
    assert p["can-queue-run"] is False and p["can-lock"] is False
    assert_error(user.post("%s/workspaces/%s/actions/lock" % (API, wid), {}),
                 403)
    assert_error(user.patch("%s/workspaces/%s" % (API, wid), {"data": {
        "type": "workspaces", "attributes": {"description": "x"}}}), 403)
    listed = user.get("%s/organizations/%s/workspaces" % (API, org)).json
    assert [w["id"] for w in listed["data"]] == [wid]
    # write: may lock
    r = admin.patch("%s/team-workspaces/%s" % (API, tw["id"]), {"data": {
        "type": "team-workspaces", "attributes": {"access": "write"}}})
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["runs"] == "apply"
    r = user.post("%s/workspaces/%s/actions/lock" % (API, wid), {})
    assert r.status == 200, r
    assert user.post("%s/workspaces/%s/actions/unlock" % (API, wid),
                     {}).status == 200
    assert_error(user.delete("%s/workspaces/%s" % (API, wid)), 403)
    # listing the workspace's team access
    r = user.get("%s/team-workspaces?filter[workspace][id]=%s" % (API, wid))
    assert r.status == 200 and len(r.json["data"]) == 1, r
    # removal takes the workspace away
    assert admin.delete("%s/team-workspaces/%s"
                        % (API, tw["id"])).status == 204
    assert_error(user.get("%s/workspaces/%s" % (API, wid)), 404)


def test_team_workspace_custom_and_validation(admin, org):
    t = create_team(admin, org)
    wid = new_ws(admin, org)["id"]
    assert_error(give(admin, t["id"], wid, "owner"), 422)
    assert_error(give(admin, t["id"], wid, "read", runs="apply"), 422)
    assert_error(give(admin, t["id"], wid, "custom", runs="fly"), 422)
    assert_error(give(admin, t["id"], wid, "custom",
                      **{"workspace-locking": "yes"}), 422)
    assert_error(give(admin, "team-nope", wid, "read"), 404)
    assert_error(give(admin, t["id"], "ws-nope", "read"), 404)
    r = admin.get("%s/team-workspaces?filter[workspace][id]=%s" % (API, wid))
    assert r.json["data"] == []
    r = give(admin, t["id"], wid, "custom", runs="plan", variables="write",
             **{"state-versions": "read-outputs", "workspace-locking": True})
    assert r.status == 201, r
    a = r.json["data"]["attributes"]
    assert a["access"] == "custom" and a["runs"] == "plan"
    assert a["variables"] == "write" and a["state-versions"] == "read-outputs"
    assert a["workspace-locking"] is True and a["run-tasks"] is False
    assert_error(give(admin, t["id"], wid, "read"), 422)  # already has one
    assert_error(admin.get(API + "/team-workspaces"), 400)



def test_custom_access_update_keeps_what_is_not_given(admin, org):
    """The tfe provider updates custom access with access "custom" and only
    the permissions that changed; the others stay as they were."""
    t = create_team(admin, org)
    wid = new_ws(admin, org)["id"]
    r = give(admin, t["id"], wid, "custom", runs="plan", variables="read",
             **{"state-versions": "read-outputs", "workspace-locking": True})
    assert r.status == 201, r
    tw = r.json["data"]["id"]
    r = admin.patch("%s/team-workspaces/%s" % (API, tw), {"data": {
        "type": "team-workspaces",
        "attributes": {"access": "custom", "runs": "apply"}}})
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert (a["runs"], a["variables"], a["state-versions"],
            a["workspace-locking"]) == ("apply", "read", "read-outputs", True)
    # a fixed level drops them; custom again starts from custom's defaults
    for body, runs, variables in (({"access": "write"}, "apply", "write"),
                                  ({"access": "custom", "runs": "plan"},
                                   "plan", "none")):
        r = admin.patch("%s/team-workspaces/%s" % (API, tw), {"data": {
            "type": "team-workspaces", "attributes": body}})
        assert r.status == 200, r
        a = r.json["data"]["attributes"]
        assert (a["runs"], a["variables"]) == (runs, variables), a

    pid = admin.get("%s/organizations/%s/projects" % (API, org)).json[
        "data"][0]["id"]
    r = admin.post(API + "/team-projects", {"data": {
        "type": "team-projects", "attributes": {
            "access": "custom", "project-access": {"settings": "update"},
            "workspace-access": {"runs": "plan", "locking": True}},
        "relationships": {
            "team": {"data": {"type": "teams", "id": t["id"]}},
            "project": {"data": {"type": "projects", "id": pid}}}}})
    assert r.status == 201, r
    tp = r.json["data"]["id"]
    r = admin.patch("%s/team-projects/%s" % (API, tp), {"data": {
        "type": "team-projects", "attributes": {
            "access": "custom", "project-access": {},
            "workspace-access": {"runs": "apply"}}}})
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["project-access"]["settings"] == "update"
    assert a["workspace-access"]["runs"] == "apply"
    assert a["workspace-access"]["locking"] is True

def test_team_access_across_organizations(admin, org):
    other = unique("org")
    r = admin.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": other, "email": "o@example.com"}}})
    assert r.status == 201, r
    try:
        t = create_team(admin, other)
        wid = new_ws(admin, org)["id"]
        assert_error(give(admin, t["id"], wid, "read"), 422)
    finally:
        admin.delete(API + "/organizations/" + other)


def test_team_project_access(admin, org, member):
    uid, name, user = member
    t = create_team(admin, org)
    assert add_users(admin, t["id"], name).status == 204
    r = admin.post("%s/organizations/%s/projects" % (API, org), {"data": {
        "type": "projects", "attributes": {"name": unique("prj")}}})
    assert r.status == 201, r
    pid = r.json["data"]["id"]
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws")},
        "relationships": {"project": {"data": {"type": "projects",
                                               "id": pid}}}}})
    assert r.status == 201, r
    wid = r.json["data"]["id"]
    assert_error(user.get("%s/projects/%s" % (API, pid)), 404)
    body = {"data": {"type": "team-projects",
                     "attributes": {"access": "maintain"},
                     "relationships": {
                         "team": {"data": {"type": "teams", "id": t["id"]}},
                         "project": {"data": {"type": "projects",
                                              "id": pid}}}}}
    r = admin.post(API + "/team-projects", body)
    assert r.status == 201, r
    tp = r.json["data"]
    assert tp["attributes"]["workspace-access"]["create"] is True
    assert tp["attributes"]["project-access"]["settings"] == "read"
    assert user.get("%s/projects/%s" % (API, pid)).status == 200
    assert user.get("%s/workspaces/%s" % (API, wid)).status == 200
    assert_error(user.patch("%s/projects/%s" % (API, pid), {"data": {
        "type": "projects", "attributes": {"name": "renamed"}}}), 403)
    # maintain may create workspaces in the project, not elsewhere
    r = user.post("%s/organizations/%s/workspaces" % (API, org), {"data": {
        "type": "workspaces", "attributes": {"name": unique("ws")},
        "relationships": {"project": {"data": {"type": "projects",
                                               "id": pid}}}}})
    assert r.status == 201, r
    assert_error(user.post("%s/organizations/%s/workspaces" % (API, org),
                           {"data": {"type": "workspaces",
                                     "attributes": {"name": unique("ws")}}}),
                 403)
    # custom with blocks; validation
    body["data"]["attributes"] = {"access": "custom", "project-access": {
        "settings": "fly"}}
    assert_error(admin.post(API + "/team-projects", body), 422)
    r = admin.patch("%s/team-projects/%s" % (API, tp["id"]), {"data": {
        "type": "team-projects", "attributes": {
            "access": "custom", "project-access": {"settings": "update"},
            "workspace-access": {"runs": "plan"}}}})
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["project-access"]["settings"] == "update"
    assert a["workspace-access"]["runs"] == "plan"
    r = user.patch("%s/projects/%s" % (API, pid), {"data": {
        "type": "projects", "attributes": {"description": "by team"}}})
    assert r.status == 200, r
    r = user.get("%s/team-projects?filter[project][id]=%s" % (API, pid))
    assert r.status in (200, 403), r
    assert admin.delete("%s/team-projects/%s" % (API, tp["id"])).status == 204
    assert_error(user.get("%s/projects/%s" % (API, pid)), 404)


def test_read_workspaces_organization_access(admin, org, member):
    uid, name, user = member
    wid = new_ws(admin, org)["id"]
    t = create_team(admin, org, **{"organization-access": {
        "read-workspaces": True}})
    assert add_users(admin, t["id"], name).status == 204
    assert user.get("%s/workspaces/%s" % (API, wid)).status == 200
    assert_error(user.post("%s/workspaces/%s/vars" % (API, wid), {"data": {
        "type": "vars", "attributes": {"key": "k", "value": "v",
                                       "category": "terraform"}}}), 403)


# ---- team tokens ---------------------------------------------------------------


def test_team_tokens(admin, org):
    t = create_team(admin, org)
    wid = new_ws(admin, org)["id"]
    base = "%s/teams/%s/authentication-tokens" % (API, t["id"])
    r = admin.post(base, {"data": {"type": "authentication-tokens",
                                   "attributes": {"description": "ci",
                                                  "expired-at":
                                                  "2099-01-01T00:00:00Z"}}})
    assert r.status == 201, r
    tok = r.json["data"]
    assert tok["attributes"]["description"] == "ci"
    assert tok["attributes"]["expired-at"].startswith("2099-01-01")
    client = admin.with_token(tok["attributes"]["token"])
    r = admin.post(base, {"data": {"type": "authentication-tokens",
                                   "attributes": {"description": "two"}}})
    assert r.status == 201, r
    listed = admin.get(base)
    assert listed.status == 200 and len(listed.json["data"]) == 2, listed
    assert all(x["attributes"]["token"] is None for x in listed.json["data"])
    # the token acts with the team's permissions
    assert_error(client.get("%s/workspaces/%s" % (API, wid)), 404)
    assert give(admin, t["id"], wid, "read").status == 201
    assert client.get("%s/workspaces/%s" % (API, wid)).status == 200
    assert_error(client.post("%s/workspaces/%s/actions/lock" % (API, wid),
                             {}), 403)
    # shown and deleted by id
    assert admin.get("%s/authentication-tokens/%s"
                     % (API, tok["id"])).status == 200
    assert admin.delete("%s/authentication-tokens/%s"
                        % (API, tok["id"])).status == 204
    assert client.get("%s/workspaces/%s" % (API, wid)).status == 401
    # validation
    assert_error(admin.post(base, {"data": {
        "type": "authentication-tokens",
        "attributes": {"expired-at": "2001-01-01T00:00:00Z"}}}), 422)
    assert_error(admin.post(base, {"data": {
        "type": "authentication-tokens",
        "attributes": {"expired-at": "soon"}}}), 422)


def test_legacy_team_token(admin, org, member):
    uid, name, user = member
    t = create_team(admin, org)
    url = "%s/teams/%s/authentication-token" % (API, t["id"])
    assert_error(admin.get(url), 404)
    r1 = admin.post(url, {})
    assert r1.status == 201, r1
    r2 = admin.post(url, {})
    assert r2.status == 201, r2
    old = admin.with_token(r1.json["data"]["attributes"]["token"])
    new = admin.with_token(r2.json["data"]["attributes"]["token"])
    assert old.get("%s/organizations/%s" % (API, org)).status == 401
    assert new.get("%s/organizations/%s" % (API, org)).status == 200
    assert admin.get(url).json["data"]["id"] == r2.json["data"]["id"]
    # a plain member may not manage the team's tokens
    assert_error(user.post(url, {}), 404)  # a secret team
    assert admin.delete(url).status == 204
    assert new.get("%s/organizations/%s" % (API, org)).status == 401
    # deleting the team deletes its tokens
    r = admin.post(url, {})
    c = admin.with_token(r.json["data"]["attributes"]["token"])
    assert admin.delete("%s/teams/%s" % (API, t["id"])).status == 204
    assert c.get("%s/organizations/%s" % (API, org)).status == 401


def test_plain_member_reads_no_variable_sets_nor_run_queue(admin, org,
                                                           member):
    uid, name, user = member
    r = admin.post("%s/organizations/%s/varsets" % (API, org), {"data": {
        "type": "varsets", "attributes": {"name": unique("vs")}}})
    assert r.status == 201, r
    vs = r.json["data"]["id"]
    assert_error(user.get("%s/organizations/%s/varsets" % (API, org)), 403)
    assert_error(user.get("%s/varsets/%s" % (API, vs)), 404)
    assert_error(user.get("%s/organizations/%s/runs/queue" % (API, org)), 403)
    t = create_team(admin, org, **{"organization-access": {
        "read-workspaces": True}})
    assert add_users(admin, t["id"], name).status == 204
    assert user.get("%s/organizations/%s/varsets" % (API, org)).status == 200
    assert user.get("%s/varsets/%s" % (API, vs)).status == 200
    assert user.get("%s/organizations/%s/runs/queue"
                    % (API, org)).status == 200


def test_team_token_sees_only_its_organization_and_locks_as_team(admin,
                                                                  org):
    t = create_team(admin, org)
    wid = new_ws(admin, org)["id"]
    assert give(admin, t["id"], wid, "write").status == 201
    r = admin.post("%s/teams/%s/authentication-tokens" % (API, t["id"]), {})
    assert r.status == 201, r
    c = admin.with_token(r.json["data"]["attributes"]["token"])
    names = [o["id"] for o in c.get(API + "/organizations").json["data"]]
    assert names == [org]
    r = c.post("%s/workspaces/%s/actions/lock" % (API, wid), {})
    assert r.status == 200, r
    assert r.json["data"]["relationships"]["locked-by"]["data"] == {
        "type": "teams", "id": t["id"]}
    assert_error(admin.post("%s/workspaces/%s/actions/unlock" % (API, wid),
                            {}), 409)
    assert c.post("%s/workspaces/%s/actions/unlock"
                  % (API, wid), {}).status == 200
