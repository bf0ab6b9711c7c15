"""cluster.py - test helpers: a whole local cluster from `terrace cluster up`.

A Cluster starts PostgreSQL, the primaries, the secondaries and HAProxy
in a temporary directory, and gives what the suites need: a Client
through the load balancer, SQL on the cluster's database, the node list
and the nodes' logs.  It looks enough like terrace.Daemon (url, port,
ca, admin_token, client(), log_text(), proc.poll()) for the end-to-end
fixtures to run against it.
"""
import os
import shutil
import subprocess
import tempfile

from terrace import BUILD, Client

SANITIZER_WORDS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


class _Primaries:
    """proc.poll() of a Daemon: None while every primary and the load
    balancer run, else 1."""

    def __init__(self, cluster):
        self.c = cluster
        self.returncode = None

    def poll(self):
        for _, pid, role, _ in self.c.nodes():
            if role in ("primary", "lb") and not alive(pid):
                self.returncode = 1
                return 1
        return None


class Cluster:
    def __init__(self, primaries=3, secondaries=2, capacity=None,
                 tofu_bin=None, extra=()):
        # short: PostgreSQL's socket path lives inside it
        self.dir = tempfile.mkdtemp(prefix="tcl-")
        self.tmp = self.dir
        self.args = ["--primaries", str(primaries),
                     "--secondaries", str(secondaries)]
        if capacity is not None:
            self.args += ["--capacity", str(capacity)]
        if tofu_bin:
            self.args += ["--tofu-bin", tofu_bin]
        self.args += list(extra)
        self.backend = "cluster"
        self.data_dir = None  # no single node's data dir stands for it
        self.proc = _Primaries(self)
        self.started = False

    def terrace(self, *args, timeout=120, check=True):
        r = subprocess.run([os.path.join(BUILD, "terrace")] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("terrace %s: rc=%d\n%s%s\n%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr,
                self.log_text()))
        return r

    def up(self, timeout=300):
        self.terrace("cluster", "up", "--dir", self.dir, *self.args,
                     timeout=timeout)
        self.started = True
        with open(os.path.join(self.dir, "url")) as f:
            self.url = f.read().strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        with open(os.path.join(self.dir, "admin-token")) as f:
            self.admin_token = f.read().strip()
        self.ca = os.path.join(self.dir, "tls", "ca.pem")
        self.tfrc = os.path.join(self.dir, "tofu.tfrc")
        self.conninfo = "host=%s user=terrace dbname=terrace" % \
            os.path.join(self.dir, "pg")
        return self

    start = up

    def client(self, token=...):
        return Client(self.url, self.ca,
                      self.admin_token if token is ... else token)

    def nodes(self):
        """[(name, pid, role, address)] from DIR/nodes."""
        try:
            with open(os.path.join(self.dir, "nodes")) as f:
                return [(n, int(p), r, a) for n, p, r, a in
                        (ln.split() for ln in f if ln.strip())]
        except OSError:
            return []

    def sql(self, query):
        out = subprocess.check_output(
            ["psql", "-At", "-F", "\x1f", "-d", self.conninfo, "-c", query],
            text=True, timeout=60)
        return [ln.split("\x1f") for ln in out.splitlines() if ln]

    def scale(self, n, timeout=180):
        return self.terrace("cluster", "scale", "--dir", self.dir,
                            "--secondaries", str(n), timeout=timeout)

    def logs(self):
        """{log file name: text} of every node."""
        out = {}
        ldir = os.path.join(self.dir, "logs")
        for name in sorted(os.listdir(ldir)) if os.path.isdir(ldir) else []:
            with open(os.path.join(ldir, name), "rb") as f:
                out[name] = f.read().decode(errors="replace")
        return out

    def full_log(self):
        return "".join("--- %s ---\n%s" % kv for kv in self.logs().items())

    def log_text(self, tail=1500):
        return "\n".join("--- %s ---\n%s" % (k, v[-tail:])
                         for k, v in self.logs().items())

    def sanitizer_lines(self):
        return [ln for ln in self.full_log().splitlines()
                if any(w in ln for w in SANITIZER_WORDS)]

    def stop(self):
        if self.started:
            self.terrace("cluster", "down", "--dir", self.dir, timeout=180,
                         check=False)
            self.started = False
        return 0

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
