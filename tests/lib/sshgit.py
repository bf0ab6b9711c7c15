"""sshgit.py - a loopback SSH server that serves git repositories for
read (git-upload-pack) to one public key, for the tests of workspace SSH
keys (git module sources fetched by `tofu init` in a run).

    /usr/bin/python3 sshgit.py --root DIR --authorized-key KEY.pub \
        --port-file F --log F

Binds 127.0.0.1 on a free port and writes the port to --port-file once
listening.  Each line of --log records what a client did: "auth ok
USER", "auth refused USER", "exec COMMAND", "exit STATUS".  Runs until
killed.  Uses Debian's python3-paramiko (hence /usr/bin/python3).

SPDX-License-Identifier: MPL-2.0
"""
import argparse
import os
import shlex
import socket
import subprocess
import threading

import paramiko


class Server(paramiko.ServerInterface):
    def __init__(self, allowed, log):
        self.allowed = allowed
        self.log = log
        self.command = None
        self.ready = threading.Event()

    def check_auth_publickey(self, username, key):
        ok = (key.get_name(), key.get_base64()) == self.allowed
        self.log("auth %s %s" % ("ok" if ok else "refused", username))
        return (paramiko.AUTH_SUCCESSFUL if ok
                else paramiko.AUTH_FAILED)

    def get_allowed_auths(self, username):
        return "publickey"

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        self.command = command.decode()
        self.ready.set()
        return True


def serve(conn, args, allowed, log, host_key):
    t = paramiko.Transport(conn)
    t.add_server_key(host_key)
    srv = Server(allowed, log)
    try:
        t.start_server(server=srv)
        chan = t.accept(30)
        if chan is None or not srv.ready.wait(30):
            return
        log("exec " + srv.command)
        argv = shlex.split(srv.command)
        status = 128
        if len(argv) == 2 and argv[0] == "git-upload-pack":
            path = os.path.realpath(os.path.join(args.root,
                                                 argv[1].lstrip("/")))
            if path.startswith(os.path.realpath(args.root) + os.sep):
                p = subprocess.Popen(["git-upload-pack", path],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)

                def pump_in():
                    while True:
                        data = chan.recv(65536)
                        if not data:
                            break
                        p.stdin.write(data)
                        p.stdin.flush()
                    p.stdin.close()

                threading.Thread(target=pump_in, daemon=True).start()
                while True:
                    data = p.stdout.read1(65536)
                    if not data:
                        break
                    chan.sendall(data)
                status = p.wait()
        log("exit %d" % status)
        chan.send_exit_status(status)
        chan.close()
        # Let the client hang up first: closing the socket while its
        # last messages sit unread makes the kernel answer with a reset,
        # and a reset can discard pack data the client has not read yet
        # ("client_loop: send disconnect: Connection reset by peer").
        t.join(30)
    except Exception as e:  # a test server: record and go on
        log("error %r" % (e,))
    finally:
        t.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--authorized-key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    kind, b64 = open(args.authorized_key).read().split()[:2]
    allowed = (kind, b64)
    host_key = paramiko.RSAKey.generate(2048)
    lock = threading.Lock()

    def log(line):
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(tmp, args.port_file)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, args, allowed, log,
                                             host_key), daemon=True).start()


if __name__ == "__main__":
    main()
