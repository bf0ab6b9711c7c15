"""Organization memberships: invitations by email, accepting them, lists
with filters, removal, who may do what, and the invitation mail."""
import os
import threading
import time

import pytest

from conftest import assert_error, temp_org, unique
from smtpsink import SmtpSink
from terrace import Daemon

API = "/api/v2"


def make_user(admin, email=None):
    """A new user (with email, default name@example.com) and a client
    holding one of its tokens."""
    name = unique("u")
    r = admin.post(API + "/admin/users", {"data": {"type": "users",
        "attributes": {"username": name,
                       "email": email or name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("%s/admin/users/%s/authentication-tokens" % (API, uid), {})
    assert r.status == 201, r
    return uid, name, admin.with_token(r.json["data"]["attributes"]["token"])


def base(org):
    return "%s/organizations/%s/organization-memberships" % (API, org)


def invite(client, org, email, **rels):
    body = {"data": {"type": "organization-memberships",
                     "attributes": {"email": email}}}
    if rels:
        body["data"]["relationships"] = rels
    return client.post(base(org), body)


def accept(client, mid):
    return client.post("%s/organization-memberships/%s/actions/accept"
                       % (API, mid), {})


def listing(client, org, query=""):
    r = client.get(base(org) + "?page[size]=100" + query)
    assert r.status == 200, r
    return r.json


@pytest.fixture
def user(admin):
    uid, name, c = make_user(admin)
    yield uid, name, c
    admin.delete("%s/admin/users/%s" % (API, uid))


def test_invite_existing_user_then_accept(admin, org, user):
    uid, name, c = user
    r = invite(admin, org, name.upper() + "@EXAMPLE.COM")
    assert r.status == 201, r
    m = r.json["data"]
    assert m["id"].startswith("ou-") and m["type"] == "organization-memberships"
    assert m["attributes"]["status"] == "invited"
    assert m["attributes"]["email"] == name + "@example.com"
    assert m["relationships"]["user"]["data"] == {"type": "users", "id": uid}
    assert m["relationships"]["organization"]["data"]["id"] == org
    assert m["relationships"]["teams"]["data"] == []
    assert r.json["included"][0]["id"] == uid
    # invited is not a member: no access to the organization yet
    assert_error(c.get("%s/organizations/%s" % (API, org)), 404)
    assert_error(c.get(base(org)), 404)
    assert_error(invite(c, org, "x@example.com"), 404)
    # but the user sees the invitation among their own memberships
    own = c.get(API + "/organization-memberships")
    assert own.status == 200, own
    assert [x["id"] for x in own.json["data"]] == [m["id"]]
    r = c.get("%s/organization-memberships/%s" % (API, m["id"]))
    assert r.status == 200 and r.json["data"] == m
    # a second invitation of the same user is refused, nothing added
    assert_error(invite(admin, org, name + "@example.com"), 422)
    assert listing(admin, org)["meta"]["pagination"]["total-count"] == 2
    # only the invited user accepts
    assert_error(accept(admin, m["id"]), 403)
    r = accept(c, m["id"])
    assert r.status == 200, r
    assert r.json["data"]["attributes"]["status"] == "active"
    assert_error(accept(c, m["id"]), 409)
    assert c.get("%s/organizations/%s" % (API, org)).status == 200
    assert m["id"] in [x["id"] for x in listing(c, org)["data"]]
    # the owner removes the member: access is gone
    assert admin.delete("%s/organization-memberships/%s"
                        % (API, m["id"])).status == 204
    assert_error(c.get("%s/organizations/%s" % (API, org)), 404)
    assert_error(admin.get("%s/organization-memberships/%s"
                           % (API, m["id"])), 404)


def test_invite_unknown_email_waits_for_the_account(admin, org):
    email = unique("new") + "@Example.com"
    r = invite(admin, org, email)
    assert r.status == 201, r
    m = r.json["data"]
    assert m["attributes"]["status"] == "invited"
    reserved = m["relationships"]["user"]["data"]["id"]
    assert reserved.startswith("user-")
    inc, = r.json["included"]
    assert inc["id"] == reserved and inc["attributes"]["email"] == email
    assert inc["attributes"]["username"] is None
    # reads render what create returned
    r = admin.get("%s/organization-memberships/%s?include=user"
                  % (API, m["id"]))
    assert r.status == 200 and r.json["data"] == m
    assert r.json["included"] == [inc]
    # a second organization's invitation reserves the same id
    for other in temp_org(admin):
        r2 = invite(admin, other, email.lower())
        assert r2.status == 201, r2
        assert r2.json["data"]["relationships"]["user"]["data"]["id"] \
            == reserved
        # the account made with the address takes that id and both
        # invitations; they stay invited until it accepts
        uid, name, c = make_user(admin, email=email.upper())
        try:
            assert uid == reserved
            own = c.get(API + "/organization-memberships?include=user")
            assert own.status == 200, own
            assert sorted(x["relationships"]["organization"]["data"]["id"]
                          for x in own.json["data"]) == sorted([org, other])
            assert {x["attributes"]["status"] for x in own.json["data"]} \
                == {"invited"}
            assert {x["id"] for x in own.json["included"]} == {uid}
            assert_error(c.get("%s/organizations/%s" % (API, org)), 404)
            assert accept(c, m["id"]).status == 200
            assert c.get("%s/organizations/%s" % (API, org)).status == 200
            assert_error(c.get("%s/organizations/%s" % (API, other)), 404)
            # declining: the invited user deletes their invitation
            mid2 = r2.json["data"]["id"]
            assert c.delete("%s/organization-memberships/%s"
                            % (API, mid2)).status == 204
            assert_error(c.get("%s/organization-memberships/%s"
                               % (API, mid2)), 404)
        finally:
            admin.delete("%s/admin/users/%s" % (API, uid))


@pytest.mark.parametrize("body,status", [
    ({"data": {"type": "organization-memberships", "attributes": {}}}, 422),
    ({"data": {"type": "organization-memberships",
               "attributes": {"email": "not-an-email"}}}, 422),
    ({"data": {"type": "organization-memberships",
               "attributes": {"email": 7}}}, 422),
    ({"data": {"type": "organization-memberships",
               "attributes": {"email": "a b@example.com"}}}, 422),
    ({"data": {"type": "organization-memberships",
               "attributes": {"email": "t@example.com"},
               "relationships": {"teams": {"data": "team-x"}}}}, 422),
    ({"data": {"type": "organization-memberships",
               "attributes": {"email": "t@example.com"},
               "relationships": {"teams": {"data": [{"type": "teams"}]}}}},
     422),
    ({"data": {"type": "organization-memberships",
               "attributes": {"email": "t@example.com"},
               "relationships": {"teams": {"data": [
                   {"type": "teams", "id": "team-nope"}]}}}}, 404),
    ({"data": {"type": "users", "attributes": {"email": "t@example.com"}}},
     409),
    ("{bad", 400),
])
def test_invite_validation(admin, org, body, status):
    before = listing(admin, org)
    if isinstance(body, str):
        r = admin.request("POST", base(org), raw=body,
                          ctype="application/vnd.api+json")
    else:
        r = admin.post(base(org), body)
    assert_error(r, status)
    assert listing(admin, org) == before


def test_invite_with_empty_teams_and_unknown_org(admin, org):
    r = invite(admin, org, unique("t") + "@example.com",
               teams={"data": []})
    assert r.status == 201, r
    assert r.json["data"]["relationships"]["teams"]["data"] == []
    assert_error(invite(admin, unique("none"), "t@example.com"), 404)


def new_team(client, org):
    r = client.post("%s/organizations/%s/teams" % (API, org),
                    {"data": {"type": "teams",
                              "attributes": {"name": unique("team")}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def team_rel(ids):
    return {"data": [{"type": "teams", "id": t} for t in ids]}


def team_ids(m):
    return sorted(t["id"] for t in m["relationships"]["teams"]["data"])


def team_of(client, tid):
    r = client.get("%s/teams/%s?include=users,organization-memberships"
                   % (API, tid))
    assert r.status == 200, r
    return r.json


def test_invite_into_teams_then_accept(admin, org, user):
    uid, name, c = user
    t1, t2, t3 = new_team(admin, org), new_team(admin, org), \
        new_team(admin, org)
    r = invite(admin, org, name + "@example.com", teams=team_rel([t1, t2, t3]))
    assert r.status == 201, r
    m = r.json["data"]
    assert team_ids(m) == sorted([t1, t2, t3])
    # the same teams on show, list and include=teams
    r = admin.get("%s/organization-memberships/%s?include=teams"
                  % (API, m["id"]))
    assert r.status == 200, r
    assert team_ids(r.json["data"]) == sorted([t1, t2, t3])
    inc = r.json["included"]
    assert sorted(x["id"] for x in inc) == sorted([t1, t2, t3])
    assert all(x["type"] == "teams" and x["attributes"]["name"] for x in inc)
    listed = [x for x in listing(admin, org, "&include=teams,user")["data"]
              if x["id"] == m["id"]][0]
    assert team_ids(listed) == sorted([t1, t2, t3])
    # the teams list the invitation, not yet its user
    d = team_of(admin, t1)
    assert d["data"]["relationships"]["users"]["data"] == []
    assert d["data"]["attributes"]["users-count"] == 0
    assert {"type": "organization-memberships", "id": m["id"]} in \
        d["data"]["relationships"]["organization-memberships"]["data"]
    assert [x["attributes"]["status"] for x in d["included"]
            if x["id"] == m["id"]] == ["invited"]
    # a team deleted meanwhile is skipped on acceptance
    assert admin.delete("%s/teams/%s" % (API, t3)).status == 204
    r = c.get("%s/organization-memberships/%s" % (API, m["id"]))
    assert team_ids(r.json["data"]) == sorted([t1, t2])
    r = accept(c, m["id"])
    assert r.status == 200, r
    assert team_ids(r.json["data"]) == sorted([t1, t2])
    for t in (t1, t2):
        d = team_of(admin, t)
        assert d["data"]["relationships"]["users"]["data"] == [
            {"type": "users", "id": uid}]
        assert d["data"]["relationships"]["organization-memberships"][
            "data"] == [{"type": "organization-memberships", "id": m["id"]}]
    # an active membership's teams are its user's teams of the organization
    r = admin.request("DELETE", "%s/teams/%s/relationships/users"
                      % (API, t2),
                      {"data": [{"type": "users", "id": name}]})
    assert r.status == 204, r
    r = admin.get("%s/organization-memberships/%s" % (API, m["id"]))
    assert team_ids(r.json["data"]) == [t1]
    # leaving the organization leaves its teams
    assert admin.delete("%s/organization-memberships/%s"
                        % (API, m["id"])).status == 204
    assert team_of(admin, t1)["data"]["relationships"]["users"]["data"] == []


def test_invite_into_teams_refused_changes_nothing(admin, org):
    mine = new_team(admin, org)
    for other in temp_org(admin):
        theirs = new_team(admin, other)
        before = listing(admin, org)
        email = unique("t") + "@example.com"
        r = invite(admin, org, email, teams=team_rel([mine, theirs]))
        assert_error(r, 404)
        assert theirs in r.json["errors"][0]["detail"]
        assert_error(invite(admin, org, email,
                            teams=team_rel([mine, "team-nope"])), 404)
        assert listing(admin, org) == before
        assert team_of(admin, mine)["data"]["relationships"][
            "organization-memberships"]["data"] == []
        # the same address may still be invited
        r = invite(admin, org, email, teams=team_rel([mine, mine]))
        assert r.status == 201, r
        assert team_ids(r.json["data"]) == [mine]


def test_team_adds_and_removes_an_invitation(admin, org, user):
    uid, name, c = user
    t = new_team(admin, org)
    m = invite(admin, org, name + "@example.com").json["data"]["id"]
    path = "%s/teams/%s/relationships/organization-memberships" % (API, t)
    body = {"data": [{"type": "organization-memberships", "id": m}]}
    assert admin.post(path, body).status == 204
    assert admin.post(path, body).status == 204  # twice is once
    d = team_of(admin, t)
    assert d["data"]["relationships"]["organization-memberships"]["data"] == \
        [{"type": "organization-memberships", "id": m}]
    r = admin.get("%s/organization-memberships/%s" % (API, m))
    assert team_ids(r.json["data"]) == [t]
    assert admin.request("DELETE", path, body).status == 204
    assert team_of(admin, t)["data"]["relationships"][
        "organization-memberships"]["data"] == []
    r = admin.get("%s/organization-memberships/%s" % (API, m))
    assert team_ids(r.json["data"]) == []
    # another organization's invitation is not found, nothing changes
    for other in temp_org(admin):
        r = invite(admin, other, unique("o") + "@example.com")
        assert r.status == 201, r
        theirs = r.json["data"]["id"]
        both = {"data": [{"type": "organization-memberships", "id": m},
                         {"type": "organization-memberships", "id": theirs}]}
        assert_error(admin.post(path, both), 404)
        assert team_of(admin, t)["data"]["relationships"][
            "organization-memberships"]["data"] == []
    # added while invited: a member of the team once accepted
    assert admin.post(path, body).status == 204
    assert accept(c, m).status == 200
    d = team_of(admin, t)
    assert d["data"]["relationships"]["users"]["data"] == [
        {"type": "users", "id": uid}]
    # and removed by membership as a member
    assert admin.request("DELETE", path, body).status == 204
    assert team_of(admin, t)["data"]["relationships"]["users"]["data"] == []


def test_outsiders_and_invitees_change_nothing(admin, org, user):
    uid, name, c = user
    r = invite(admin, org, unique("p") + "@example.com")
    assert r.status == 201
    pending = r.json["data"]["id"]
    owner = [x for x in listing(admin, org)["data"]
             if x["attributes"]["status"] == "active"][0]["id"]
    before = listing(admin, org)
    # not a member at all
    assert_error(invite(c, org, "z@example.com"), 404)
    assert_error(c.get(base(org)), 404)
    for mid in (pending, owner):
        assert_error(c.get("%s/organization-memberships/%s" % (API, mid)),
                     404)
        assert_error(c.delete("%s/organization-memberships/%s"
                              % (API, mid)), 404)
        assert_error(accept(c, mid), 404)
    # invited but not yet a member: the same
    r = invite(admin, org, name + "@example.com")
    assert r.status == 201
    mine = r.json["data"]["id"]
    before = listing(admin, org)
    assert_error(invite(c, org, "z@example.com"), 404)
    assert_error(c.delete("%s/organization-memberships/%s"
                          % (API, owner)), 404)
    assert listing(admin, org) == before
    assert accept(c, mine).status == 200


def test_last_owner_stays(admin, org, user):
    uid, name, c = user
    ms = listing(admin, org)["data"]
    assert len(ms) == 1
    only = ms[0]["id"]
    assert_error(admin.delete("%s/organization-memberships/%s"
                              % (API, only)), 409)
    assert listing(admin, org)["data"] == ms
    # with a second owner the first may go; then the second is the last
    m = invite(admin, org, name + "@example.com").json["data"]["id"]
    assert accept(c, m).status == 200
    # a plain member may not remove others
    assert_error(c.delete("%s/organization-memberships/%s" % (API, only)),
                 403)
    r = admin.get("%s/organizations/%s/teams?filter[names]=owners"
                  % (API, org))
    owners = r.json["data"][0]["id"]
    r = admin.post("%s/teams/%s/relationships/users" % (API, owners),
                   {"data": [{"type": "users", "id": name}]})
    assert r.status == 204, r
    assert c.delete("%s/organization-memberships/%s"
                    % (API, only)).status == 204
    assert_error(c.delete("%s/organization-memberships/%s" % (API, m)), 409)
    assert [x["id"] for x in listing(c, org)["data"]] == [m]


def test_list_filters_and_paging(admin, org, user):
    uid, name, c = user
    tag = unique("f")
    emails = ["%s-%d@example.com" % (tag, i) for i in range(3)]
    ids = [invite(admin, org, e).json["data"]["id"] for e in emails]
    mid = invite(admin, org, name + "@example.com").json["data"]["id"]
    assert accept(c, mid).status == 200
    doc = listing(admin, org)
    assert doc["meta"]["pagination"]["total-count"] == 5
    got = listing(admin, org, "&filter[status]=invited")["data"]
    assert sorted(x["id"] for x in got) == sorted(ids)
    got = listing(admin, org, "&filter[status]=active")["data"]
    assert {x["attributes"]["status"] for x in got} == {"active"}
    assert mid in [x["id"] for x in got] and len(got) == 2
    got = listing(admin, org, "&filter[email]=%s,%s"
                  % (emails[0], emails[2].upper()))["data"]
    assert sorted(x["id"] for x in got) == sorted([ids[0], ids[2]])
    got = listing(admin, org, "&q=" + tag)["data"]
    assert sorted(x["id"] for x in got) == sorted(ids)
    got = listing(admin, org, "&q=" + name)["data"]  # by username
    assert [x["id"] for x in got] == [mid]
    got = listing(admin, org, "&q=%s&filter[status]=active" % tag)["data"]
    assert got == []
    r = admin.get(base(org) + "?page[size]=2&page[number]=2")
    assert r.status == 200
    assert len(r.json["data"]) == 2
    assert r.json["meta"]["pagination"]["total-count"] == 5
    assert r.json["meta"]["pagination"]["current-page"] == 2
    r = admin.get(base(org) + "?page[size]=100&page[number]=999")
    assert r.status == 200 and r.json["data"] == []
    assert r.json["meta"]["pagination"]["total-count"] == 5
    r = admin.get(base(org) + "?include=user,teams")
    assert r.status == 200
    assert uid in [x["id"] for x in r.json["included"]]
    assert_error(admin.get(base(org) + "?include=bogus"), 400)
    assert_error(admin.get(base(org) + "?filter[status]=gone"), 400)
    assert_error(admin.get(base(org) + "?filter[email]=foobar"), 400)
    assert_error(admin.get(API + "/organization-memberships/ou-nope"), 404)


def test_own_memberships_need_a_user(admin, org):
    r = admin.post("%s/organizations/%s/authentication-token" % (API, org),
                   {})
    ot = admin.with_token(r.json["data"]["attributes"]["token"])
    assert_error(ot.get(API + "/organization-memberships"), 404)
    own = admin.get(API + "/organization-memberships?filter[status]=active")
    assert own.status == 200
    assert org in [x["relationships"]["organization"]["data"]["id"]
                   for x in own.json["data"]]


def test_notification_users_may_be_invited(admin, org):
    """An invited user may receive notifications (go-tfe does this)."""
    r = invite(admin, org, unique("n") + "@example.com")
    reserved = r.json["data"]["relationships"]["user"]["data"]["id"]
    r = admin.post("%s/organizations/%s/workspaces" % (API, org), {
        "data": {"type": "workspaces", "attributes": {"name": unique("w")}}})
    assert r.status == 201, r
    ws = r.json["data"]["id"]
    body = {"data": {"type": "notification-configurations", "attributes": {
        "name": "n", "destination-type": "email", "enabled": False},
        "relationships": {"users": {"data": [
            {"type": "users", "id": reserved}]}}}}
    r = admin.post("%s/workspaces/%s/notification-configurations"
                   % (API, ws), body)
    assert r.status == 201, r
    body["data"]["relationships"]["users"]["data"][0]["id"] = "user-nope"
    assert_error(admin.post("%s/workspaces/%s/notification-configurations"
                            % (API, ws), body), 422)


# ---- the invitation mail -------------------------------------------------------

class Mailbox:
    def __init__(self):
        self.cv = threading.Condition()
        self.msgs = []

    def deliver(self, mail_from, rcpt_tos, text):
        with self.cv:
            self.msgs.append((mail_from, rcpt_tos, text))
            self.cv.notify_all()

    def wait_for(self, rcpt, start=0, timeout=30):
        """The first message to rcpt from the start'th on."""
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for m in self.msgs[start:]:
                    if rcpt in m[1]:
                        return m
                left = deadline - time.time()
                assert left > 0, "mailbox got %r" % self.msgs
                self.cv.wait(left)


@pytest.fixture(scope="module")
def mailed():
    box = Mailbox()
    sink = SmtpSink(box.deliver)
    sink.start()
    dm = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
                extra_args=["--smtp-host", "127.0.0.1", "--smtp-port",
                            str(sink.port), "--smtp-from",
                            "terrace@example.com", "--smtp-tls", "off"])
    dm.start()
    yield dm, box
    dm.stop()
    with open(os.path.join(dm.tmp, "terraced.log"), "rb") as f:
        log = f.read().decode(errors="replace")
    dm.close()
    sink.stop()
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
        assert bad not in log, bad


def test_invitation_mail(mailed):
    dm, box = mailed
    admin = dm.client()
    for org in temp_org(admin):
        email = unique("m") + "@example.com"
        r = invite(admin, org, email)
        assert r.status == 201, r
        mid = r.json["data"]["id"]
        frm, rcpt, text = box.wait_for(email)
        assert frm == "terrace@example.com" and rcpt == [email]
        assert "Subject: Terrace: you are invited to join %s" % org in text
        assert "/api/v2/organization-memberships/%s/actions/accept" % mid \
            in text
        # one mail per invitation: a later invitation's mail arrives and
        # the first was not sent again
        email2 = unique("m") + "@example.com"
        assert invite(admin, org, email2).status == 201
        box.wait_for(email2)
        assert [m for m in box.msgs if email in m[1]] == [(frm, rcpt, text)]


def test_notifications_mail_active_members_only(mailed):
    """An invited user named by a notification gets its mail only once
    they have accepted."""
    dm, box = mailed
    admin = dm.client()
    for org in temp_org(admin):
        uid, name, c = make_user(admin)
        try:
            mid = invite(admin, org, name + "@example.com").json["data"]["id"]
            r = admin.post("%s/organizations/%s/workspaces" % (API, org), {
                "data": {"type": "workspaces",
                         "attributes": {"name": unique("w")}}})
            assert r.status == 201, r
            ws = r.json["data"]["id"]
            ops = unique("ops") + "@example.com"
            r = admin.post(
                "%s/workspaces/%s/notification-configurations" % (API, ws),
                {"data": {"type": "notification-configurations",
                          "attributes": {"name": "n",
                                         "destination-type": "email",
                                         "email-addresses": [ops],
                                         "enabled": True},
                          "relationships": {"users": {"data": [
                              {"type": "users", "id": uid}]}}}})
            assert r.status == 201, r
            verify = "%s/notification-configurations/%s/actions/verify" % (
                API, r.json["data"]["id"])
            assert admin.post(verify, {}).status == 200
            _, rcpt, _ = box.wait_for(ops)
            assert rcpt == [ops]
            assert accept(c, mid).status == 200
            n = len(box.msgs)
            assert admin.post(verify, {}).status == 200
            _, rcpt, _ = box.wait_for(ops, start=n)
            assert sorted(rcpt) == sorted([ops, name + "@example.com"])
        finally:
            admin.delete("%s/admin/users/%s" % (API, uid))
