"""Site administration of tool versions (/api/v2/admin/terraform-versions):
the tofu/terraform binaries runs may use, checked by path and sha256 on the
node; and `terrace admin tool-versions add`."""
import glob
import hashlib
import os
import shutil
import stat
import subprocess

import pytest

from conftest import assert_error, unique

BUILD = os.environ.get("TERRACE_BUILD_DIR",
                       os.path.join(os.path.dirname(__file__), "..", "..",
                                    "build"))
BASE = "/api/v2/admin/terraform-versions"
BIG = 17 * 1024 * 1024  # over the default 16 MiB JSON body limit


def new_version():
    n = int(unique("v").split("-")[1][:7], 16)
    return "%d.%d.%d" % (900 + n % 97, n % 1000, n % 7919)


def make_binary(tmp_path, text="#!/bin/sh\necho fake tofu\n", mode=0o755):
    p = tmp_path / unique("tofu")
    p.write_text(text)
    p.chmod(mode)
    return str(p), hashlib.sha256(text.encode()).hexdigest()


def body(type_="terraform-versions", **attrs):
    return {"data": {"type": type_, "attributes": attrs}}


def create(admin, tmp_path, version=None, **extra):
    path, sha = make_binary(tmp_path)
    attrs = {"version": version or new_version(), "path": path, "sha": sha}
    attrs.update(extra)
    r = admin.post(BASE, body(**attrs))
    assert r.status == 201, r
    return r.json["data"]


def by_version(admin, version):
    r = admin.get(BASE + "?filter[version]=" + version)
    assert r.status == 200, r
    return r.json["data"]


