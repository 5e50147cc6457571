#!/usr/bin/python3
"""Writes a reply to a mail the way a real mail client would, and sends it.
usage: mail_reply.py STYLE HOST PORT ORIGINAL_FILE [--to ADDRESS] [--message-id ID]
Prints JSON: {"refused": {rcpt: [code, text]}} or {"data": [code, text]}.

Styles: thunderbird, gmail, html-only, outlook, latin1, base64, attachment,
auto-reply, bulk, loop (a Message-ID of the gateway's own), plain."""
import json
import smtplib
import sys
from email import policy
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.image import MIMEImage
from email.parser import BytesParser
from email.utils import formatdate, make_msgid

style, host, port, original_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
args = sys.argv[5:]
opts = dict(zip(args[::2], args[1::2]))

with open(original_path, "rb") as f:
    original = BytesParser(policy=policy.default).parse(f)
body = original.get_body(preferencelist=("plain",))
quoted_text = body.get_content().strip() if body is not None else ""
to = opts.get("--to") or str(original["Reply-To"])
sender_name, sender = "Bob Example", "bob@example.org"
subject = "Re: " + str(original["Subject"])
quote = "\n".join("> " + line for line in quoted_text.splitlines())
when = "Sat, Dec 5, 2026 at 10:00 AM"

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


def headers(m):
    m["From"] = f"{sender_name} <{sender}>"
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = formatdate(localtime=True)
    m["Message-ID"] = opts.get("--message-id") or make_msgid(domain="example.org")
    m["In-Reply-To"] = str(original["Message-ID"])
    m["References"] = str(original["Message-ID"])
    return m


if style in ("thunderbird", "auto-reply", "bulk", "loop", "plain"):
    m = EmailMessage()
    m.set_content(f"Sounds good, see you there.\n\nOn 12/5/26 10:00, Alice wrote:\n{quote}\n", charset="utf-8")
    headers(m)
    if style == "auto-reply":
        m["Auto-Submitted"] = "auto-replied"
    if style == "bulk":
        m["Precedence"] = "bulk"
    if style == "loop":
        del m["Message-ID"]
        m["Message-ID"] = "<event.1234@gw.example>"
elif style == "gmail":
    m = MIMEMultipart("alternative")
    m.attach(MIMEText(f"Yes, noon works!\n\nOn {when} Alice <\nalice@example.com> wrote:\n\n{quote}\n", "plain", "utf-8"))
    html_quote = "<br>".join(quoted_text.splitlines())
    m.attach(MIMEText(f'<div dir="ltr">Yes, noon works!</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
                      f'On {when} Alice &lt;<a href="mailto:alice@example.com">alice@example.com</a>&gt; wrote:<br></div>'
                      f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">{html_quote}</blockquote></div>', "html", "utf-8"))
    headers(m)
elif style == "html-only":
    html_quote = "<br>".join(quoted_text.splitlines())
    m = MIMEText(f"<html><head><style>p {{ margin: 0 }}</style></head><body><p>I&#39;ll be there &amp; bring <b>cake</b>.</p>"
                 f"<p>On {when}, Alice wrote:</p><blockquote type=\"cite\">{html_quote}</blockquote></body></html>", "html", "utf-8")
    headers(m)
elif style == "outlook":
    text = (f"Agreed \u2013 let\u2019s do that.\r\n\r\n________________________________\r\nFrom: Alice <alice@example.com>\r\n"
            f"Sent: Saturday, December 5, 2026 10:00 AM\r\nTo: Bob Example <bob@example.org>\r\nSubject: {original['Subject']}\r\n\r\n{quoted_text}\r\n")
    m = MIMEText(text, "plain", "windows-1252")
    headers(m)
elif style == "latin1":
    m = MIMEText(f"Très bien, à midi.\n\n{quote}\n", "plain", "iso-8859-1")
    headers(m)
elif style == "base64":
    # Python's email sends UTF-8 text as base64.
    m = MIMEText("Ja, gerne! \U0001F600 Grüße\n-- \nBob\nACME GmbH\n", "plain", "utf-8")
    headers(m)
elif style == "attachment":
    m = MIMEMultipart("mixed")
    m.attach(MIMEText(f"Here is the picture.\n\n{quote}\n", "plain", "utf-8"))
    img = MIMEImage(PNG, "png")
    img.add_header("Content-Disposition", "attachment", filename=("utf-8", "", "café.png"))
    m.attach(img)
    headers(m)
else:
    sys.exit(f"unknown style {style}")

data = m.as_bytes(policy=policy.SMTP)
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo("client.example.org")
s.mail(sender)
code, text = s.rcpt(to)
if code >= 400:
    print(json.dumps({"refused": {to: [code, text.decode()]}}))
    s.quit()
    sys.exit(0)
code, text = s.data(data)
print(json.dumps({"data": [code, text.decode()]}))
s.quit()
