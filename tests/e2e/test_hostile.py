"""Hostile runs: the code in a remote run attacks the node running it.

A run's configuration is the tenant's, and whatever it executes (here a
`local-exec` provisioner of a `terraform_data` resource, which needs no
provider download) may be an attacker's.  Each test uploads such a
configuration through the real API, lets the real `tofu` apply it on the
daemon's executor, and then checks the real effect, not only paths: the
privileges the run's processes had, what they could read (the node's key,
admin token, TLS keys, config, another run's token), what changed on the
host, which processes and files were left behind, what reached the
sandbox's own process instead of the sandboxed child.

A probe script prints what it finds as lines "PROBE key=value" (or
"PROBE key value..."); tofu shows them in the apply log as
"terraform_data.probe (local-exec): PROBE ...".  The test reads both
phases' logs through the API and compares them with the host, which it
can inspect because it runs as root.

Covered: privileges (uid, capabilities, no_new_privs, seccomp, the
server's processes); secrets (data dir files, another run's directory
and token); remounts, nested namespaces and writes to system and data
directories; LD_PRELOAD as a variable, and a variable reaching the
sandbox process itself; the provider cache shared across organizations;
memory, process and disk limits (own daemon, SQLite only); a node
without a sandbox (own daemons, SQLite only).

SPDX-License-Identifier: MPL-2.0
"""
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from conftest import (BACKENDS, SANITIZER, SERVER_ERROR, TOFU_BIN, Api,
                      unique)
from conftest import phase_log as conftest_phase_log
from terrace import Daemon

RUN_TIMEOUT = 120  # seconds a probe run may take from creation to its end
LIMIT_TIMEOUT = 75  # ... and a run that hits a limit
RUN_UID = 1100000000  # --run-uid of the limited node
FINAL = ("applied", "errored", "canceled", "force_canceled", "discarded",
         "planned_and_finished")

MAIN_TF = '''
resource "terraform_data" "probe" {
  # new each run, so the provisioner runs again in the same workspace
  triggers_replace = "%s"

  provisioner "local-exec" {
    interpreter = ["/bin/sh"]
    command     = "probe.sh"
  }
}
'''

# Shell helpers every probe starts with: p prints a finding, attempt
# runs a command quietly and prints whether it succeeded.
PRELUDE = r'''
p() { printf 'PROBE %s\n' "$*"; }
attempt() {
  name=$1; shift
  if "$@" >/dev/null 2>&1; then p "$name=ok"; else p "$name=fail"; fi
}
'''

# ---- the daemon -----------------------------------------------------------

def new_daemon(backend, args=()):
    """A Daemon (not started) whose data dir, and anything else of the
    node's (d.top), lies outside /tmp, where a node keeps it
    (./terrace-data, /var/lib/terrace): the sandbox puts a tmpfs on /tmp,
    which would hide a data dir there by accident."""
    top = tempfile.mkdtemp(prefix="terrace-hostile-", dir="/var/tmp")
    d = Daemon(backend=backend, data_dir=os.path.join(top, "data"),
               extra_args=["--tofu-bin", TOFU_BIN] + list(args))
    d.top = top
    return d


def close_daemon(d):
    d.stop()
    log = full_log(d)
    d.close()
    # a run's last process may still be going away with its files
    deadline = time.time() + 15
    while os.path.exists(d.top) and time.time() < deadline:
        shutil.rmtree(d.top, ignore_errors=True)
    bad = [ln for ln in log.splitlines() if SANITIZER.search(ln)]
    assert not bad, "sanitizer reports in the daemon log:\n" + log[-8000:]


@pytest.fixture(scope="module", params=BACKENDS)
def daemon(request):
    """conftest's daemon, with its data dir outside /tmp."""
    # two executors: a held run and the one spying on it
    d = new_daemon(request.param, ["--executors", "2"])
    try:
        d.start()
        yield d
    finally:
        close_daemon(d)


@pytest.fixture(scope="module")
def api(daemon):
    return Api(daemon)


@pytest.fixture
def org(api):
    name = api.create_org()
    yield name
    api.c.delete("/api/v2/organizations/" + name)


def full_log(d):
    try:
        with open(os.path.join(d.tmp, "terraced.log"), "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# ---- driving runs --------------------------------------------------------


def tarball(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            body = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def workspace(api, org, **attrs):
    a = {"execution-mode": "remote", "auto-apply": True}
    a.update(attrs)
    return api.create_workspace(org, unique("hx"), **a)


def start_run(api, ws, script, extra=None):
    """Uploads a configuration running `script` at apply (and the files
    in extra, name: text) and queues a run of it in workspace ws
    (auto-apply); returns the run's data."""
    c = api.c
    cv = api.ok(c.post("/api/v2/workspaces/%s/configuration-versions" %
                       ws["id"],
                       {"data": {"type": "configuration-versions",
                                 "attributes": {"auto-queue-runs": False}}}),
                201).json["data"]
    files = {"main.tf": MAIN_TF % uuid.uuid4().hex,
             "probe.sh": PRELUDE + script}
    files.update(extra or {})
    body = tarball(files)
    api.ok(c.put(cv["attributes"]["upload-url"], raw=body), 200)
    return api.ok(c.post("/api/v2/runs", {"data": {
        "type": "runs", "attributes": {},
        "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": ws["id"]}},
            "configuration-version": {"data": {
                "type": "configuration-versions", "id": cv["id"]}}}}}),
        201).json["data"]


