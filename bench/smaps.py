#!/usr/bin/env python3
"""smaps.py - where a process's resident memory is: /proc/PID/smaps
summed by kind of mapping, largest first, as markdown table rows
(kind | RSS kB | mappings | share | of which shared-clean kB).

  smaps.py PID [TOP=16]

Anonymous kinds: [heap] (main malloc arena), "malloc arenas" (anonymous
mappings aligned to 64 MiB: glibc's per-thread arenas), "thread stacks"
(anonymous mappings of exactly the stack rlimit size), "other anonymous",
[stack].  File mappings are grouped by library family (FAMILIES), other
files by name.

SPDX-License-Identifier: MPL-2.0
"""
import os
import resource
import sys

ARENA_ALIGN = 64 << 20

FAMILIES = [
    ("OpenSSL: libcrypto, libssl (digests, cert; libpq's TLS)",
     ("libcrypto.so", "libssl.so")),
    ("GnuTLS stack (libmicrohttpd's TLS): gnutls, nettle, hogweed, gmp, "
     "p11-kit, tasn1, idn2, unistring, ffi",
     ("libgnutls", "libnettle", "libhogweed", "libgmp", "libp11-kit",
      "libtasn1", "libidn2", "libunistring", "libffi")),
    ("libcurl and its own deps: nghttp2, ssh2, rtmp, psl, brotli, zstd",
     ("libcurl", "libnghttp2", "libssh2", "librtmp", "libpsl",
      "libbrotli", "libzstd")),
    ("libpq", ("libpq",)),
    ("Kerberos/LDAP/SASL (libcurl's and libpq's deps)",
     ("libgssapi", "libkrb5", "libk5crypto", "libcom_err", "libldap",
      "liblber", "libsasl2", "libkeyutils", "libresolv")),
    ("libc, libm, ld.so", ("libc.so", "libm.so", "ld-linux")),
    ("libsqlite3", ("libsqlite3",)),
    ("libmicrohttpd", ("libmicrohttpd",)),
    ("libjansson", ("libjansson",)),
]


def classify(start, size, path, stack_kb):
    if path:
        if path.startswith("["):
            return path
        base = os.path.basename(path)
        for name, prefixes in FAMILIES:
            if base.startswith(prefixes):
                return name
        return base
    if start % ARENA_ALIGN == 0 and size <= ARENA_ALIGN:
        return "malloc arenas (per-thread, anon)"
    if stack_kb and size in (stack_kb << 10, (stack_kb << 10) + 4096):
        return "thread stacks (anon)"
    return "other anonymous"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    stack_kb = soft >> 10 if soft > 0 else 8192
    sums, counts, shared = {}, {}, {}
    kind = None
    with open("/proc/%s/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                path = " ".join(head[5:]) if len(head) > 5 else ""
                kind = classify(lo, hi - lo, path, stack_kb)
                counts[kind] = counts.get(kind, 0) + 1
            elif head[0] == "Rss:":
                sums[kind] = sums.get(kind, 0) + int(head[1])
            elif head[0] == "Shared_Clean:":
                shared[kind] = shared.get(kind, 0) + int(head[1])
    total = sum(sums.values())
    for k, v in sorted(sums.items(), key=lambda kv: -kv[1])[:top]:
        if v == 0:
            break
        print("| %s | %d | %d | %.0f%% | %d |" % (
            k, v, counts[k], 100.0 * v / total, shared.get(k, 0)))


if __name__ == "__main__":
    main()