@pytest.fixture
def user_client(admin):
    name = unique("u")
    r = admin.post("/api/v2/admin/users", {"data": {
        "type": "users", "attributes": {"username": name,
                                        "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("/api/v2/admin/users/%s/authentication-tokens" % uid, {})
    assert r.status == 201, r
    yield admin.with_token(r.json["data"]["attributes"]["token"])
    admin.delete("/api/v2/admin/users/" + uid)


def test_create_read(admin, tmp_path):
    path, sha = make_binary(tmp_path)
    v = new_version()
    r = admin.post(BASE, body(version=v, path=path, sha=sha.upper(),
                              beta=True))
    assert r.status == 201, r
    d = r.json["data"]
    assert d["type"] == "terraform-versions" and d["id"].startswith("tool-")
    a = d["attributes"]
    assert a["version"] == v and a["path"] == path
    assert a["url"] == "file://" + path
    assert a["sha"] == sha  # stored lower-case
    assert a["enabled"] is True and a["beta"] is True
    assert a["official"] is False and a["deprecated"] is False
    assert a["deprecated-reason"] is None and a["usage"] == 0
    assert a["created-at"].endswith("Z")
    r = admin.get(BASE + "/" + d["id"])
    assert r.status == 200 and r.json["data"] == d
    assert_error(admin.get(BASE + "/tool-nope"), 404)
    assert admin.delete(BASE + "/" + d["id"]).status == 204


def test_file_url_is_a_path(admin, tmp_path):
    path, sha = make_binary(tmp_path)
    v = new_version()
    r = admin.post(BASE, body(version=v, url="file://" + path, sha=sha,
                              enabled=False, official=True))
    assert r.status == 201, r
    a = r.json["data"]["attributes"]
    assert a["path"] == path and a["enabled"] is False
    assert a["official"] is True
    admin.delete(BASE + "/" + r.json["data"]["id"])


def test_only_site_admins(admin, anon, user_client, org, tmp_path):
    d = create(admin, tmp_path)
    one = BASE + "/" + d["id"]
    path, sha = make_binary(tmp_path)
    new = body(version=new_version(), path=path, sha=sha)
    r = admin.post("/api/v2/organizations/%s/authentication-token" % org, {})
    assert r.status == 201, r
    org_client = admin.with_token(r.json["data"]["attributes"]["token"])
    for client in (user_client, org_client):
        assert_error(client.get(BASE), 404)
        assert_error(client.post(BASE, new), 404)
        assert_error(client.get(one), 404)
        assert_error(client.patch(one, body(enabled=False)), 404)
        assert_error(client.delete(one), 404)
    for call in (lambda: anon.get(BASE), lambda: anon.get(one),
                 lambda: anon.post(BASE, new), lambda: anon.delete(one)):
        assert_error(call(), 401)
    # nothing changed
    assert by_version(admin, new["data"]["attributes"]["version"]) == []
    r = admin.get(one)
    assert r.status == 200 and r.json["data"] == d
    admin.delete(one)


def test_file_checks(admin, tmp_path):
    path, sha = make_binary(tmp_path)
    plain, plain_sha = make_binary(tmp_path, mode=0o644)
    v = new_version()
    cases = [
        dict(path=path, sha="0" * 64),             # checksum mismatch
        dict(path=plain, sha=plain_sha),           # not executable
        dict(path=path + ".missing", sha=sha),     # no such file
        dict(path=os.path.basename(path), sha=sha),  # relative
        dict(path=str(tmp_path), sha=sha),         # a directory
        dict(url="https://releases.example.com/tofu.zip", sha=sha),
    ]
    for attrs in cases:
        r = admin.post(BASE, body(version=v, **attrs))
        assert_error(r, 422)
    assert by_version(admin, v) == []
    r = admin.post(BASE, body(version=v, path=path, sha="0" * 64))
    assert "sha" in r.json["errors"][0]["detail"]


@pytest.mark.parametrize("payload,status", [
    ("{not json", 400),
    ('{"data": []}', 422),
    (body(type_="workspaces", version="x"), 409),
    (body(path="P", sha="S"), 422),                   # no version
    (body(version="V", sha="S"), 422),                # no path
    (body(version="V", path="P"), 422),               # no sha
    (body(version=1, path="P", sha="S"), 422),
    (body(version="1.2", path="P", sha="S"), 422),
    (body(version="v1.2.3", path="P", sha="S"), 422),
    (body(version="V", path="P", sha="xyz"), 422),
    (body(version="V", path="P", sha="S", enabled="yes"), 422),
    (body(version="V", path="P", sha="S", beta=1), 422),
    (body(version="V", path="P", sha="S", **{"deprecated-reason": 5}), 422),
    (body(version="V", path=["P"], sha="S"), 422),
])
def test_create_bad_input(admin, tmp_path, payload, status):
    path, sha = make_binary(tmp_path)
    v = new_version()

    def fill(x):
        if isinstance(x, dict):
            return {k: fill(y) for k, y in x.items()}
        return {"V": v, "P": path, "S": sha}.get(x, x) \
            if isinstance(x, str) else x
    if isinstance(payload, str):
        r = admin.request("POST", BASE, raw=payload,
                          ctype="application/vnd.api+json")
    else:
        r = admin.post(BASE, fill(payload))
    assert_error(r, status)
    assert by_version(admin, v) == []


def test_too_large_and_duplicate(admin, tmp_path):
    try:
        r = admin.request("POST", BASE, raw=b"{" + b" " * BIG + b"}",
                          ctype="application/vnd.api+json")
        assert_error(r, 413)
    except (ConnectionError, OSError):
        pass  # the server may close while the client is still sending
    d = create(admin, tmp_path)
    v = d["attributes"]["version"]
    path, sha = make_binary(tmp_path, text="#!/bin/sh\necho other\n")
    r = admin.post(BASE, body(version=v, path=path, sha=sha))
    assert_error(r, 422)
    assert [x["id"] for x in by_version(admin, v)] == [d["id"]]
    admin.delete(BASE + "/" + d["id"])


def test_list_filter_search_pages(admin, tmp_path):
    major = 800 + int(unique("m").split("-")[1][:4], 16) % 99
    made = [create(admin, tmp_path, version="%d.%d.0" % (major, minor))
            for minor in (2, 10, 1)]
    made.append(create(admin, tmp_path, version="%d.10.0-rc1" % major))
    r = admin.get(BASE + "?search[version]=%d.&page[size]=100" % major)
    assert r.status == 200, r
    got = [x["attributes"]["version"] for x in r.json["data"]]
    # newest first by semantic version: a pre-release below its release
    assert got == ["%d.10.0" % major, "%d.10.0-rc1" % major,
                   "%d.2.0" % major, "%d.1.0" % major]
    r = admin.get(BASE + "?search[version]=%d.&page[size]=3&page[number]=2"
                  % major)
    assert r.status == 200, r
    assert [x["attributes"]["version"] for x in r.json["data"]] == \
        ["%d.1.0" % major]
    p = r.json["meta"]["pagination"]
    assert p["current-page"] == 2 and p["total-count"] == 4
    assert p["total-pages"] == 2 and p["prev-page"] == 1
    assert by_version(admin, "%d.2.0" % major)[0]["id"] == made[0]["id"]
    assert by_version(admin, "%d.2" % major) == []
    r = admin.get(BASE + "?page[size]=100&page[number]=999")
    assert r.status == 200 and r.json["data"] == []
    assert_error(admin.get(BASE + "?page[size]=0"), 400)
    for d in made:
        assert admin.delete(BASE + "/" + d["id"]).status == 204


def test_update(admin, tmp_path):
    d = create(admin, tmp_path)
    one = BASE + "/" + d["id"]
    a0 = d["attributes"]
    v2 = new_version()
    r = admin.patch(one, body(version=v2, deprecated=True,
                              **{"deprecated-reason": "use 2.x"}))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["version"] == v2 and a["deprecated"] is True
    assert a["deprecated-reason"] == "use 2.x"
    assert a["path"] == a0["path"] and a["sha"] == a0["sha"]
    assert a["enabled"] is True
    # another binary: path and sha must agree
    path, sha = make_binary(tmp_path, text="#!/bin/sh\necho v2\n")
    before = admin.get(one).json["data"]
    for attrs in (dict(path=path), dict(sha=sha), dict(path=path,
                                                      sha="1" * 64),
                  dict(version="nope"), dict(enabled="no"),
                  dict(path=path + ".missing", sha=sha)):
        assert_error(admin.patch(one, body(**attrs)), 422)
    assert_error(admin.patch(one, body(type_="users", enabled=False)), 409)
    assert_error(admin.request("PATCH", one, raw="{",
                               ctype="application/vnd.api+json"), 400)
    assert admin.get(one).json["data"] == before
    r = admin.patch(one, body(path=path, sha=sha, deprecated=False))
    assert r.status == 200, r
    a = r.json["data"]["attributes"]
    assert a["path"] == path and a["sha"] == sha
    assert a["deprecated"] is False and a["deprecated-reason"] is None
    # a taken version
    other = create(admin, tmp_path)
    assert_error(admin.patch(one, body(
        version=other["attributes"]["version"])), 422)
    assert_error(admin.patch(BASE + "/tool-nope", body(enabled=False)), 404)
    for x in (d, other):
        admin.delete(BASE + "/" + x["id"])


def test_delete_in_use(admin, org, tmp_path):
    d = create(admin, tmp_path)
    v = d["attributes"]["version"]
    ws = unique("ws")
    r = admin.post("/api/v2/organizations/%s/workspaces" % org, {"data": {
        "type": "workspaces",
        "attributes": {"name": ws, "terraform-version": v}}})
    assert r.status == 201, r
    wid = r.json["data"]["id"]
    assert admin.get(BASE + "/" + d["id"]).json["data"]["attributes"][
        "usage"] == 1
    assert_error(admin.delete(BASE + "/" + d["id"]), 422)
    assert admin.get(BASE + "/" + d["id"]).status == 200
    r = admin.patch("/api/v2/workspaces/" + wid, {"data": {
        "type": "workspaces", "attributes": {"terraform-version": "latest"}}})
    assert r.status == 200, r
    assert admin.delete(BASE + "/" + d["id"]).status == 204
    assert_error(admin.get(BASE + "/" + d["id"]), 404)
    assert_error(admin.delete(BASE + "/" + d["id"]), 404)


def installed_tofu():
    if os.environ.get("TERRACE_TOFU_BIN"):
        return os.environ["TERRACE_TOFU_BIN"]
    found = shutil.which("tofu")
    if found:
        return found
    cached = sorted(glob.glob(os.path.expanduser(
        "~/.cache/terrace/tofu-*/tofu")))
    return cached[-1] if cached else None


def test_demo_registers_its_tofu(daemon, admin):
    if daemon.backend != "sqlite" or installed_tofu() is None:
        pytest.skip("only the demo registers a tofu, and none is installed")
    real = os.path.realpath(installed_tofu())
    r = admin.get(BASE + "?page[size]=100")
    paths = [x["attributes"]["path"] for x in r.json["data"]]
    assert real in paths, paths


def test_cli_add(daemon, admin, tmp_path):
    path, sha = make_binary(tmp_path)
    v = new_version()
    token = tmp_path / "token"
    token.write_text(daemon.admin_token + "\n")
    base = [os.path.join(BUILD, "terrace"), "admin", "--url", daemon.url,
            "--token-file", str(token), "--ca-file", daemon.ca]
    rel = os.path.relpath(path)
    p = subprocess.run(base + ["tool-versions", "add", "--version", v,
                               "--path", rel],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    tid = p.stdout.strip()
    assert tid.startswith("tool-")
    a = admin.get(BASE + "/" + tid).json["data"]["attributes"]
    assert a["path"] == path and a["sha"] == sha and a["version"] == v
    # a duplicate is refused with the server's reason; usage errors are 2
    p = subprocess.run(base + ["tool-versions", "add", "--version", v,
                               "--path", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "already" in p.stderr, p.stderr
    p = subprocess.run(base + ["tool-versions", "add", "--version", v],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    os.chmod(path, stat.S_IRUSR)
    p = subprocess.run(base + ["tool-versions", "add", "--version",
                               new_version(), "--path", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "not executable" in p.stderr, p.stderr
    admin.delete(BASE + "/" + tid)