def run_doc(api, run_id):
    return api.ok(api.c.get("/api/v2/runs/" + run_id), 200).json["data"]


def phase_log(api, run_id, phase):
    """The plan's or apply's log so far ("" if the phase has none)."""
    return conftest_phase_log(api.c, run_id, phase)


def logs(api, run_id):
    return phase_log(api, run_id, "plan") + phase_log(api, run_id, "apply")


def wait_final(api, run_id, timeout=RUN_TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = run_doc(api, run_id)
        if run["attributes"]["status"] in FINAL:
            return run
        time.sleep(0.25)
    pytest.fail("run %s still %s after %ds\n--- logs ---\n%s" %
                (run_id, run_doc(api, run_id)["attributes"]["status"],
                 timeout, logs(api, run_id)[-4000:]), pytrace=False)


def wait_log(api, run_id, needle, timeout=RUN_TIMEOUT):
    """Polls the apply log until it contains needle; fails if the run
    ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if needle in phase_log(api, run_id, "apply"):
            return
        st = run_doc(api, run_id)["attributes"]["status"]
        if st in FINAL:
            pytest.fail("run %s ended %s before printing %r\n%s" %
                        (run_id, st, needle, logs(api, run_id)[-4000:]),
                        pytrace=False)
        time.sleep(0.25)
    pytest.fail("run %s never printed %r" % (run_id, needle), pytrace=False)


def cancel(api, run_id):
    st = run_doc(api, run_id)["attributes"]["status"]
    if st not in FINAL:
        api.c.post("/api/v2/runs/%s/actions/cancel" % run_id, {})
        wait_final(api, run_id, timeout=60)


def run_probe(api, ws, script, timeout=RUN_TIMEOUT, extra=None):
    """Runs script to the end: (final run data, both logs, findings)."""
    run = start_run(api, ws, script, extra)
    run = wait_final(api, run["id"], timeout)
    text = logs(api, run["id"])
    return run, text, findings(text)


PROBE_LINE = re.compile(r"\(local-exec\): PROBE (.*?)[ \t\r]*$", re.M)


def findings(text):
    """The probe's lines, in order."""
    return PROBE_LINE.findall(text)


def value(found, key, text=""):
    """The value of the probe's last "key=value" line; fails when the
    probe never printed it (it did not run, or not that far)."""
    vals = [f[len(key) + 1:] for f in found if f.startswith(key + "=")]
    assert vals, "the probe printed no %s; logs:\n%s" % (key, text[-4000:])
    return vals[-1]


def listing(found, key):
    """The values of the probe's "key item" lines."""
    return [f[len(key) + 1:] for f in found if f.startswith(key + " ")]


def health(d):
    c = d.client()
    r = c.get("/_health_check?full=1")
    assert r.status == 200, r
    return r.json


def secrets_of(data_dir):
    """(name, bytes) of the node's secret files that exist."""
    out = []
    for rel in ("kek", "admin-token", "tofu.tfrc", "tls/server-key.pem",
                "tls/ca-key.pem"):
        try:
            with open(os.path.join(data_dir, rel), "rb") as f:
                out.append((rel, f.read()))
        except OSError:
            pass
    return out


def leaked(text, secret):
    """True if secret (bytes) shows in text raw, in base64 or in hex."""
    forms = [base64.b64encode(secret).decode(), secret.hex()]
    raw = secret.decode(errors="ignore").strip()
    if len(raw) >= 16:
        forms.append(raw)
    forms += [ln.strip() for ln in raw.splitlines() if len(ln.strip()) >= 24
              and "-----" not in ln]
    return any(f in text for f in forms)


# ---- 1. privileges -------------------------------------------------------

PRIVS = r'''
p "uid=$(id -u)"
for k in CapEff CapPrm CapAmb NoNewPrivs Seccomp; do
  p "$k=$(sed -n "s/^$k:[[:space:]]*//p" /proc/self/status)"
done
p "pid1=$(tr '\0' ' ' </proc/1/cmdline 2>/dev/null)"
for d in /proc/[0-9]*; do
  c=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) && p "proc ${d#/proc/} $c"
done
if command -v ps >/dev/null 2>&1; then
  ps -eo pid=,args= 2>/dev/null | sed 's/^/PROBE ps /'
fi
attempt shadow head -c 1 /etc/shadow
attempt chown chown 0:0 "$HOME"
p "done=1"
'''


def test_run_has_no_privileges(api, org, daemon):
    run, text, found = run_probe(api, workspace(api, org), PRIVS)
    assert value(found, "done", text) == "1"
    uid = value(found, "uid")
    assert uid != "0" and uid.isdigit(), "the run ran as uid %r" % uid
    for k in ("CapEff", "CapPrm", "CapAmb"):
        assert value(found, k) == "0" * 16, "%s %s" % (k, value(found, k))
    assert value(found, "NoNewPrivs") == "1"
    assert value(found, "Seccomp") == "2", "no seccomp filter"
    # privileges have effect: root-only files and chown
    assert value(found, "shadow") == "fail"
    assert value(found, "chown") == "fail"
    # the server's processes are not in the run's /proc
    procs = listing(found, "proc") + listing(found, "ps")
    assert procs, "the probe saw no process at all (not even itself)"
    for line in procs + [value(found, "pid1")]:
        args = line.split()
        assert not any(os.path.basename(a) == "terraced" for a in args) and \
            "--external-url" not in args, "server visible: %s" % line
    # ...and the node says so
    h = health(daemon)
    sb = h.get("sandbox")
    assert isinstance(sb, dict) and sb.get("isolated") is True and \
        sb.get("user") == "unprivileged", \
        "/_health_check?full=1 does not report the sandbox: %r" % h


# ---- 2. secrets and other runs -------------------------------------------

# Run A: leaves a marker file in its directory, then holds.
HOLD = r'''
p "pwd=$(pwd)"
p "rc=$TF_CLI_CONFIG_FILE"
echo "%(mark)s" > ./amark-%(mark)s
ln -s "$(command -v sleep)" ./hold-%(mark)s
p "ready=%(mark)s"
exec ./hold-%(mark)s 90
'''

SNOOP = r'''
DATA='%(data)s'
p "pwd=$(pwd)"
p "home=$HOME"
p "tmpdir=$TMPDIR"
p "cache=$TF_PLUGIN_CACHE_DIR"
p "rc=$TF_CLI_CONFIG_FILE"
p "ca=$SSL_CERT_FILE"
for f in kek admin-token tofu.tfrc tls/server-key.pem tls/ca-key.pem; do
  p "b64 $f $(base64 -w0 <"$DATA/$f" 2>/dev/null)"
  p "hex $f $(od -An -tx1 <"$DATA/$f" 2>/dev/null | tr -d ' \n')"
  cat "$DATA/$f" 2>/dev/null
done
attempt db-read head -c 16 "$DATA/terrace.db"
%(pg)s
ls -1a "$DATA" 2>/dev/null | sed 's/^/PROBE ls-data /'
ls -1a "$DATA/work" 2>/dev/null | sed 's/^/PROBE ls-work /'
# run A, where the host has it and where A saw itself
for d in '%(a_root)s' '%(a_pwd)s' "$(dirname '%(a_rc)s')"; do
  ls -la "$d" 2>/dev/null | sed 's/^/PROBE ls-a /'
done
for f in '%(a_root)s/terraform.rc' '%(a_rc)s' '%(a_pwd)s/amark-%(mark)s' \
    '%(a_root)s/ssh_key' "$(dirname '%(a_rc)s')/ssh_key"; do
  p "a-file $(base64 -w0 <"$f" 2>/dev/null)"
done
for r in "$DATA" "$DATA/work" "$(dirname "$PWD")" "$(dirname "$HOME")" \
    "$TMPDIR" /tmp /var/tmp /run /; do
  timeout 20 find "$r" -maxdepth 7 \( -path /proc -o -path /sys \
    -o -path /dev -o -path /usr \) -prune -o \
    \( -name 'amark-%(mark)s' -o -name terraform.rc -o -name ssh_key \) \
    -print 2>/dev/null
done | sort -u | sed 's/^/PROBE found /'
for d in /proc/[0-9]*; do
  tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q 'hold-%(mark)s' &&
    p "a-proc ${d#/proc/}"
done
p "done=1"
'''

PG_SNOOP = r'''
attempt db-socket test -S '%(dir)s/.s.PGSQL.5432'
attempt db-connect psql -h '%(dir)s' -U terrace -d terrace -Atc 'select 1'
'''


def find_file(root, name):
    for dirpath, _, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    return None


def own_component(base, paths):
    """The first path component below base of each of paths under it."""
    out = set()
    for p in paths:
        if p.startswith(base + "/"):
            out.add(p[len(base) + 1:].split("/")[0])
    return out


def test_run_reads_no_secrets_and_no_other_run(api, org, daemon):
    data = os.path.realpath(daemon.data_dir)
    mark = uuid.uuid4().hex[:12]
    other = api.create_org()
    ws_a = workspace(api, other)
    a_key = with_ssh_key(api, other, ws_a)
    a = start_run(api, ws_a, HOLD % {"mark": mark})
    try:
        wait_log(api, a["id"], "PROBE ready=" + mark)
        a_found = findings(phase_log(api, a["id"], "apply"))
        a_pwd, a_rc = value(a_found, "pwd"), value(a_found, "rc")
        # where run A sits on the host, and the token it holds
        amark = find_file(os.path.join(data, "work"), "amark-" + mark)
        assert amark, "run A's directory is not under %s/work" % data
        a_id = os.path.relpath(amark, os.path.join(data, "work")).split(
            "/")[0]
        a_root = os.path.join(data, "work", a_id)
        tokens = []
        for dirpath, _, files in os.walk(a_root):
            for n in files:
                if n.endswith(".rc") or n.endswith(".tfrc"):
                    with open(os.path.join(dirpath, n)) as f:
                        tokens += re.findall(r'token\s*=\s*"([^"]+)"',
                                             f.read())
        assert tokens, "no run token in run A's directory %s" % a_root
        # run A holds its workspace's SSH key where git can read it
        with open(os.path.join(a_root, "ssh_key"), "rb") as f:
            assert f.read() == a_key, "run A's SSH key is not in its root"
        pg = PG_SNOOP % {"dir": daemon.pg_dir} if daemon.pg_dir else ""
        _, text, found = run_probe(api, workspace(api, org), SNOOP % {
            "data": data, "pg": pg, "mark": mark, "a_root": a_root,
            "a_pwd": a_pwd, "a_rc": a_rc})
    finally:
        cancel(api, a["id"])
        api.c.delete("/api/v2/organizations/" + other)
    check_snoop(text, found, data, a_id, tokens, mark, daemon.pg_dir)
    assert not leaked(text, a_key), "run B read run A's SSH key"


def with_ssh_key(api, org, ws):
    """A new ed25519 key, stored as an SSH key of org and assigned to
    workspace ws; returns the private key's bytes."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "id")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        "", "-f", path], check=True)
        with open(path, "rb") as f:
            key = f.read()
    c = api.c
    r = api.ok(c.post("/api/v2/organizations/%s/ssh-keys" % org, {
        "data": {"type": "ssh-keys",
                 "attributes": {"name": unique("k"),
                                "value": key.decode()}}}), 201)
    api.ok(c.patch("/api/v2/workspaces/%s/relationships/ssh-key" % ws["id"],
                   {"data": {"type": "workspaces",
                             "attributes": {"id": r.json["data"]["id"]}}}),
           200)
    return key


def check_snoop(text, found, data, a_id, tokens, mark, pg_dir):
    """What run B found (text: its logs) shows none of the node's secrets
    and nothing of run A (a_id: its directory under DATA/work, tokens:
    the tokens it held, mark: its marker)."""
    assert value(found, "done", text) == "1"
    # the node's secrets: nowhere in the logs, in any encoding
    for name, secret in secrets_of(data):
        hit = leaked(text, secret)
        assert not hit, "the run read %s" % name
    assert value(found, "db-read") == "fail"
    if pg_dir:
        assert value(found, "db-socket") == "fail"
        assert value(found, "db-connect") == "fail"
    # the data dir shows nothing but what the run was given: its own
    # directories, the CA it trusts
    mine = [value(found, k) for k in ("pwd", "home", "tmpdir", "cache",
                                      "rc", "ca")]
    ls_data = set(listing(found, "ls-data")) - {".", ".."}
    assert ls_data <= own_component(data, mine), \
        "the run lists the data dir: %s" % sorted(ls_data)
    ls_work = set(listing(found, "ls-work")) - {".", ".."}
    assert a_id not in ls_work, "run A's directory is listed"
    assert ls_work <= own_component(os.path.join(data, "work"), mine), \
        "the run lists other jobs: %s" % sorted(ls_work)
    # run A: its files, token and processes are invisible
    for tok in tokens:
        hit = tok in text
        assert not hit, "run A's token leaked into run B's log"
    assert "amark-" + mark not in "\n".join(listing(found, "ls-a")), \
        "run B lists run A's directory"
    for f in listing(found, "a-file") + [""]:
        got = base64.b64decode(f or "")
        assert mark.encode() not in got and not any(
            t.encode() in got for t in tokens), "run B read run A's files"
    rc = value(found, "rc")
    for path in listing(found, "found"):
        assert "amark-" + mark not in path, "run B found A's file: " + path
        assert path == rc or os.path.dirname(path) == os.path.dirname(rc), \
            "run B found another run's terraform.rc: " + path
    assert listing(found, "a-proc") == [], "run B sees run A's processes"


# ---- 3. remounts, namespaces, writes -------------------------------------

# Stops short of attacking when it shares the host's mount namespace: a
# run outside any sandbox would remount the host itself.
ESCAPE = r'''
DATA='%(data)s'
if [ "$(readlink /proc/self/ns/mnt)" = '%(host_ns)s' ]; then
  p "host-mount-ns=1"
  p "done=1"
  exit 0
fi
p "tools=$(command -v mount >/dev/null && command -v unshare >/dev/null &&
  echo yes)"
attempt usr-write touch '/usr/%(name)s'
attempt etc-write touch '/etc/%(name)s'
attempt remount-usr mount -o remount,bind,rw /usr
attempt remount-root mount -o remount,bind,rw /
attempt remount-data mount -o remount,bind,rw "$DATA"
attempt mount-tmpfs mount -t tmpfs none "$HOME"
attempt unshare-user unshare -Ur true
attempt unshare-mount unshare -m true
attempt usr-write-after touch '/usr/%(name)s'
attempt etc-write-after touch '/etc/%(name)s'
attempt data-append sh -c 'echo pwned >>"$1"' - "$DATA/%(name)s"
attempt data-touch touch "$DATA/%(name)s"
attempt data-new sh -c 'echo pwned >"$1"' - "$DATA/new-%(name)s"
p "done=1"
'''


def test_run_cannot_remount_or_write_outside(api, org, daemon):
    data = os.path.realpath(daemon.data_dir)
    name = "hostile-" + uuid.uuid4().hex[:12]
    marker = os.path.join(data, name)
    with open(marker, "w") as f:
        f.write("untouched\n")
    before = os.stat(marker)
    escaped = ["/usr/" + name, "/etc/" + name,
               os.path.join(data, "new-" + name)]
    try:
        _, text, found = run_probe(api, workspace(api, org), ESCAPE % {
            "data": data, "name": name,
            "host_ns": os.readlink("/proc/self/ns/mnt")})
        check_escape(text, found, marker, before, escaped)
    finally:
        for p in escaped:
            if os.path.exists(p):
                os.unlink(p)
        # a mount that reached the host's namespace
        with open("/proc/self/mountinfo") as f:
            mounts = [ln.split()[4] for ln in f]
        for m in reversed(mounts):
            if m.startswith(data + "/"):
                subprocess.call(["umount", "-l", m])


def check_escape(text, found, marker, before, escaped):
    """The probe's remounts, nested namespaces and system writes failed,
    and nothing changed on the host: the marker file in the data dir
    (stat before) and the files the probe tried to create (escaped).
    Writes to the data dir's path are judged on the host only: inside,
    the path may be the sandbox's own (a mount point's parent)."""
    assert value(found, "done", text) == "1"
    assert "host-mount-ns=1" not in found, \
        "the run shares the host's mount namespace: no sandbox"
    assert value(found, "tools") == "yes", "mount or unshare missing"
    for k in ("usr-write", "etc-write", "remount-usr", "remount-root",
              "remount-data", "mount-tmpfs", "unshare-user",
              "unshare-mount", "usr-write-after", "etc-write-after"):
        assert value(found, k) == "fail", "the run could " + k
    with open(marker) as f:
        assert f.read() == "untouched\n", "the run wrote the data dir"
    assert os.stat(marker).st_mtime_ns == before.st_mtime_ns, \
        "the run touched the data dir"
    for p in escaped:
        assert not os.path.exists(p), "the run created " + p


# The apply of a run that applies at once starts during its plan and
# waits on a directory of the node's (warm.c): its plan is linked there
# and its CLI configuration handed over only by the node.  The apply (the
# probe) sees that directory read-only; the plan (here tofu evaluating
# the tenant's configuration) does not see it at all, so nothing of the
# plan's could give the waiting process another plan or configuration.
# The plan's own tofu, started first thing, waited the same way on a
# directory of its own (/terrace/start): the plan sees there only its own
# CLI configuration, and the apply does not see it.
WARM = r'''
p "warm-entries=$(ls -A /terrace/warm 2>&1 | sort | tr '\n' ' ')"
attempt start-visible test -e /terrace/start
attempt warm-write sh -c 'echo x > /terrace/warm/x'
attempt warm-plan-write sh -c 'echo evil > /terrace/warm/plan.tfplan'
attempt warm-config-write sh -c 'echo x >> /terrace/warm/terraform.rc'
attempt warm-remove rm -f /terrace/warm/plan.tfplan
p "done=1"
'''

WARM_TF = '''
output "plan_sees_warm" {
  value = fileexists("/terrace/warm/terraform.rc")
}

# (outputs are evaluated again at apply, where /terrace/start is absent)
output "plan_start_entries" {
  value = try(join(",", fileset("/terrace/start", "**")), "")
}

output "plan_start_is_its_own" {
  value = (try(filesha256("/terrace/start/terraform.rc"), "") ==
    try(filesha256("/terrace/job/terraform.rc"), "-"))
}
'''


def test_early_apply_is_confined(api, org, daemon):
    went_on = full_log(daemon).count("the apply started beside the plan "
                                     "goes on")
    run, text, found = run_probe(api, workspace(api, org), WARM,
                                 extra={"warm.tf": WARM_TF})
    assert run["attributes"]["status"] == "applied", text[-4000:]
    assert value(found, "done", text) == "1"
    # the apply ran as the process started beside the plan
    assert full_log(daemon).count("the apply started beside the plan "
                                  "goes on") == went_on + 1
    assert value(found, "warm-entries") == "plan.tfplan terraform.rc"
    for k in ("warm-write", "warm-plan-write", "warm-config-write",
              "warm-remove", "start-visible"):
        assert value(found, k) == "fail", "the apply could " + k
    plan = phase_log(api, run["id"], "plan")
    assert re.search(r"plan_sees_warm\s*=\s*false", plan), plan[-3000:]
    assert re.search(r'plan_start_entries\s*=\s*"terraform.rc"', plan), \
        plan[-3000:]
    assert re.search(r"plan_start_is_its_own\s*=\s*true", plan), \
        plan[-3000:]


# ---- 4. LD_PRELOAD and the sandbox's own environment ---------------------

def ws_vars(api, ws_id):
    return api.ok(api.c.get("/api/v2/workspaces/%s/vars" % ws_id),
                  200).json["data"]


def var_body(key, value="/tmp/evil.so", **rels):
    d = {"type": "vars", "attributes": {"key": key, "value": value,
                                        "category": "env"}}
    if rels:
        d["relationships"] = rels
    return {"data": d}


def refused(resp):
    assert resp.status == 422, resp
    errs = resp.json["errors"]
    assert errs and "LD_PRELOAD" in json.dumps(errs), resp


def test_ld_preload_variable_is_refused(api, org, daemon):
    c = api.c
    ws = workspace(api, org)
    refused(c.post("/api/v2/workspaces/%s/vars" % ws["id"],
                   var_body("LD_PRELOAD")))
    refused(c.post("/api/v2/vars", var_body(
        "LD_PRELOAD", workspace={"data": {"type": "workspaces",
                                          "id": ws["id"]}})))
    # renaming a harmless variable into it
    v = api.ok(c.post("/api/v2/workspaces/%s/vars" % ws["id"],
                      var_body("HARMLESS", "1")), 201).json["data"]
    refused(c.patch("/api/v2/workspaces/%s/vars/%s" % (ws["id"], v["id"]),
                    {"data": {"type": "vars", "id": v["id"],
                              "attributes": {"key": "LD_PRELOAD"}}}))
    assert [x["attributes"]["key"] for x in ws_vars(api, ws["id"])] == \
        ["HARMLESS"]
    # ...and through a variable set
    vs = api.ok(c.post("/api/v2/organizations/%s/varsets" % org, {
        "data": {"type": "varsets", "attributes": {
            "name": unique("set"), "global": False}}}), 201).json["data"]
    refused(c.post("/api/v2/varsets/%s/relationships/vars" % vs["id"],
                   var_body("LD_PRELOAD")))
    got = api.ok(c.get("/api/v2/varsets/%s/relationships/vars" % vs["id"]),
                 200).json["data"]
    assert got == []


def proc_table():
    """pid -> (ppid, comm) of every process on the host."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        out[int(pid)] = (ppid, comm)
    return out


