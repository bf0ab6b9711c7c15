"""A run's log when the node's acknowledgement of an append is lost: the
daemon stores the chunk, then answers as if the database had failed
(TERRACE_FAULT=log.appended:N), so the executor sends the chunk again
with what followed it.  The plan log must still hold every line once."""
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from terrace import Daemon, queue_run  # noqa: E402

from conftest import BACKENDS, TOFU_BIN, Api  # noqa: E402
from conftest import phase_log, unique  # noqa: E402
from test_remote import wait_status  # noqa: E402

N = 12
MAIN_TF = b"""
resource "terraform_data" "r" {
  count = %d
  input = "r-${count.index}"
}
""" % N


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("nth", [1, 2])
def test_a_resent_log_chunk_is_stored_once(backend, nth):
    d = Daemon(backend=backend, extra_args=["--tofu-bin", TOFU_BIN],
               env={"TERRACE_FAULT": "log.appended:%d" % nth})
    try:
        d.start()
        api = Api(d)
        org = api.create_org()
        ws = api.create_workspace(org, unique("logf"))
        run = queue_run(api.c, ws["id"], MAIN_TF)
        wait_status(api, run, ("planned", "cost_estimated",
                               "policy_checked"), timeout=120)
        text = phase_log(api.c, run, "plan")
        # the fault fired: the executor saw the append fail
        assert "cannot append to the log" in d.log_text(), d.log_text()
        for i in range(N):
            head = "terraform_data.r[%d] will be created" % i
            assert text.count(head) == 1, text
        assert len(re.findall(r"Plan: %d to add" % N, text)) == 1, text
        # the first lines of the log, from tofu init, are there once
        first = [ln for ln in text.splitlines() if ln.strip()][0]
        assert text.count(first) == 1, text
    finally:
        d.stop()
        d.close()
