"""An MSRP-over-WebSocket client (RFC 7977), as a browser would be: it sets up
a session through the gateway's HTTP API (its path on a .invalid host, transport
ws, setup active), connects with the `msrp` sub-protocol, binds with an empty
SEND, sends one CPIM message and reports what came back. Then the bad cases:
a wrong sub-protocol, two chunks in one message, a chunk split over two
messages, an oversize message. One line per result on stdout.
Usage: msrp_ws_client.py API_URL TOKEN WS_URL TO [CA_FILE]   (CA_FILE for wss://)"""
import asyncio
import secrets
import ssl
import sys

import websockets

import msrp_ws_common

api, token, ws_url, to = sys.argv[1:5]
tls = ssl.create_default_context(cafile=sys.argv[5]) if len(sys.argv) > 5 else None
proto = "TCP/WSS/MSRP" if ws_url.startswith("wss:") else "TCP/WS/MSRP"


def connect(subprotocols, origin="https://chat.example", **kw):
    """As a page from https://chat.example would (the allow-list of the WSS run)."""
    return websockets.connect(ws_url, subprotocols=subprotocols, ssl=tls, origin=origin, **kw)
sid = "ws" + secrets.token_hex(8)
me = f"msrp://{secrets.token_hex(4)}.invalid:2855/{sid};ws"


def create_session():
    return msrp_ws_common.create_session(api, token, "sip:alice@example.com", proto, me)[0]


def frame(tid, method, to_path, headers=(), body=None, flag="$"):
    return msrp_ws_common.frame(me, tid, method, to_path, headers, body, flag)


async def expect_close(ws):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.exceptions.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


async def main():
    path = create_session()
    print("ANSWER-PATH", path, flush=True)
    async with connect(["msrp"]) as ws:
        print("SUBPROTOCOL", ws.subprotocol, flush=True)
        print("CORS", ws.response_headers.get("Access-Control-Allow-Origin"), flush=True)
        await ws.send(frame("bind0001", "SEND", path, ["Message-ID: bind0001", "Byte-Range: 1-0/0"]))
        print("BIND", (await asyncio.wait_for(ws.recv(), 5)).splitlines()[0], flush=True)
        cpim = (f"From: Alice <sip:alice@example.com>\r\nTo: <{to}>\r\nDateTime: 2026-11-24T10:00:00Z\r\n\r\n"
                "Content-Type: text/plain\r\n\r\nhello from a WebSocket")
        await ws.send(frame("send0001", "SEND", path, ["Message-ID: msg-ws-0001", "Byte-Range: 1-*/*",
                                                       "Success-Report: yes", "Content-Type: message/cpim"], cpim))
        got = []
        for _ in range(4):
            try:
                m = await asyncio.wait_for(ws.recv(), 10)
            except asyncio.TimeoutError:
                break
            first = m.splitlines()[0] if isinstance(m, str) else "binary"
            got.append(first)
            if " 200 OK" in first and "send0001" in first:
                print("SEND", first, flush=True)
            if " REPORT" in first:
                status = [l for l in m.splitlines() if l.startswith("Status:")]
                print("REPORT", status[0] if status else "no status", flush=True)
                if isinstance(m, str) and m.count("\r\n-------") == 1:
                    print("REPORT-ONE-MESSAGE", flush=True)
                break
    # A wrong sub-protocol: the handshake is refused.
    try:
        async with connect(["chat"]) as ws:
            print("WRONG-SUBPROTOCOL accepted", flush=True)
    except websockets.exceptions.InvalidStatusCode as e:
        print("WRONG-SUBPROTOCOL", e.status_code, flush=True)
    # A page from another origin: refused (403) when the gateway has an allow-list.
    try:
        async with connect(["msrp"], origin="https://evil.example") as ws:
            print("BAD-ORIGIN accepted", flush=True)
    except websockets.exceptions.InvalidStatusCode as e:
        print("BAD-ORIGIN", e.status_code, flush=True)
    # Two chunks in one message: closed with 1002.
    async with connect(["msrp"]) as ws:
        two = frame("twoa0001", "SEND", path, ["Message-ID: two1", "Byte-Range: 1-0/0"]) + \
              frame("twob0001", "SEND", path, ["Message-ID: two2", "Byte-Range: 1-0/0"])
        await ws.send(two)
        print("TWO-CHUNKS", await expect_close(ws), flush=True)
    # A chunk split over two messages: closed with 1002.
    async with connect(["msrp"]) as ws:
        whole = frame("half0001", "SEND", path, ["Message-ID: half", "Byte-Range: 1-0/0"])
        await ws.send(whole[:20])
        await ws.send(whole[20:])
        print("SPLIT-CHUNK", await expect_close(ws), flush=True)
    # An oversize message: closed with 1009.
    async with connect(["msrp"], max_size=None) as ws:
        big = frame("bigg0001", "SEND", path, ["Message-ID: big", "Byte-Range: 1-*/*", "Content-Type: text/plain"], "x" * (2 << 20))
        try:
            await ws.send(big)
        except websockets.exceptions.ConnectionClosed:
            pass
        print("OVERSIZE", await expect_close(ws), flush=True)


asyncio.run(main())