def read_proc(pid, what):
    try:
        with open("/proc/%d/%s" % (pid, what), "rb") as f:
            return f.read()
    except OSError:
        return b""


def pids_with(needle):
    """Host processes whose command line contains needle (bytes)."""
    return [pid for pid in proc_table() if needle in read_proc(pid, "cmdline")]


def test_variable_reaches_only_the_sandboxed_child(api, org, daemon):
    c = api.c
    ws = workspace(api, org)
    plain, secret = ("probe-" + uuid.uuid4().hex for _ in range(2))
    api.ok(c.post("/api/v2/workspaces/%s/vars" % ws["id"],
                  var_body("TERRACE_PROBE_X", plain)), 201)
    body = var_body("TERRACE_PROBE_S", secret)
    body["data"]["attributes"]["sensitive"] = True
    api.ok(c.post("/api/v2/workspaces/%s/vars" % ws["id"], body), 201)
    mark = uuid.uuid4().hex[:12]
    a = start_run(api, ws, r'''
p "x-sha=$(printf %%s "$TERRACE_PROBE_X" | sha256sum | cut -c1-64)"
p "s-sha=$(printf %%s "$TERRACE_PROBE_S" | sha256sum | cut -c1-64)"
ln -s "$(command -v sleep)" ./hold-%(mark)s
p "ready=%(mark)s"
exec ./hold-%(mark)s 90
''' % {"mark": mark})
    try:
        wait_log(api, a["id"], "PROBE ready=" + mark)
        found = findings(phase_log(api, a["id"], "apply"))
        for k, v in (("x-sha", plain), ("s-sha", secret)):
            assert value(found, k) == hashlib.sha256(
                v.encode()).hexdigest(), "a variable missed the run"
        # the sandbox's processes on the host: the ancestors of the
        # holding process named bwrap
        held = pids_with(b"hold-" + mark.encode())
        assert held, "run A's process is not on the host"
        table, bwraps = proc_table(), set()
        for pid in held:
            while pid in table and pid > 1:
                if table[pid][1] == "bwrap":
                    bwraps.add(pid)
                pid = table[pid][0]
        assert bwraps, "no bwrap process above the run's processes"
        for pid in sorted(bwraps):
            env = read_proc(pid, "environ")
            hit = plain.encode() in env or secret.encode() in env
            assert not hit, \
                "a variable is in bwrap's own environment (pid %d)" % pid
            # the command line of a host process is every host user's to
            # read (ps): no sensitive value there either
            hit = secret.encode() in read_proc(pid, "cmdline")
            assert not hit, \
                "a sensitive variable is on bwrap's command line (pid %d)" \
                % pid
    finally:
        cancel(api, a["id"])


