#!/usr/bin/env python3
"""tls_probe.py - helpers for tls_ab.sh: TLS connections to terraced from
the outside (stdlib only).

  tls_probe.py handshakes URL CA N
      N TLS handshakes one after the other, each on a new connection with
      TCP_NODELAY (as Go and curl set it); prints "p50 p90 p99" of the
      handshake times in ms (from the TCP connect to the finished
      handshake).

  tls_probe.py stall URL PID N SECONDS
      Opens N connections that stop half-way through their TLS
      handshake (every other one sends the first 5 bytes of a record,
      the rest a whole ClientHello and then nothing), waits until the
      server has answered the whole ones, and prints the CPU seconds
      the process PID used per second over the next SECONDS.

  tls_probe.py hold URL CA TOKEN N READY
      Opens N HTTPS keep-alive connections, sends one authenticated
      GET /api/v2/ping on each, writes READY and sleeps until killed,
      holding them idle.

Percentiles are nearest-rank: pXX is the ceil(XX/100 * n)-th smallest.

SPDX-License-Identifier: MPL-2.0
"""
import math
import os
import select
import socket
import ssl
import sys
import time
import urllib.parse


def host_port(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def connect(host, port):
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def pct(values, p):
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def handshakes(url, ca, n):
    host, port = host_port(url)
    ctx = ssl.create_default_context(cafile=ca)
    took = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = ctx.wrap_socket(connect(host, port), server_hostname=host)
        took.append((time.perf_counter() - t0) * 1000)
        s.close()
    print("%.2f %.2f %.2f" % (pct(took, 50), pct(took, 90), pct(took, 99)))


def client_hello():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = ssl.MemoryBIO()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stall(url, pid, n, seconds):
    host, port = host_port(url)
    hello = client_hello()
    socks = []
    for i in range(n):
        s = connect(host, port)
        s.sendall(hello if i % 2 else b"\x16\x03\x01\x00\xff")
        socks.append(s)
    for s in socks[1::2]:
        select.select([s], [], [], 5)   # its ServerHello came
    t0, c0 = time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds)
    used = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    for s in socks:
        s.close()
    print("%.2f" % used)


def hold(url, ca, token, n, ready):
    host, port = host_port(url)
    ctx = ssl.create_default_context(cafile=ca)
    req = ("GET /api/v2/ping HTTP/1.1\r\nHost: %s\r\n"
           "Authorization: Bearer %s\r\n\r\n" % (host, token)).encode()
    socks = []
    for _ in range(n):
        s = ctx.wrap_socket(connect(host, port), server_hostname=host)
        s.sendall(req)
        if not s.recv(4096).startswith(b"HTTP/1.1 204"):
            sys.exit("GET /api/v2/ping was not answered 204")
        socks.append(s)
    with open(ready, "w") as f:
        f.write("%d\n" % len(socks))
    while True:
        time.sleep(60)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "handshakes":
        handshakes(args[0], args[1], int(args[2]))
    elif cmd == "stall":
        stall(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "hold":
        hold(args[0], args[1], args[2], int(args[3]), args[4])
    else:
        sys.exit("unknown command %s" % cmd)


if __name__ == "__main__":
    main()
