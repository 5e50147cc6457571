#!/usr/bin/python3
"""An XMPP user for the integration tests: slixmpp (Debian python3-slixmpp)
logged in to a test Prosody on loopback, scripted from the test.

usage: xmpp_user.py JID PASSWORD PORT CMDDIR [--no-receipts]

Prints one JSON object per line on stdout for what it sees:
  {"event": "ready"}
  {"event": "message", "from", "id", "type", "body", "receipt_request", "delay", "origin_id"}
  {"event": "receipt", "from", "id"}          an XEP-0184 receipt for a message we sent
  {"event": "displayed", "from", "id"}        an XEP-0333 displayed marker for a message we sent
  {"event": "error", "from", "id", "condition", "type"}
  {"event": "presence", "from", "type"}
  {"event": "disconnected"}
Commands are JSON files the test drops into CMDDIR (read in name order, then removed):
  {"cmd": "send", "to", "body", "id", "receipt": true, "delay": "2026-...Z"}
  {"cmd": "iq", "to", "xml"}                   a raw <iq/> payload; the answer is printed as {"event": "iq", ...}
  {"cmd": "marker", "to", "id"}              an XEP-0333 displayed marker for message id
  {"cmd": "join", "room", "nick"}, {"cmd": "leave", "room", "nick"}  a MUC room (XEP-0045)
  {"cmd": "groupchat", "room", "body", "id"}
  {"cmd": "quit"}
A message whose body contains "please refuse" is answered with a <forbidden/>
error and no receipt; with --no-receipts no receipt is ever sent.
"""
import asyncio
import json
import os
import sys

import slixmpp
from slixmpp.xmlstream import ET


def out(**event):
    print(json.dumps(event), flush=True)


class User(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cmddir, receipts):
        super().__init__(jid, password)
        self.cmddir = cmddir
        self.receipts = receipts
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0184")
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0203")
        self.register_plugin("xep_0359")
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0333")
        # Receipts are ours to send (or not): see on_message.
        self["xep_0184"].auto_ack = False
        self["xep_0184"].auto_request = False
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        # Errors carry no body: slixmpp gives them an event of their own.
        self.add_event_handler("message_error", self.on_message)
        self.add_event_handler("receipt_received", self.on_receipt)
        self.add_event_handler("disconnected", lambda _: out(event="disconnected"))
        self.add_event_handler("presence", self.on_presence)
        # A marker has no body: its plugin's event, not "message".
        self.add_event_handler("marker_displayed", self.on_message)
        # The MUC plugin takes room presence for itself: its own event.
        self.add_event_handler("groupchat_presence", self.on_presence)

    async def on_start(self, _):
        self.send_presence()
        await self.get_roster()
        out(event="ready")
        asyncio.ensure_future(self.commands())

    def on_message(self, msg):
        shown = msg.xml.find("{urn:xmpp:chat-markers:0}displayed")
        if shown is not None:
            out(event="displayed", id=shown.get("id"), **{"from": str(msg["from"])})
            return
        if msg["type"] == "error":
            err = msg["error"]
            out(event="error", id=msg["id"], condition=err["condition"], type=err["type"], **{"from": str(msg["from"])})
            return
        body = msg["body"]
        if not body:
            return
        delay = msg["delay"]["stamp"] if msg.xml.find("{urn:xmpp:delay}delay") is not None else None
        origin = msg.xml.find("{urn:xmpp:sid:0}origin-id")
        wants = msg.xml.find("{urn:xmpp:receipts}request") is not None
        markable = msg.xml.find("{urn:xmpp:chat-markers:0}markable") is not None
        out(event="message", id=msg["id"], type=msg["type"], body=body, receipt_request=wants, markable=markable,
            delay=str(delay) if delay else None, origin_id=origin.get("id") if origin is not None else None,
            **{"from": str(msg["from"])})
        if "please refuse" in body:
            reply = msg.reply(clear=True)
            reply["id"] = msg["id"]  # an error names the stanza it answers (RFC 6120 §8.3.1)
            reply["type"] = "error"
            reply["error"]["type"] = "cancel"
            reply["error"]["condition"] = "forbidden"
            reply.send()
            return
        if wants and self.receipts:
            ack = self.Message()
            ack["to"] = msg["from"]
            ack["receipt"] = msg["id"]
            ack.send()

    def on_presence(self, p):
        out(event="presence", type=p["type"], **{"from": str(p["from"])})

    def on_receipt(self, msg):
        out(event="receipt", id=msg["receipt"], **{"from": str(msg["from"])})

    async def commands(self):
        while True:
            for name in sorted(os.listdir(self.cmddir)):
                if name.startswith("."):
                    continue  # still being written
                path = os.path.join(self.cmddir, name)
                with open(path) as f:
                    cmd = json.load(f)
                os.remove(path)
                await self.run(cmd)
            await asyncio.sleep(0.05)

    async def run(self, cmd):
        if cmd["cmd"] == "send":
            msg = self.make_message(mto=cmd["to"], mbody=cmd["body"], mtype="chat")
            msg["id"] = cmd["id"]
            if cmd.get("receipt"):
                msg["request_receipt"] = True
            if cmd.get("markable"):
                ET.SubElement(msg.xml, "{urn:xmpp:chat-markers:0}markable")
            if cmd.get("delay"):
                delay = ET.SubElement(msg.xml, "{urn:xmpp:delay}delay")
                delay.set("stamp", cmd["delay"])
            msg.send()
        elif cmd["cmd"] == "iq":
            iq = self.Iq()
            iq["to"] = cmd["to"]
            iq["type"] = "get"
            iq.append(ET.fromstring(cmd["xml"]))
            try:
                answer = await iq.send(timeout=10)
                out(event="iq", type=answer["type"], xml=str(answer))
            except slixmpp.exceptions.IqError as e:
                out(event="iq", type="error", xml=str(e.iq))
        elif cmd["cmd"] == "marker":
            msg = self.make_message(mto=cmd["to"], mtype="chat")
            displayed = ET.SubElement(msg.xml, "{urn:xmpp:chat-markers:0}displayed")
            displayed.set("id", cmd["id"])
            msg.send()
        elif cmd["cmd"] == "join":
            asyncio.ensure_future(self["xep_0045"].join_muc(cmd["room"], cmd["nick"]))
        elif cmd["cmd"] == "leave":
            self["xep_0045"].leave_muc(cmd["room"], cmd["nick"])
        elif cmd["cmd"] == "groupchat":
            msg = self.make_message(mto=cmd["room"], mbody=cmd["body"], mtype="groupchat")
            msg["id"] = cmd["id"]
            msg.send()
        elif cmd["cmd"] == "quit":
            self.disconnect()


def main():
    jid, password, port, cmddir = sys.argv[1:5]
    user = User(jid, password, cmddir, receipts="--no-receipts" not in sys.argv)
    # Loopback test server without TLS (the test's Prosody allows plain auth).
    user.connect(address=("127.0.0.1", int(port)), disable_starttls=True, force_starttls=False)
    user.loop.run_until_complete(user.disconnected)


if __name__ == "__main__":
    main()