# ---- 5. provider cache ---------------------------------------------------

PLANT = r'''
p "cache=$TF_PLUGIN_CACHE_DIR"
mkdir -p "$TF_PLUGIN_CACHE_DIR" 2>/dev/null
attempt plant sh -c 'echo "%(mark)s" >"$TF_PLUGIN_CACHE_DIR/%(name)s"'
p "done=1"
'''

LOOK = r'''
p "cache=$TF_PLUGIN_CACHE_DIR"
for r in "$TF_PLUGIN_CACHE_DIR" "$(dirname "$TF_PLUGIN_CACHE_DIR")" \
    '%(a_cache)s' '%(host_dir)s' '%(data)s' "$HOME" "$TMPDIR" /tmp /; do
  timeout 20 find "$r" -maxdepth 8 \( -path /proc -o -path /sys \
    -o -path /dev -o -path /usr \) -prune -o -name '%(name)s' -print \
    2>/dev/null
done | sort -u | sed 's/^/PROBE found /'
for d in "$TF_PLUGIN_CACHE_DIR" '%(a_cache)s' '%(host_dir)s'; do
  [ -n "$d" ] && [ -d "$d" ] && echo "%(mark2)s" >"$d/%(name2)s" 2>/dev/null &&
    p "wrote $d"
done
p "done=1"
'''

