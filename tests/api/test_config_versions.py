"""Configuration versions: create (every attribute combination and the
bad-input matrix), signed upload of go-slug style tarballs, read, list,
download, archive, and every attack archive refused with the version
errored and nothing stored.  Every rejected request is followed by a read
proving nothing else changed."""
import gzip
import io
import os
import tarfile
import time
import urllib.parse

import pytest

from conftest import assert_error, unique
from terrace import Daemon

API = "/api/v2"
TYPE = "configuration-versions"


# ---- helpers -----------------------------------------------------------------

def make_ws(client, org):
    r = client.post("%s/organizations/%s/workspaces" % (API, org), {
        "data": {"type": "workspaces", "attributes": {"name": unique("ws")}}})
    assert r.status == 201, r
    return r.json["data"]["id"]


def cv_body(**attrs):
    return {"data": {"type": TYPE, "attributes": attrs}}


def create(client, ws, **attrs):
    return client.post("%s/workspaces/%s/configuration-versions" % (API, ws),
                       cv_body(**attrs))


def new_cv(client, ws, **attrs):
    r = create(client, ws, **attrs)
    assert r.status == 201, r
    d = r.json["data"]
    return d["id"], d["attributes"]["upload-url"]


def read(client, cv):
    r = client.get("%s/configuration-versions/%s" % (API, cv))
    assert r.status == 200, r
    return r.json["data"]


def listing(client, ws):
    r = client.get("%s/workspaces/%s/configuration-versions?page[size]=100"
                   % (API, ws))
    assert r.status == 200, r
    return [(d["id"], d["attributes"]["status"]) for d in r.json["data"]]


