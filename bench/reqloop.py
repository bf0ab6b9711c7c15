#!/usr/bin/env python3
"""reqloop.py - send exactly N requests to terraced over TLS keep-alive
connections (stdlib only), cycling through a fixed mix of reads:

  GET /api/v2/ping
  GET /api/v2/workspaces/WS_ID
  GET /api/v2/organizations/ORG/workspaces
  GET /api/v2/account/details

  reqloop.py URL CA TOKEN ORG WS_ID [N=10000] [CONNS=8]

Requests go round-robin over CONNS connections (so several server threads
see traffic).  Every response must be 2xx; prints "N requests in S s"
and exits 1 on any failure.

SPDX-License-Identifier: MPL-2.0
"""
import http.client
import ssl
import sys
import time
import urllib.parse


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    url, ca, token, org, ws = sys.argv[1:6]
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 10000
    nconn = int(sys.argv[7]) if len(sys.argv) > 7 else 8
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)
    conns = [http.client.HTTPSConnection(u.hostname, u.port, context=ctx,
                                         timeout=30) for _ in range(nconn)]
    paths = ["/api/v2/ping",
             "/api/v2/workspaces/" + ws,
             "/api/v2/organizations/%s/workspaces" % org,
             "/api/v2/account/details"]
    hdrs = {"Authorization": "Bearer " + token,
            "Accept": "application/vnd.api+json"}
    bad = 0
    t0 = time.monotonic()
    for i in range(n):
        c = conns[i % nconn]
        path = paths[i % len(paths)]
        c.request("GET", path, headers=hdrs)
        r = c.getresponse()
        r.read()
        if r.status // 100 != 2:
            bad += 1
            if bad <= 3:
                print("GET %s -> %d" % (path, r.status), file=sys.stderr)
        if r.will_close:
            c.close()
    dt = time.monotonic() - t0
    for c in conns:
        c.close()
    print("%d requests in %.1f s, %d failed" % (n, dt, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