LOOK_AGAIN = r'''
timeout 20 find "$TF_PLUGIN_CACHE_DIR" "$(dirname "$TF_PLUGIN_CACHE_DIR")" \
  -maxdepth 8 -name '%(name2)s' 2>/dev/null | sed 's/^/PROBE found /'
p "done=1"
'''


def test_provider_cache_is_not_shared_between_organizations(api, org,
                                                            daemon):
    data = os.path.realpath(daemon.data_dir)
    mark, mark2 = uuid.uuid4().hex, uuid.uuid4().hex
    name, name2 = "planted-" + mark[:12], "planted-" + mark2[:12]
    org_a = api.create_org()
    try:
        ws_a = workspace(api, org_a)
        _, text, found = run_probe(api, ws_a, PLANT % {"mark": mark,
                                                       "name": name})
        assert value(found, "done", text) == "1"
        a_cache = value(found, "cache")
        # where the planted file landed on the host, if it stayed
        host = find_file(data, name)
        host_dir = os.path.dirname(host) if host else ""
        _, text, found = run_probe(api, workspace(api, org), LOOK % {
            "a_cache": a_cache, "host_dir": host_dir, "data": data,
            "name": name, "mark2": mark2, "name2": name2})
        assert value(found, "done", text) == "1"
        assert listing(found, "found") == [], \
            "organization B's run found A's planted file"
        # B's writes reach nothing A's later runs read
        _, text, found = run_probe(api, ws_a, LOOK_AGAIN % {"name2": name2})
        assert value(found, "done", text) == "1"
        assert listing(found, "found") == [], \
            "organization A's run found what B's run planted"
        if host_dir:
            assert not os.path.exists(os.path.join(host_dir, name2)), \
                "B's run wrote into A's provider cache on the host"
    finally:
        api.c.delete("/api/v2/organizations/" + org_a)


