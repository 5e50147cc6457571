#!/usr/bin/python3
"""The SMTP benchmark's reference: Python's smtplib sending N mails like
msrpgw's (UTF-8 text, quoted-printable) to the same sink, over one reused
connection, as a careful script would. Prints the mails per second.
usage: smtplib_reference.py PORT N"""
import smtplib
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

port, n = int(sys.argv[1]), int(sys.argv[2])
start = time.monotonic()
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo("bench")
    for i in range(n):
        m = EmailMessage()
        m["From"] = "Alice <msrpgw@gw.example>"
        m["To"] = "bob@example.org"
        m["Subject"] = "Message from Alice"
        m["Date"] = formatdate()
        m["Message-ID"] = make_msgid(domain="gw.example")
        m.set_content(f"benchmark message {i}: Grüße über MSRP", cte="quoted-printable")
        s.send_message(m, from_addr="msrpgw@gw.example", to_addrs=["bob@example.org"])
print(f"{n / (time.monotonic() - start):.1f}")
