#!/usr/bin/python3
"""An SMTP server for msrpgw's tests (Debian's python3-aiosmtpd; run it with /usr/bin/python3).

usage: smtp_sink.py MODE PORT OUTDIR [CERT KEY]
Modes served by aiosmtpd:
  plain      no TLS
  starttls   STARTTLS required before MAIL
  auth       STARTTLS and AUTH PLAIN/LOGIN required (user alice, password s3cret)
  tls        implicit TLS from the first byte
  tempfail   the first RCPT of each address gets 451, later ones are accepted
  busy       the first MAIL gets 421 (the server is closing), later ones are accepted
  nobody     RCPT to addresses starting with "nobody" gets 550 5.1.1
  dropdata   the first DATA is read, then the connection is dropped without a reply
  count      accepts everything and only counts (benchmarks); prints "COUNT n" on SIGUSR1
Modes of a raw server that misbehaves:
  garbage    greets with a line that is not SMTP
  silent     never says anything
  overlong   greets with a line of 100,000 bytes
A mode with "+pipelining" (e.g. tempfail+pipelining) also offers PIPELINING
(aiosmtpd reads commands in order, which is all RFC 2920 asks of a server).
Each accepted mail is written to OUTDIR/msgNNN.eml with X-Peer-* envelope lines.
Prints "READY <mode> <port>"; stops on SIGTERM.
"""
import asyncio
import os
import signal
import ssl
import sys
import threading

MODE, PORT, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
PIPELINING = MODE.endswith("+pipelining")
MODE = MODE.removesuffix("+pipelining")
CERT, KEY = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
os.makedirs(OUT, exist_ok=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
signal.signal(signal.SIGINT, lambda *a: stop.set())

if MODE in ("garbage", "silent", "overlong"):
    async def serve(reader, writer):
        if MODE == "garbage":
            writer.write(b"hello, this is not SMTP\r\n")
        elif MODE == "overlong":
            writer.write(b"220 " + b"x" * 100000 + b"\r\n")
        await writer.drain()
        try:
            await reader.read(65536)
            await asyncio.sleep(3600)
        except Exception:
            pass

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", PORT)
        print(f"READY {MODE} {PORT}", flush=True)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())
    sys.exit(0)

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self):
        self.n = 0
        self.seen = set()
        self.dropped = False
        self.busy = MODE == "busy"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if PIPELINING:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.busy:
            self.busy = False
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if MODE == "tempfail" and address not in self.seen:
            self.seen.add(address)
            return "451 4.3.0 Try again later"
        if MODE == "nobody" and address.startswith("nobody"):
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if MODE == "count":
            self.n += 1
            return "250 2.0.0 Ok"
        if MODE == "dropdata" and not self.dropped:
            self.dropped = True
            server.transport.close()
            return "421 closing"
        self.n += 1
        with open(os.path.join(OUT, f"msg{self.n:03d}.eml"), "wb") as f:
            head = (f"X-Peer-From: {envelope.mail_from}\r\nX-Peer-To: {','.join(envelope.rcpt_tos)}\r\n"
                    f"X-Peer-Mail-Options: {' '.join(envelope.mail_options)}\r\n"
                    f"X-Peer-Auth: {session.authenticated} {getattr(session.auth_data, 'login', None)!r}\r\n"
                    f"X-Peer-TLS: {session.ssl is not None}\r\n")
            f.write(head.encode() + envelope.original_content)
        return "250 2.0.0 Ok: queued as %03d" % self.n


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alice" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


kw = dict(hostname="127.0.0.1", port=PORT, enable_SMTPUTF8=True, decode_data=False, server_hostname="sink.test")
if CERT:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CERT, KEY)
    if MODE == "tls":
        kw.update(ssl_context=ctx)
    elif MODE in ("starttls", "auth"):
        kw.update(tls_context=ctx, require_starttls=True)
if MODE == "auth":
    kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)

store = Store()
ctrl = Controller(store, **kw)
signal.signal(signal.SIGUSR1, lambda *a: print(f"COUNT {store.n}", flush=True))
ctrl.start()
print(f"READY {MODE} {PORT}", flush=True)
stop.wait()
ctrl.stop()