def tarball(entries, gz=True):
    """entries: (TarInfo, bytes or None) pairs -> the archive's bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w",
                      format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return buf.getvalue()


def f(name, data=b"x", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.mode = mode
    ti.mtime = 1700000000
    return ti, data


def d(name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    return ti, None


def link(name, target, kind=tarfile.SYMTYPE):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    return ti, None


def special(name, kind):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.devmajor, ti.devminor = 1, 3
    return ti, None


GOOD = tarball([
    d("./"), f("./main.tf", b'resource "null_resource" "a" {}\n'),
    d("./modules/"), d("./modules/net/"),
    f("./modules/net/main.tf", b'variable "x" {}\n'),
    f("./run.sh", b"#!/bin/sh\n", 0o755),
    link("./modules/net/root.tf", "../../main.tf"),
])


def stored(daemon, ws, cv):
    """Stored blobs of configuration version cv."""
    return daemon.blob_keys("config/%s/%s" % (ws, cv))


@pytest.fixture
def ws(admin, org):
    return make_ws(admin, org)


# ---- create ------------------------------------------------------------------

def test_create_attribute_combinations(admin, ws):
    n = 0
    for aq in (None, True, False):
        for spec in (None, True, False):
            for prov in (None, True, False):
                attrs = {k: v for k, v in (("auto-queue-runs", aq),
                                           ("speculative", spec),
                                           ("provisional", prov))
                         if v is not None}
                r = create(admin, ws, **attrs)
                assert r.status == 201, (attrs, r)
                n += 1
                dd = r.json["data"]
                assert dd["type"] == TYPE and dd["id"].startswith("cv-")
                a = dd["attributes"]
                assert a["auto-queue-runs"] is (aq if aq is not None
                                                else True)
                assert a["speculative"] is bool(spec)
                assert a["provisional"] is bool(prov)
                assert a["status"] == "pending" and a["source"] == "tfe-api"
                assert a["error"] is None and a["error-message"] is None
                assert a["status-timestamps"] == {}
                assert a["changed-files"] == []
                url = a["upload-url"]
                assert url.startswith("https://127.0.0.1:")
                path = urllib.parse.urlparse(url).path
                assert path == "%s/configuration-versions/%s/upload" % (
                    API, dd["id"])
                assert "sig=" in url and "expires=" in url
                assert dd["relationships"]["ingress-attributes"]["data"] \
                    is None
                assert dd["links"]["self"] == \
                    "%s/configuration-versions/%s" % (API, dd["id"])
                assert dd["links"]["download"] == dd["links"]["self"] + \
                    "/download"
                # the upload URL is only handed out once; the rest matches
                again = read(admin, dd["id"])
                assert again["attributes"].pop("upload-url") is None
                a.pop("upload-url")
                assert again == dd
    assert len(listing(admin, ws)) == n


def test_create_bad_input(daemon, admin, anon, ws, org):
    path = "%s/workspaces/%s/configuration-versions" % (API, ws)
    new_cv(admin, ws)
    before = listing(admin, ws)
    cases = [
        (admin.post(path, cv_body(**{"auto-queue-runs": "yes"})), 422),
        (admin.post(path, cv_body(speculative=1)), 422),
        (admin.post(path, cv_body(provisional=None)), 422),
        (admin.post(path, {"data": {"type": TYPE, "attributes": []}}), 422),
        (admin.post(path, {"data": []}), 422),
        (admin.post(path, {"data": {"type": "workspaces",
                                    "attributes": {}}}), 409),
        (admin.request("POST", path, raw=b'{"data": {', ctype=
                       "application/vnd.api+json"), 400),
        (admin.request("POST", path, raw=b"", ctype=
                       "application/vnd.api+json"), 400),
        (admin.post("%s/workspaces/ws-nope00000000000/configuration-versions"
                    % API, cv_body()), 404),
        (anon.post(path, cv_body()), 401),
        (admin.with_token("not-a-token").post(path, cv_body()), 401),
    ]
    for i, (r, status) in enumerate(cases):
        assert_error(r, status)
        assert listing(admin, ws) == before, i


def test_other_organization_is_invisible(daemon, admin, ws):
    cv, url = new_cv(admin, ws, **{"auto-queue-runs": False})
    assert admin.put(url, raw=GOOD).status == 200
    before = listing(admin, ws)
    name = unique("u")
    r = admin.post(API + "/admin/users", {"data": {"type": "users",
        "attributes": {"username": name, "email": name + "@example.com"}}})
    assert r.status == 201, r
    uid = r.json["data"]["id"]
    r = admin.post("%s/admin/users/%s/authentication-tokens" % (API, uid),
                   {})
    other = admin.with_token(r.json["data"]["attributes"]["token"])
    # an organization the user owns, with its own workspace
    org2 = unique("org")
    assert other.post(API + "/organizations", {"data": {
        "type": "organizations",
        "attributes": {"name": org2, "email": "o@example.com"}}}).status == 201
    try:
        assert_error(create(other, ws), 404)
        for p in ("/workspaces/%s/configuration-versions" % ws,
                  "/configuration-versions/" + cv,
                  "/configuration-versions/%s/download" % cv):
            assert_error(other.get(API + p), 404)
        assert_error(other.post("%s/configuration-versions/%s/actions/archive"
                                % (API, cv)), 404)
        # ...while its own workspace works
        w2 = make_ws(other, org2)
        assert create(other, w2).status == 201
        assert listing(admin, ws) == before
        assert admin.get("%s/configuration-versions/%s/download"
                         % (API, cv)).body == GOOD
    finally:
        admin.delete(API + "/organizations/" + org2)
        admin.delete(API + "/admin/users/" + uid)


# ---- upload, read, list, download -------------------------------------------

def test_upload_round_trip(daemon, admin, anon, ws):
    cv, url = new_cv(admin, ws)
    # the CLI's flow: foreign PUT without a token, then poll the version
    r = anon.put(url, raw=GOOD)
    assert r.status == 200, r
    a = read(admin, cv)["attributes"]
    assert a["status"] == "uploaded"
    assert a["upload-url"] is None and a["error"] is None
    assert a["status-timestamps"]["uploaded-at"].endswith("Z")
    r = admin.get("%s/configuration-versions/%s/download" % (API, cv))
    assert r.status == 200 and r.body == GOOD
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert len(stored(daemon, ws, cv)) == 1
    # the download needs a token
    assert_error(anon.get("%s/configuration-versions/%s/download"
                          % (API, cv)), 401)
    # include is accepted (nothing to include); unknown names are 400
    for inc in ("ingress_attributes", "run", "ingress_attributes,run"):
        r = admin.get("%s/configuration-versions/%s?include=%s"
                      % (API, cv, inc))
        assert r.status == 200, r
    assert_error(admin.get("%s/configuration-versions/%s?include=bogus"
                           % (API, cv)), 400)
    assert_error(admin.get("%s/workspaces/%s/configuration-versions"
                           "?include=bogus" % (API, ws)), 400)


def test_upload_with_bearer_and_plain_tar(admin, ws):
    # older go-tfe sends its token along: the signature decides
    cv, url = new_cv(admin, ws)
    plain = tarball([f("main.tf", b"# plain tar\n")], gz=False)
    assert admin.put(url, raw=plain).status == 200
    assert read(admin, cv)["attributes"]["status"] == "uploaded"
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, cv)).body == plain


def test_second_upload(daemon, admin, anon, ws):
    # TFE's upload URL takes another upload while no run used the version
    # (go-tfe's TestConfigurationVersionsUploadTarGzip uploads twice)
    cv, url = new_cv(admin, ws, **{"auto-queue-runs": False})
    assert anon.put(url, raw=GOOD).status == 200
    other = tarball([f("main.tf", b"# other\n")])
    assert anon.put(url, raw=other).status == 200
    assert read(admin, cv)["attributes"]["status"] == "uploaded"
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, cv)).body == other
    assert len(stored(daemon, ws, cv)) == 1  # the first bytes are gone
    # a bad archive then changes nothing: still uploaded, same bytes
    r = anon.put(url, raw=tarball([f("../escape.tf")]))
    assert_error(r, 422)
    assert read(admin, cv)["attributes"]["status"] == "uploaded"
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, cv)).body == other
    assert len(stored(daemon, ws, cv)) == 1
    # once a run uses the version its configuration is fixed
    r = admin.post(API + "/runs", {"data": {"type": "runs", "relationships": {
        "workspace": {"data": {"type": "workspaces", "id": ws}},
        "configuration-version": {"data": {"type": TYPE, "id": cv}}}}})
    assert r.status == 201, r
    r = anon.put(url, raw=GOOD)
    assert_error(r, 409)
    assert "used by a run" in r.json["errors"][0]["detail"], r
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, cv)).body == other
    assert len(stored(daemon, ws, cv)) == 1
    # the first upload of an auto-queue version queued a run: 409 too
    cv3, url3 = new_cv(admin, ws)
    assert anon.put(url3, raw=GOOD).status == 200
    assert_error(anon.put(url3, raw=other), 409)
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, cv3)).body == GOOD
    # an errored version takes no second upload either
    cv2, url2 = new_cv(admin, ws)
    assert_error(anon.put(url2, raw=b"not a tarball"), 422)
    assert_error(anon.put(url2, raw=GOOD), 409)
    assert read(admin, cv2)["attributes"]["status"] == "errored"


def test_bad_signatures(daemon, admin, anon, ws):
    cv, url = new_cv(admin, ws)
    other, other_url = new_cv(admin, ws)
    u = urllib.parse.urlparse(url)
    q = urllib.parse.parse_qs(u.query)
    bad = [
        url.replace("sig=", "sig=0"),
        url[:-10] + "nonexisting",                  # go-tfe's own test
        "%s://%s%s" % (u.scheme, u.netloc, u.path),  # no signature
        "%s://%s%s?expires=%d&sig=%s" % (u.scheme, u.netloc, u.path,
                                         int(q["expires"][0]) + 100,
                                         q["sig"][0]),
        # a valid signature of another version's path
        other_url.replace(other, cv),
    ]
    for b in bad:
        assert_error(anon.put(b, raw=GOOD), 404)
        assert_error(admin.put(b, raw=GOOD), 404)
    assert read(admin, cv)["attributes"]["status"] == "pending"
    assert stored(daemon, ws, cv) == []
    # unknown version with a valid-looking path
    assert_error(anon.put(url.replace(cv, "cv-nope000000000000"), raw=GOOD),
                 404)


def test_list_pagination(admin, ws):
    ids = [new_cv(admin, ws)[0] for _ in range(3)]
    r = admin.get("%s/workspaces/%s/configuration-versions?page[size]=2"
                  % (API, ws))
    assert r.status == 200, r
    assert [x["id"] for x in r.json["data"]] == ids[::-1][:2]
    p = r.json["meta"]["pagination"]
    assert p["total-count"] == 3 and p["total-pages"] == 2
    assert p["current-page"] == 1 and p["next-page"] == 2
    r = admin.get("%s/workspaces/%s/configuration-versions?page[size]=2"
                  "&page[number]=2" % (API, ws))
    assert [x["id"] for x in r.json["data"]] == ids[:1]
    r = admin.get("%s/workspaces/%s/configuration-versions?page[number]=999"
                  % (API, ws))
    assert r.status == 200 and r.json["data"] == []
    assert r.json["meta"]["pagination"]["total-count"] == 3
    for x in admin.get("%s/workspaces/%s/configuration-versions"
                       % (API, ws)).json["data"]:
        assert x["attributes"]["upload-url"] is None
    assert_error(admin.get("%s/workspaces/%s/configuration-versions"
                           "?page[number]=0" % (API, ws)), 400)
    assert_error(admin.get("%s/workspaces/ws-nope00000000000/"
                           "configuration-versions" % API), 404)
    assert_error(admin.get("%s/configuration-versions/cv-nope000000000000"
                           % API), 404)


def test_download_only_when_uploaded(admin, ws):
    cv, _ = new_cv(admin, ws)
    assert_error(admin.get("%s/configuration-versions/%s/download"
                           % (API, cv)), 404)
    assert_error(admin.get("%s/configuration-versions/cv-nope000000000000/"
                           "download" % API), 404)


# ---- attack archives ---------------------------------------------------------

ATTACKS = {
    "traversal": ([f("../x", b"pwned")], '"..'),
    "nested traversal": ([f("a/../../x", b"pwned")], '"..'),
    "absolute": ([f("/etc/x", b"pwned")], "absolute path"),
    "symlink to /etc": ([link("etc", "/etc")], "absolute path /etc"),
    "symlink escaping": ([link("out", "../../outside")],
                         "points outside the archive"),
    "file under a symlink": ([d("sub/"), link("l", "sub"),
                              f("l/x", b"pwned")],
                             "passes through a symlink"),
    "symlink chain": ([link("a/b/s", "../.."), link("a/b/t", "s/../..")],
                      "resolves through another symlink"),
    "hard link": ([f("main.tf"), link("h", "main.tf", tarfile.LNKTYPE)],
                  "hard link"),
    "hard link outside": ([link("h", "/etc/passwd", tarfile.LNKTYPE)],
                          "hard link"),
    "device": ([special("null", tarfile.CHRTYPE)], "device node"),
    "block device": ([special("sda", tarfile.BLKTYPE)], "device node"),
    "fifo": ([special("p", tarfile.FIFOTYPE)], "fifo"),
    "duplicate": ([f("main.tf"), f("./main.tf")], "appears twice"),
    "long name": ([f("a/" * 2100 + "x")], "longer than"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_archive(daemon, admin, anon, ws, name):
    entries, want = ATTACKS[name]
    cv, url = new_cv(admin, ws)
    before = [x for x in listing(admin, ws) if x[0] != cv]
    r = anon.put(url, raw=tarball(entries))
    assert_error(r, 422)
    assert want in r.json["errors"][0]["detail"], r
    a = read(admin, cv)["attributes"]
    assert a["status"] == "errored"
    assert want in a["error-message"] and a["error"]
    assert "errored-at" in a["status-timestamps"]
    assert_error(admin.get("%s/configuration-versions/%s/download"
                           % (API, cv)), 404)
    assert stored(daemon, ws, cv) == []
    assert [x for x in listing(admin, ws) if x[0] != cv] == before
    assert not os.path.exists(os.path.join(daemon.data_dir, "x"))


def test_not_an_archive(daemon, admin, anon, ws):
    for body, want in ((b"", "empty"), (b"hello" * 100, "not a valid tar"),
                       (GOOD[:len(GOOD) // 2], "not a valid tar")):
        cv, url = new_cv(admin, ws)
        r = anon.put(url, raw=body)
        assert_error(r, 422)
        assert want in r.json["errors"][0]["detail"], (body[:10], r)
        assert read(admin, cv)["attributes"]["status"] == "errored"
        assert stored(daemon, ws, cv) == []


def test_too_many_entries(daemon, admin, anon, ws):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as t:
        for i in range(100001):
            t.addfile(tarfile.TarInfo("f%d" % i), io.BytesIO(b""))
    cv, url = new_cv(admin, ws)
    r = anon.put(url, raw=buf.getvalue())
    assert_error(r, 422)
    assert "more than 100000 entries" in r.json["errors"][0]["detail"]
    assert read(admin, cv)["attributes"]["status"] == "errored"
    assert stored(daemon, ws, cv) == []


# ---- archive action ----------------------------------------------------------

def test_archive(daemon, admin, anon, ws):
    act = "%s/configuration-versions/%s/actions/archive"
    old, url = new_cv(admin, ws)
    # pending: not yet
    r = admin.post(act % (API, old))
    assert_error(r, 409)
    assert r.json["errors"][0]["title"] == "transition not allowed"
    assert anon.put(url, raw=GOOD).status == 200
    # the workspace's current version cannot be archived
    r = admin.post(act % (API, old))
    assert_error(r, 409)
    assert "configuration could not be archived because it is current" in \
        r.json["errors"][0]["detail"]
    # provisional and speculative versions do not become current
    for attrs in ({"provisional": True}, {"speculative": True}):
        c, u = new_cv(admin, ws, **attrs)
        assert anon.put(u, raw=GOOD).status == 200
        assert_error(admin.post(act % (API, old)), 409)
    new, url2 = new_cv(admin, ws)
    assert anon.put(url2, raw=GOOD).status == 200
    assert_error(anon.post(act % (API, old)), 401)
    r = admin.post(act % (API, old))
    assert r.status == 202, r
    a = read(admin, old)["attributes"]
    assert a["status"] == "archived"
    assert "archived-at" in a["status-timestamps"]
    assert "uploaded-at" in a["status-timestamps"]
    assert_error(admin.get("%s/configuration-versions/%s/download"
                           % (API, old)), 404)
    assert stored(daemon, ws, old) == []
    # again: not allowed; the new one is current; errored ones never
    assert_error(admin.post(act % (API, old)), 409)
    assert_error(admin.post(act % (API, new)), 409)
    bad, url3 = new_cv(admin, ws)
    assert_error(anon.put(url3, raw=b"junk"), 422)
    assert_error(admin.post(act % (API, bad)), 409)
    assert_error(admin.post(act % (API, "cv-nope000000000000")), 404)
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, new)).body == GOOD


# ---- limits ------------------------------------------------------------------

class Zeros(io.RawIOBase):
    """n zero bytes, read as a stream (never held in memory whole)."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def zero_bomb(size):
    """A gzip'ed tar holding one file of size zero bytes, made by
    streaming: 300 MiB of zeros come to about 300 KB."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9,
                       mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w|",
                          format=tarfile.PAX_FORMAT) as t:
            main, text = f("main.tf", b'variable "x" {}\n')
            main.size = len(text)
            t.addfile(main, io.BytesIO(text))
            ti = tarfile.TarInfo("zeros.bin")
            ti.size = size
            t.addfile(ti, io.BufferedReader(Zeros(size), 1 << 20))
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb():
    return zero_bomb(300 * 1024 * 1024)


def test_decompression_bomb(daemon, admin, anon, ws, bomb):
    """300 MiB of zeros (and the same gzip'ed again) are refused after a
    few MiB of unpacking, in well under the default limit's time; the
    version is errored with the reason, nothing is stored, and the next
    upload is fine."""
    assert len(bomb) < 1024 * 1024
    for body in (bomb, gzip.compress(bomb, mtime=0)):
        cv, url = new_cv(admin, ws)
        t0 = time.monotonic()
        r = anon.put(url, raw=body)
        took = time.monotonic() - t0
        assert_error(r, 422)
        detail = r.json["errors"][0]["detail"]
        assert "unpacks to more than 500 times its compressed size" in \
            detail, r
        assert ".terraformignore" in detail
        # stopped just past the 8 MiB floor, not at 300 MiB
        unpacked = int(detail.split("(")[1].split(" bytes")[0])
        assert 8 * 1024 * 1024 < unpacked <= 9 * 1024 * 1024, detail
        assert took < 10, took
        a = read(admin, cv)["attributes"]
        assert a["status"] == "errored"
        assert a["error-message"] == detail
        assert stored(daemon, ws, cv) == []
        assert_error(admin.get("%s/configuration-versions/%s/download"
                               % (API, cv)), 404)
    # a version with a good configuration keeps it when a bomb follows
    cv, url = new_cv(admin, ws)
    assert anon.put(url, raw=GOOD).status == 200
    assert_error(anon.put(url, raw=bomb), 422)
    assert read(admin, cv)["attributes"]["status"] == "uploaded"
    assert admin.get("%s/configuration-versions/%s/download"
                     % (API, cv)).body == GOOD
    assert len(stored(daemon, ws, cv)) == 1


def test_limits_and_expiry():
    """A dedicated daemon with a 4 KiB upload limit, 40 KiB unpacked and
    2 s URLs."""
    dm = Daemon(backend=os.environ.get("TERRACE_TEST_BACKEND", "sqlite"),
                extra_args=["--max-state", "4096",
                            "--max-config-size", "40960",
                            "--upload-url-ttl", "2"])
    dm.start()
    try:
        c = dm.client()
        anon = dm.client(token=None)
        org = unique("org")
        assert c.post(API + "/organizations", {"data": {
            "type": "organizations",
            "attributes": {"name": org, "email": "o@example.com"}}}) \
            .status == 201
        w = make_ws(c, org)
        cv, url = new_cv(c, w)
        big = os.urandom(5000)
        assert_error(anon.put(url, raw=big), 413)
        assert read(c, cv)["attributes"]["status"] == "pending"
        assert stored(dm, w, cv) == []
        # a tar bomb: 1 MB of zeros, about 1 KB compressed
        bomb = tarball([f("zeros", b"\0" * (1024 * 1024))])
        assert len(bomb) < 4096
        r = anon.put(url, raw=bomb)
        assert_error(r, 422)
        assert "unpacks to more than 40960 bytes" in \
            r.json["errors"][0]["detail"]
        assert read(c, cv)["attributes"]["status"] == "errored"
        # within the limits all is well
        cv2, url2 = new_cv(c, w)
        assert anon.put(url2, raw=GOOD).status == 200
        # an expired URL is a missing one
        cv3, url3 = new_cv(c, w)
        time.sleep(3.1)
        assert_error(anon.put(url3, raw=GOOD), 404)
        assert read(c, cv3)["attributes"]["status"] == "pending"
    finally:
        dm.close()


def test_workspace_delete_takes_versions(admin, anon, org):
    w = make_ws(admin, org)
    cv, url = new_cv(admin, w)
    assert anon.put(url, raw=GOOD).status == 200
    pending, _ = new_cv(admin, w)
    r = admin.delete("%s/workspaces/%s" % (API, w))
    assert r.status in (200, 204), r
    for c in (cv, pending):
        assert_error(admin.get("%s/configuration-versions/%s" % (API, c)),
                     404)
    assert_error(anon.put(url, raw=GOOD), 404)
