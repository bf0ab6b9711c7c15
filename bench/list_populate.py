#!/usr/bin/env python3
"""list_populate.py - gives organization ORG of a running Terrace three
workspaces with N items each, for list benchmarks (bench/list_ab.sh):
"runs" with N runs kept pending behind a lock held by the caller, "states"
with N state versions, "vars" with N variables.  Prints the three
workspace ids, one a line, in that order.

    list_populate.py URL TOKEN CA_FILE ORG N
"""
import base64
import hashlib
import http.client
import io
import json
import ssl
import sys
import tarfile
import urllib.parse

URL, TOKEN, CA, ORG, N = sys.argv[1:6]
N = int(N)
u = urllib.parse.urlsplit(URL)
ctx = ssl.create_default_context(cafile=CA)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)


def call(method, path, body=None, raw=None, token=True):
    h = {"Content-Type": "application/vnd.api+json"}
    if token:
        h["Authorization"] = "Bearer " + TOKEN
    if body is not None:
        raw = json.dumps(body).encode()
    conn.request(method, path, body=raw, headers=h)
    r = conn.getresponse()
    data = r.read()
    if r.status // 100 != 2:
        sys.exit("%s %s -> %d %s" % (method, path, r.status, data[:300]))
    return json.loads(data) if data else None


def workspace(name):
    d = call("POST", "/api/v2/organizations/%s/workspaces" % ORG,
             {"data": {"type": "workspaces", "attributes": {"name": name}}})
    return d["data"]["id"]


def config():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        main = b'resource "terraform_data" "a" {}\n'
        info = tarfile.TarInfo("main.tf")
        info.size = len(main)
        t.addfile(info, io.BytesIO(main))
    return buf.getvalue()


def state(serial):
    doc = {"version": 4, "terraform_version": "1.6.2", "serial": serial,
           "lineage": "0b6a1f37-6d2c-4a8e-9d8f-3b0c9f6e1a11",
           "outputs": {"greeting": {"value": "hello", "type": "string"}},
           "resources": [{"mode": "managed", "type": "terraform_data",
                          "name": "a", "provider": "provider[\"terraform.io"
                          "/builtin/terraform\"]",
                          "instances": [{"schema_version": 0,
                                         "attributes": {"id": "1"}}]}],
           "check_results": None}
    return (json.dumps(doc, indent=2) + "\n").encode()


runs = workspace("runs")
call("POST", "/api/v2/workspaces/%s/actions/lock" % runs, {})
tgz = config()
for i in range(N):
    d = call("POST", "/api/v2/workspaces/%s/configuration-versions" % runs,
             {"data": {"type": "configuration-versions",
                       "attributes": {"auto-queue-runs": False}}})
    up = urllib.parse.urlsplit(d["data"]["attributes"]["upload-url"])
    call("PUT", up.path + "?" + up.query, raw=tgz, token=False)
    call("POST", "/api/v2/runs", {"data": {
        "type": "runs", "attributes": {"message": "run %d" % i},
        "relationships": {
            "workspace": {"data": {"type": "workspaces", "id": runs}},
            "configuration-version": {"data": {
                "type": "configuration-versions",
                "id": d["data"]["id"]}}}}})

states = workspace("states")
call("POST", "/api/v2/workspaces/%s/actions/lock" % states, {})
for serial in range(1, N + 1):
    s = state(serial)
    call("POST", "/api/v2/workspaces/%s/state-versions" % states, {"data": {
        "type": "state-versions",
        "attributes": {"serial": serial,
                       "md5": hashlib.md5(s).hexdigest(),
                       "lineage": "0b6a1f37-6d2c-4a8e-9d8f-3b0c9f6e1a11",
                       "state": base64.b64encode(s).decode()}}})
call("POST", "/api/v2/workspaces/%s/actions/unlock" % states, {})

variables = workspace("vars")
for i in range(N):
    call("POST", "/api/v2/workspaces/%s/vars" % variables, {"data": {
        "type": "vars", "attributes": {
            "key": "v%d" % i, "value": "value %d" % i,
            "category": "terraform" if i % 2 else "env"}}})

print(runs)
print(states)
print(variables)
