#!/usr/bin/env python3
"""gen_state.py - a large, valid Terraform state (format v4) for the
state upload/download benchmark, and in-place serial bumps of it.

  gen_state.py gen FILE [MB]      write ~MB megabytes (default 100) of
                                  terraform_data resources with big random
                                  string attributes; serial 1, fixed
                                  lineage
  gen_state.py serial FILE N      set the serial to N in place (the value
                                  is padded with spaces to a fixed width,
                                  so no other byte moves); print the md5

SPDX-License-Identifier: MPL-2.0
"""
import hashlib
import json
import os
import sys

LINEAGE = "b3c1e6a2-7d4f-4c1e-9a55-0e5f3b2d8c10"
HEAD = '{"version":4,"terraform_version":"1.9.0","serial":'
WIDTH = 20              # bytes reserved for the serial value
PER_RESOURCE = 100_000  # bytes of attribute text per resource


def gen(path, mb):
    total = mb * 1_000_000
    half = PER_RESOURCE // 2
    n = max(1, total // (PER_RESOURCE + 400))
    with open(path, "w") as f:
        f.write(HEAD + "1".ljust(WIDTH))
        f.write(',"lineage":%s,"outputs":{"count":{"value":%d,'
                '"type":"number"}},"resources":[' % (json.dumps(LINEAGE), n))
        for i in range(n):
            val = os.urandom(half // 2).hex()
            res = {
                "mode": "managed",
                "type": "terraform_data",
                "name": "blob_%d" % i,
                "provider":
                    'provider["terraform.io/builtin/terraform"]',
                "instances": [{
                    "schema_version": 0,
                    "attributes": {
                        "id": "%08x-0000-4000-8000-%012x" % (i, i),
                        "input": {"value": val, "type": "string"},
                        "output": {"value": val, "type": "string"},
                        "triggers_replace": None,
                    },
                    "sensitive_attributes": [],
                }],
            }
            if i:
                f.write(",")
            f.write(json.dumps(res, separators=(",", ":")))
        f.write('],"check_results":null}\n')


def set_serial(path, serial):
    with open(path, "r+b") as f:
        f.seek(len(HEAD))
        f.write(str(serial).ljust(WIDTH).encode())
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    print(h.hexdigest())


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100)
    elif len(sys.argv) == 4 and sys.argv[1] == "serial":
        set_serial(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
