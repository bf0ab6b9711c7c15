"""Process behaviour: signals, restart keeps data, no secrets in logs,
configuration precedence."""
import os
import signal
import subprocess

from conftest import unique
from terrace import BUILD, Daemon


def test_sighup_harmless_sigterm_clean():
    d = Daemon().start()
    try:
        d.proc.send_signal(signal.SIGHUP)
        c = d.client()
        assert c.get("/api/v2/account/details").status in (200, 404)
        assert c.get("/_health_check").status == 200
        assert d.stop(signal.SIGTERM) == 0
        assert "stopped cleanly" in d.log_text()
    finally:
        d.close()


def test_restart_keeps_data_and_token():
    d = Daemon().start()
    try:
        c = d.client()
        name = unique("keep")
        r = c.post("/api/v2/organizations", {"data": {
            "type": "organizations",
            "attributes": {"name": name, "email": "k@example.com"}}})
        assert r.status == 201, r
        token = d.admin_token
        assert d.stop() == 0
        d.start()
        assert d.admin_token == token  # not regenerated
        assert c.get("/api/v2/organizations/" + name).status == 200
    finally:
        d.close()


def test_admin_token_file_mode_and_secrets_not_logged():
    d = Daemon().start()
    try:
        st = os.stat(os.path.join(d.data_dir, "admin-token"))
        assert st.st_mode & 0o777 == 0o600
        c = d.client()
        c.get("/api/v2/account/details")
        c.get("/api/v2/organizations?x=" + d.admin_token)
        bad = d.client(token="not-a-real-token.atlasv1.x")
        assert bad.get("/api/v2/organizations").status == 401
        d.stop()
        log = open(os.path.join(d.tmp, "terraced.log")).read()
        assert d.admin_token not in log
        assert "not-a-real-token" not in log
        assert d.admin_token.split(".")[0] not in log
    finally:
        d.close()


def test_flags_override_env_and_file(tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text("# comment\nlog-level = \"debug\"\nthreads = 3\n")
    env = dict(os.environ, TERRACE_THREADS="not-a-number")
    r = subprocess.run([os.path.join(BUILD, "terraced"), "--config",
                        str(conf), "--role", "nope"], env=env,
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "threads" in r.stderr  # env beats file, and is validated
    env["TERRACE_THREADS"] = "4"
    r = subprocess.run([os.path.join(BUILD, "terraced"), "--config",
                        str(conf), "--role", "nope"], env=env,
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "role" in r.stderr
    r = subprocess.run([os.path.join(BUILD, "terraced"), "--bogus", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "unknown flag --bogus" in r.stderr


def test_help_lists_every_setting():
    r = subprocess.run([os.path.join(BUILD, "terraced"), "--help"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    for flag in ("--role", "--data-dir", "--listen", "--external-url",
                 "--database-url", "--config", "--header-timeout",
                 "--idle-timeout", "--conn-limit", "--conn-per-ip"):
        assert flag in r.stderr


def test_kek_must_match_the_data():
    # every stored object is sealed under DATA/kek: a node without it, or
    # with another key, refuses to start and creates nothing
    d = Daemon().start()
    try:
        c = d.client()
        name = unique("kek")
        assert c.post("/api/v2/organizations", {"data": {
            "type": "organizations",
            "attributes": {"name": name, "email": "k@example.com"}}}
        ).status == 201
        assert d.stop() == 0
        kek = os.path.join(d.data_dir, "kek")
        with open(kek, "rb") as f:
            original = f.read()
        os.rename(kek, kek + ".saved")
        try:
            d.start()
            raise AssertionError("started without its key")
        except RuntimeError as e:
            assert "is missing" in str(e) and "restore that key file" in str(e)
        assert not os.path.exists(kek)
        fd = os.open(kek, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"ab" * 32)
        os.close(fd)
        try:
            d.start()
            raise AssertionError("started with another key")
        except RuntimeError as e:
            assert "restore the original key file" in str(e)
        os.replace(kek + ".saved", kek)
        with open(kek, "rb") as f:
            assert f.read() == original
        d.start()
        assert c.get("/api/v2/organizations/" + name).status == 200
    finally:
        d.close()


def test_idle_refuses_bad_arguments(tmp_path):
    """terraced-idle, which terraced execs, refuses what it cannot use
    (a handed-over listening socket that is not a descriptor number
    above stderr, a missing required setting) with its usage and exit
    status 2, before it reads or connects anything."""
    idle = os.path.join(BUILD, "terraced-idle")
    base = [idle, "--role", "secondary", "--join-url",
            "https://127.0.0.1:9", "--data-dir", str(tmp_path),
            "--listen", "127.0.0.1:0"]
    for fd in ("x", "", "2", "-1", "3x", "70000"):
        p = subprocess.run(base + ["--listen-fd", fd, "--", "/bin/true"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (fd, p.returncode, p.stderr)
        assert "usage: terraced-idle" in p.stderr and \
            "--listen-fd FD" in p.stderr, (fd, p.stderr)
    p = subprocess.run(base[:3] + ["--", "/bin/true"],  # no --join-url
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "usage: terraced-idle" in p.stderr, p
    assert os.listdir(str(tmp_path)) == []
