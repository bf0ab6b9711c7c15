"""smtpsink.py - a minimal SMTP server on loopback for the tests of
e-mail notifications: it accepts every message and hands (from,
recipients, text) to a callback.  Standard library only (the tests must
not depend on which Python runs them); speaks what libcurl's SMTP client
sends: EHLO/HELO, MAIL FROM, RCPT TO, DATA (dot-unstuffed), RSET, NOOP,
QUIT.

SPDX-License-Identifier: MPL-2.0
"""
import re
import socketserver
import threading

ADDR = re.compile(r"<([^>]*)>")


class _Handler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        frm, rcpts = None, []
        self.reply("220 smtpsink ready")
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 smtpsink")
            elif line.upper().startswith("MAIL FROM:"):
                m = ADDR.search(line)
                frm, rcpts = (m.group(1) if m else ""), []
                self.reply("250 OK")
            elif line.upper().startswith("RCPT TO:"):
                m = ADDR.search(line)
                rcpts.append(m.group(1) if m else "")
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                body = []
                while True:
                    d = self.rfile.readline(1 << 20)
                    if not d or d in (b".\r\n", b".\n"):
                        break
                    body.append(d[1:] if d.startswith(b"..") else d)
                self.server.deliver(frm, list(rcpts),
                                    b"".join(body).decode("utf-8",
                                                          "replace"))
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb in ("RSET", "NOOP"):
                if verb == "RSET":
                    frm, rcpts = None, []
                self.reply("250 OK")
            else:
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """SmtpSink(deliver) with deliver(mail_from, rcpt_tos, text)."""

    def __init__(self, deliver):
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.deliver = deliver
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
