#!/usr/bin/python3
"""Plays one hostile SMTP client against HOST PORT and prints what the server did, as JSON:
{"replies": ["250", "500 5.5.2", ...] (codes and enhanced codes, in order), "closed": bool, "sent": bytes}.
usage: smtp_hostile.py CASE HOST PORT [RCPT [SERVER_PID]]
With the server's pid, the flood case reports how much the server's RSS grew while flooded."""
import json
import re
import socket
import ssl
import sys
import time

case, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
rcpt = sys.argv[4] if len(sys.argv) > 4 else "reply+x@reply.test"
server_pid = sys.argv[5] if len(sys.argv) > 5 else None
extra = {}


def rss_kb():
    if server_pid is None:
        return 0
    with open("/proc/%s/status" % server_pid) as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])
s = socket.create_connection((host, port), timeout=10)
buf = b""
closed = False
sent = 0


def read_replies(n, timeout=10.0):
    """Reads until n final reply lines came, the server closed, or timeout."""
    global buf, closed
    out = []
    deadline = time.time() + timeout
    while len(out) < n:
        while b"\r\n" in buf and len(out) < n:
            line, buf = buf.split(b"\r\n", 1)
            m = re.match(rb"^(\d{3})([ -])(\d\.\d{1,3}\.\d{1,3})?", line)
            if m and m.group(2) == b" ":
                out.append(m.group(1).decode() + (" " + m.group(3).decode() if m.group(3) else ""))
        if len(out) >= n or closed or time.time() >= deadline:
            break
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, OSError):
            closed = True
            continue
        if not data:
            closed = True
        buf += data
    return out


def send(b):
    global sent
    s.sendall(b)
    sent += len(b)


def drain_closed(timeout=5.0):
    """True when the server closes within timeout."""
    global closed, buf
    deadline = time.time() + timeout
    while not closed and time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            data = s.recv(65536)
            buf += data
            if not data:
                closed = True
        except socket.timeout:
            break
        except OSError:
            closed = True
    return closed


replies = read_replies(1)  # greeting
if case == "bare-lf":
    send(b"EHLO x\n")
    replies += read_replies(1)
elif case == "nul":
    send(b"EHLO x\r\nMAIL FROM:<a\x00b@x>\r\n")
    replies += read_replies(2)
elif case == "long-line":
    send(b"EHLO x\r\n")
    send(b"A" * (1 << 20) + b"\r\nNOOP\r\n")
    replies += read_replies(3)
elif case == "many-rcpt":
    send(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n" + b"".join(b"RCPT TO:<r%d@reply.test>\r\n" % i for i in range(10000)))
    replies += read_replies(10002, timeout=60)  # 20 s ran out in a loaded run's first minute
elif case == "pipelining-flood":
    # 1,000,000 commands without reading a reply: the server must stop reading, not
    # buffer them. A small receive buffer here makes its replies back up soon.
    s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(10)
    s.connect((host, port))
    buf = b""
    closed = False
    replies = read_replies(1)
    before = rss_kb()
    s.settimeout(3)
    chunk = b"NOOP\r\n" * 10000
    try:
        for _ in range(100):
            send(chunk)
    except socket.timeout:
        pass  # the server stopped reading: what a client that never reads gets
    time.sleep(1)
    extra["rss_growth_kb"] = rss_kb() - before
    replies += read_replies(3)
elif case == "injection":
    send(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<" + rcpt.encode() + b">\rDATA\r\n"
         b"RCPT TO:<a@example.org>,<b@example.org>\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<\"a\r\nDATA\r\n")
    replies += read_replies(6)
elif case == "slow":
    send(b"EHL")
    drain_closed(10)
    replies += read_replies(1)
elif case == "dribble":
    for c in b"EHLO dribbling.example":
        try:
            send(bytes([c]))
        except OSError:
            break
        time.sleep(0.25)
        if drain_closed(0.01):
            break
    replies += read_replies(1)
elif case == "tls-garbage":
    send(b"EHLO x\r\nSTARTTLS\r\n")
    replies += read_replies(2)
    try:
        send(b"\x16\x03\x01\x00\xff" + b"\x00" * 300 + b"garbage" * 100)
    except OSError:
        pass
elif case == "errors":
    send(b"".join(b"BOGUS %d\r\n" % i for i in range(100)))
    replies += read_replies(100)
elif case == "starttls":
    # What is pipelined after STARTTLS (CVE-2011-0411) must be dropped, not run inside TLS.
    send(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
    replies += read_replies(2)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s, server_hostname="localhost")
    buf = b""
    send(b"EHLO x\r\n")
    ehlo = s.recv(65536)
    extra["tls_ehlo_offers_starttls"] = b"STARTTLS" in ehlo
    buf = ehlo
    replies += read_replies(1)
    send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nQUIT\r\n")
    replies += read_replies(3)
elif case.startswith("churn"):
    # Connections opened and closed (churn-N: N of them): what the server holds for them comes back.
    count = int(case.split("-")[1]) if "-" in case else 2000
    s.close()
    before = rss_kb()
    for i in range(count):
        c = socket.create_connection((host, port), timeout=10)
        c.recv(1024)
        c.sendall(b"EHLO churn\r\nQUIT\r\n")
        while c.recv(4096):
            pass
        c.close()
    time.sleep(1)
    extra["rss_growth_kb"] = rss_kb() - before
    s = socket.create_connection((host, port), timeout=10)
    buf = b""
    closed = False
    replies = read_replies(1)
elif case == "oversize":
    send(b"EHLO x\r\nMAIL FROM:<a@example.org> SIZE=999999999\r\n")
    replies += read_replies(2)
elif case == "no-ehlo":
    send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n")
    replies += read_replies(3)
else:
    sys.exit("unknown case " + case)
drain_closed(0.5)
print(json.dumps(dict({"replies": replies, "closed": closed, "sent": sent}, **extra)))