# ---- nodes of their own --------------------------------------------------

class Node:
    """A SQLite daemon with special settings; start_error says why it did
    not start (today: it refuses settings it does not know)."""

    def __init__(self, args, config=None):
        self.d = new_daemon("sqlite", args)
        self.args, self.start_error, self.api = args, None, None
        if config is not None:
            self.config = os.path.join(self.d.top, "terraced.conf")
            with open(self.config, "w") as f:
                f.write(config)
            os.chmod(self.config, 0o600)
            self.d.extra_args += ["--config", self.config]
        try:
            self.d.start()
        except Exception as e:  # noqa: BLE001 - reported by need()
            self.start_error = str(e)[-3000:]
            return
        self.api = Api(self.d)

    def need(self):
        if self.start_error is not None:
            pytest.fail("the daemon did not start with %s:\n%s" %
                        (" ".join(self.args), self.start_error),
                        pytrace=False)
        return self.api

    def mark(self):
        return len(full_log(self.d))

    def check(self, since=0):
        """Still serving, no 5xx and no sanitizer report since `since`."""
        if self.start_error is not None:
            return
        assert self.d.proc.poll() is None, "terraced exited:\n" + \
            full_log(self.d)[-3000:]
        assert self.d.client().get("/_health_check").status == 200
        bad = [ln for ln in full_log(self.d)[since:].splitlines()
               if SERVER_ERROR.search(ln) or SANITIZER.search(ln)]
        assert not bad, "\n".join(bad)

    def close(self):
        close_daemon(self.d)


