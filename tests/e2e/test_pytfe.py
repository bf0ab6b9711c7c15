"""pytfe 1.5.0 (HashiCorp's Python SDK), unpatched, against a real
terraced: the workflow of pytfe_workflow.py, run with the interpreter of
the venv scripts/deps.sh installs pytfe into ($TERRACE_CACHE/pytfe-1.5.0,
or TERRACE_PYTFE_PYTHON).  Skips with a message when it is not there.

Teams, team access, organization memberships and notification
configurations are not in the workflow: Terrace has none of them yet.

SPDX-License-Identifier: MPL-2.0
"""
import json
import os
import subprocess

import pytest

from conftest import CACHE, TIMEOUT, unique

PYTFE_PYTHON = os.environ.get(
    "TERRACE_PYTFE_PYTHON", os.path.join(CACHE, "pytfe-1.5.0", "bin",
                                         "python"))
HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = """
variable "greeting" {
  type = string
}

resource "terraform_data" "x" {
  input = var.greeting
}

output "greeting" {
  value = terraform_data.x.output
}
"""


@pytest.fixture(scope="module")
def pytfe_python():
    if not os.access(PYTFE_PYTHON, os.X_OK):
        pytest.skip("pytfe is not installed (scripts/deps.sh test puts it "
                    "in a venv at %s; or set TERRACE_PYTFE_PYTHON)" %
                    PYTFE_PYTHON)
    p = subprocess.run([PYTFE_PYTHON, "-c",
                        "import pytfe; print(pytfe.__version__)"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip("pytfe does not import: " + p.stderr[-500:])
    return PYTFE_PYTHON, p.stdout.strip()


def test_pytfe_workflow(daemon, pytfe_python, tmp_path):
    python, version = pytfe_python
    assert version == "1.5.0", "the pinned pytfe is 1.5.0, got " + version
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "main.tf").write_text(CONFIG)
    org = unique("pytfe")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TFE_ADDRESS": daemon.url,
        "TFE_TOKEN": daemon.admin_token,
        "SSL_CERT_FILE": daemon.ca,
        "NO_PROXY": "127.0.0.1",
    }
    p = subprocess.run([python, os.path.join(HERE, "pytfe_workflow.py"), org,
                        str(cfg)], capture_output=True, text=True, env=env,
                       timeout=TIMEOUT * 3)
    assert p.returncode == 0, ("pytfe workflow failed (rc %d)\n--- stderr "
                               "---\n%s\n--- daemon log ---\n%s" %
                               (p.returncode, p.stderr[-6000:],
                                daemon.log_text()))
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert seen["org"] == org and seen["org_token_reads"] == org
    assert seen["ws_project"] is not None
    assert seen["ws_description"] == "changed by pytfe"
    assert seen["tag_bindings"] == {"env": "e2e"}
    assert seen["vars"] == ["SECRET_TOKEN", "greeting"]
    assert seen["planned"] == "planned" and seen["applied"] == "applied"
    assert seen["plan_changes"] == ["terraform_data.x"]
    assert seen["outputs"] == {"greeting": "hello from pytfe"}
    # the sensitive variable's value never reached pytfe's view of anything
    assert "s3cr3t-pytfe" not in p.stdout
