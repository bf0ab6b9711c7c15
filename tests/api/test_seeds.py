"""test_seeds.py - tokens an operator (or a deployment module) chooses
before the first start: --admin-token-file gives the first site admin
that token, --join-token-file the cluster that join token.  Loose file
modes and malformed tokens stop the start, and the token never shows in
the log."""
import os
import secrets
import subprocess

import pytest

from terrace import BUILD, Daemon

BACKEND = os.environ.get("TERRACE_TEST_BACKEND", "sqlite")


def token_file(tmp_path, name, text, mode=0o600):
    p = tmp_path / name
    p.write_text(text + "\n")
    p.chmod(mode)
    return str(p)


def test_admin_token_seeded(tmp_path):
    tok = "seed" + secrets.token_hex(20) + ".atlasv1." + secrets.token_hex(8)
    extra = ["--admin-token-file", token_file(tmp_path, "admin", tok)]
    jt = "trjoin" + secrets.token_hex(32)
    if BACKEND == "pg":
        extra += ["--join-token-file", token_file(tmp_path, "join", jt)]
    d = Daemon(BACKEND, extra_args=extra).start()
    try:
        assert d.admin_token == tok  # DATA/admin-token holds the seed too
        r = d.client(tok).get("/api/v2/account/details")
        assert r.status == 200, r
        assert r.json["data"]["attributes"]["username"] == "admin"
        assert d.client("seed" + "0" * 40).get(
            "/api/v2/account/details").status == 401
        if BACKEND == "pg":
            r = d.client(tok).get("/api/v2/admin/join-token")
            assert r.status == 200, r
            assert r.json["data"]["attributes"]["token"] == jt
        assert tok not in d.log_text() and jt not in d.log_text()
    finally:
        d.close()


@pytest.mark.parametrize("text,mode,why", [
    ("x" * 40, 0o644, "readable by group or others"),
    ("q7z9k", 0o600, "32 to 200"),
    ("has space " + "x" * 40, 0o600, "32 to 200"),
], ids=["loose", "too-short", "bad-character"])
def test_bad_seed_refused(tmp_path, text, mode, why):
    f = token_file(tmp_path, "admin", text, mode)
    p = subprocess.run(
        [os.path.join(BUILD, "terraced"), "--role", "demo", "--data-dir",
         str(tmp_path / "d"), "--listen", "127.0.0.1:0", "--tool-mirror",
         "off", "--admin-token-file", f],
        capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert why in out and "admin" in out, out
    assert text not in out