# ---- 6. limits -----------------------------------------------------------

@pytest.fixture(scope="module")
def limited_node():
    n = Node(["--run-processes", "64", "--run-memory", "256",
              "--run-disk", "64", "--run-uid", str(RUN_UID)],
             config="# hostile-config-%s\napply-timeout = 600\n" %
             uuid.uuid4().hex)
    yield n
    n.close()


@pytest.fixture
def limited(limited_node):
    """The limited node, checked still healthy after each test."""
    since = limited_node.mark() if limited_node.start_error is None else 0
    yield limited_node
    limited_node.check(since)


def run_procs_left(mark):
    """Host processes of the limited node's runs, or with mark."""
    left = []
    for pid in proc_table():
        try:
            with open("/proc/%d/status" % pid) as f:
                uid = int(re.search(r"^Uid:\s+(\d+)", f.read(),
                                    re.M).group(1))
        except (OSError, AttributeError):
            continue
        if RUN_UID <= uid < RUN_UID + 65536 or \
                mark.encode() in read_proc(pid, "cmdline"):
            left.append((pid, read_proc(pid, "cmdline")))
    return left


def limit_run(node, script, what):
    """Runs script on node; it must end errored within LIMIT_TIMEOUT
    with `what` in its logs."""
    api = node.need()
    org = api.create_org()
    run = start_run(api, workspace(api, org), script)
    try:
        run = wait_final(api, run["id"], LIMIT_TIMEOUT)
    finally:
        cancel(api, run["id"])
    text = logs(api, run["id"])
    found = findings(text)
    assert run["attributes"]["status"] == "errored", \
        "the run ended %s\n%s" % (run["attributes"]["status"], text[-3000:])
    assert what in text.lower(), "no %r in the logs:\n%s" % (what,
                                                              text[-3000:])
    return org, text, found


