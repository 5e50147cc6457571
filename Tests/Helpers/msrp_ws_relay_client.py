"""A browser-like MSRP client behind a WebSocket MSRP relay (RFC 7977 §5.3):
it connects to the relay with the `msrp` sub-protocol, AUTHs with digest
(user `webuser`, password `secret`) unless a token in the URL (`?access_token=`)
already authenticated it at the handshake, sets up a session through the gateway's HTTP
API with its path behind the relay's Use-Path (its own URI on a .invalid
host), binds, sends one CPIM message asking for a success REPORT, and then
waits for a message the API posts to its session. One line per result.
Usage: msrp_ws_relay_client.py API_URL TOKEN RELAY_WS_URL RELAY_MSRP_URI TO [CA_FILE]   (CA_FILE for wss://)"""
import asyncio
import hashlib
import json
import re
import secrets
import ssl
import sys
import urllib.request

import websockets

import msrp_ws_common

api, token, ws_url, relay_uri, to = sys.argv[1:6]
tls = ssl.create_default_context(cafile=sys.argv[6]) if len(sys.argv) > 6 else None
me = f"msrp://{secrets.token_hex(4)}.invalid:2855/{secrets.token_hex(6)};ws"


def frame(tid, method, to_path, headers=(), body=None):
    return msrp_ws_common.frame(me, tid, method, to_path, headers, body)


def digest(challenge, uri):
    """The Authorization header answering a WWW-Authenticate (MD5, qop=auth)."""
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    cnonce = secrets.token_hex(8)
    ha1 = hashlib.md5(f"webuser:{p['realm']}:secret".encode()).hexdigest()
    ha2 = hashlib.md5(f"AUTH:{uri}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{p['nonce']}:00000001:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (f'Authorization: Digest username="webuser", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
            f'response="{response}", qop=auth, nc=00000001, cnonce="{cnonce}"')


def header(message, name):
    for line in message.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


def create_session(use_path):
    # The far side reaches this client through the relay's TCP listener: TCP/MSRP.
    return msrp_ws_common.create_session(api, token, "sip:carol@example.com", "TCP/MSRP", f"{use_path} {me}")


async def recv_until(ws, want, seconds=10):
    """Messages until one whose first line contains `want` (answering SENDs with 200)."""
    while True:
        m = await asyncio.wait_for(ws.recv(), seconds)
        m = m if isinstance(m, str) else m.decode()
        first = m.split("\r\n", 1)[0]
        parts = first.split(" ")
        if len(parts) == 3 and parts[2] == "SEND":
            await ws.send("\r\n".join([f"MSRP {parts[1]} 200 OK", f"To-Path: {header(m, 'From-Path')}",
                                       f"From-Path: {me}"]) + f"\r\n-------{parts[1]}$\r\n")
        if want in first:
            return m


async def main():
    if "access_token=" in ws_url:
        # A token that is not valid: refused at the handshake.
        try:
            async with websockets.connect(re.sub(r"access_token=[^&]*", "access_token=not-a-valid-token", ws_url), subprotocols=["msrp"], ssl=tls):
                print("BAD-TOKEN accepted", flush=True)
        except websockets.exceptions.InvalidStatusCode as e:
            print("BAD-TOKEN", e.status_code, flush=True)
    async with websockets.connect(ws_url, subprotocols=["msrp"], ssl=tls) as ws:
        await ws.send(frame("auth0001", "AUTH", relay_uri))
        granted = await recv_until(ws, "auth0001")
        print("AUTH1", granted.split("\r\n", 1)[0], flush=True)
        if " 401 " in granted.split("\r\n", 1)[0]:
            challenges = [l.split(":", 1)[1] for l in granted.split("\r\n") if l.lower().startswith("www-authenticate:")]
            md5 = [c for c in challenges if "SHA-256" not in c]  # this client does MD5 (the default) only
            await ws.send(frame("auth0002", "AUTH", relay_uri, [digest(md5[0], relay_uri)]))
            granted = await recv_until(ws, "auth0002")
            print("AUTH2", granted.split("\r\n", 1)[0], flush=True)
        use_path = header(granted, "Use-Path")
        print("USE-PATH", use_path, flush=True)
        gateway_path, session = create_session(use_path)
        to_path = f"{use_path} {gateway_path}"
        await ws.send(frame("bind0001", "SEND", to_path, ["Message-ID: bind0001", "Byte-Range: 1-0/0"]))
        print("BIND", (await recv_until(ws, "bind0001")).split("\r\n", 1)[0], flush=True)
        cpim = (f"From: Carol <sip:carol@example.com>\r\nTo: <{to}>\r\nDateTime: 2026-11-24T10:00:00Z\r\n\r\n"
                "Content-Type: text/plain\r\n\r\nhello through the WebSocket relay")
        await ws.send(frame("send0001", "SEND", to_path, ["Message-ID: msg-wsrelay-1", "Byte-Range: 1-*/*",
                                                          "Success-Report: yes", "Content-Type: message/cpim"], cpim))
        print("SEND", (await recv_until(ws, "send0001")).split("\r\n", 1)[0], flush=True)
        report = await recv_until(ws, " REPORT")
        print("REPORT", header(report, "Status"), header(report, "Message-ID"), flush=True)
        # A message to this session from the API comes the other way through the relay.
        body = json.dumps({"session": session, "text": "hello WebSocket, through the relay"}).encode()
        req = urllib.request.Request(api + "/v1/messages", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        print("API", urllib.request.urlopen(req).status, flush=True)
        incoming = await recv_until(ws, " SEND", 20)
        print("INCOMING-FROM-PATH", header(incoming, "From-Path"), flush=True)
        print("INCOMING", "hello WebSocket, through the relay" in incoming, flush=True)


asyncio.run(main())
