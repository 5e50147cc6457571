#!/usr/bin/python3
"""Parses a mail with Python's email package and prints what the tests check, as JSON.
usage: parse_mail.py FILE"""
import json
import sys
from email import policy
from email.parser import BytesParser
from email.utils import parseaddr

with open(sys.argv[1], "rb") as f:
    msg = BytesParser(policy=policy.default).parse(f)

body = msg.get_body(preferencelist=("plain",))
html = msg.get_body(preferencelist=("html",))
attachments = [{"type": p.get_content_type(), "filename": p.get_filename(), "size": len(p.get_payload(decode=True) or b"")}
               for p in msg.iter_attachments()]
name, addr = parseaddr(str(msg["From"]))
print(json.dumps({
    "from_name": name, "from_address": addr,
    "to": str(msg["To"]), "reply_to": str(msg["Reply-To"]) if msg["Reply-To"] else None,
    "subject": str(msg["Subject"]), "message_id": str(msg["Message-ID"]),
    "in_reply_to": str(msg["In-Reply-To"]) if msg["In-Reply-To"] else None,
    "references": str(msg["References"]) if msg["References"] else None,
    "date": str(msg["Date"]), "content_type": msg.get_content_type(),
    "text": body.get_content() if body is not None else None,
    "html": html.get_content() if html is not None and html.get_content_type() == "text/html" else None,
    "attachments": attachments,
    "peer_to": str(msg["X-Peer-To"]), "peer_auth": str(msg["X-Peer-Auth"]), "peer_tls": str(msg["X-Peer-TLS"]),
    "peer_options": str(msg["X-Peer-Mail-Options"]),
    "auto_submitted": str(msg["Auto-Submitted"]) if msg["Auto-Submitted"] else None,
    "defects": [str(d) for d in msg.defects],
}))