def work_empty(d, timeout=15):
    work = os.path.join(d.data_dir, "work")
    deadline = time.time() + timeout
    while time.time() < deadline and os.listdir(work):
        time.sleep(0.1)
    return os.listdir(work)


def test_fork_bomb_hits_the_process_limit(limited):
    mark = "hog" + uuid.uuid4().hex[:12]
    limit_run(limited, r'''
ln -s "$(command -v sleep)" ./%(mark)s
i=0
while [ $i -lt 500 ]; do ./%(mark)s 30 & i=$((i+1)); done
wait
''' % {"mark": mark}, "process limit")
    deadline = time.time() + 10
    while run_procs_left(mark) and time.time() < deadline:
        time.sleep(0.1)
    assert run_procs_left(mark) == [], "the run's processes outlived it"


def test_memory_hog_hits_the_memory_limit(limited):
    # tail keeps the one endless line in memory
    limit_run(limited, "head -c 2G /dev/zero | tail >/dev/null\n",
              "memory limit")


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for n in files:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            except OSError:
                pass
    return total


@pytest.mark.parametrize("where", ["./", "/tmp/"], ids=["workdir", "tmp"])
def test_disk_filler_hits_the_disk_limit(limited, where):
    target = where + "fill-" + uuid.uuid4().hex[:12]
    try:
        limit_run(limited, "dd if=/dev/zero of=%s bs=1M count=1024\n" %
                  target, "disk limit")
    finally:
        # outside a sandbox the file would be the host's
        if target.startswith("/") and os.path.exists(target):
            os.unlink(target)
    assert work_empty(limited.d) == [], "the run's directory stayed"
    used = du(limited.d.data_dir)
    assert used < 32 << 20, "%d MiB still used in the data dir" % (
        used >> 20)


def test_limited_node_config_is_unreadable(limited):
    api = limited.need()
    org = api.create_org()
    with open(limited.config) as f:
        secret = f.readline().strip()
    _, text, found = run_probe(api, workspace(api, org), r'''
p "conf $(base64 -w0 <'%(conf)s' 2>/dev/null)"
cat '%(conf)s' 2>/dev/null
p "done=1"
''' % {"conf": limited.config})
    assert value(found, "done", text) == "1"
    assert not leaked(text, (secret + "\n").encode()) and \
        secret not in text, "the run read the node's config file"


# ---- 7. no sandbox -------------------------------------------------------

def test_without_sandbox_runs_are_refused_unless_allowed(tmp_path):
    probe = r'''
echo ran >'%(flag)s'
p "done=1"
'''
    # bubblewrap switched off: the node says so, and refuses to run
    flag = tmp_path / "ran-refused"
    node = Node(["--bwrap", "none"])
    try:
        api = node.need()
        h = health(node.d)
        sb = h.get("sandbox")
        assert isinstance(sb, dict) and sb.get("isolated") is False and \
            sb.get("reason"), "no sandbox report with a reason: %r" % h
        org = api.create_org()
        run, text, _ = run_probe(api, workspace(api, org),
                                 probe % {"flag": flag})
        assert run["attributes"]["status"] == "errored", text[-3000:]
        assert "sandbox" in phase_log(api, run["id"], "plan").lower(), text
        assert not flag.exists(), "the refused run ran its code"
        node.check()
    finally:
        node.close()
    # ...unless the operator allows unsandboxed runs
    flag = tmp_path / "ran-allowed"
    node = Node(["--bwrap", "none", "--allow-unsandboxed-runs", "on"])
    try:
        api = node.need()
        h = health(node.d)
        sb = h.get("sandbox")
        assert isinstance(sb, dict) and sb.get("isolated") is False, h
        org = api.create_org()
        run, text, found = run_probe(api, workspace(api, org),
                                     probe % {"flag": flag})
        assert run["attributes"]["status"] == "applied", text[-3000:]
        assert value(found, "done", text) == "1"
        assert flag.read_text() == "ran\n"
        node.check()
    finally:
        node.close()
