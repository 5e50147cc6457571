"""Drives the gateway's web client page in headless Chromium through the
DevTools protocol (--remote-debugging-pipe: JSON commands on fd 3, replies and
events on fd 4, each NUL-terminated): sign in, connect over WSS, send a message
and wait for its delivery state, receive a message posted to the API, save a
screenshot. With ROOM, a second page joins that chat room (RFC 7701), says
hello to it and waits for an answer from another participant. One result line
per step on stdout.
Usage: chromium_web_client.py API_URL TOKEN TO CERT_PEM SCREENSHOT_PNG [ROOM]"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

api, token, to, cert, shot = sys.argv[1:6]
room = sys.argv[6] if len(sys.argv) > 6 else None

spki = subprocess.run(
    "openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64" % cert,
    shell=True, check=True, capture_output=True, text=True).stdout.strip()

cmd_r, cmd_w = os.pipe()
res_r, res_w = os.pipe()


def child_fds():
    # Copies first: a pipe end may already be fd 3 or 4, and dup2 onto itself
    # would leave it close-on-exec. dup2 makes the new fds inheritable.
    a, b = os.dup(cmd_r), os.dup(res_w)
    os.dup2(a, 3)
    os.dup2(b, 4)


home = tempfile.mkdtemp(prefix="msrpgw-chromium-")
browser = subprocess.Popen(
    ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--window-size=900,700",
     "--user-data-dir=" + home + "/profile", "--ignore-certificate-errors-spki-list=" + spki, "about:blank"],
    preexec_fn=child_fds, close_fds=False,
    env=dict(os.environ, HOME=home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(cmd_r)
os.close(res_w)
next_id = 0
buffered = b""
events = []


def read_message():
    global buffered
    while b"\0" not in buffered:
        chunk = os.read(res_r, 65536)
        if not chunk:
            raise SystemExit("chromium closed the pipe")
        buffered += chunk
    raw, buffered = buffered.split(b"\0", 1)
    return json.loads(raw)


def send(method, params=None, session=None, timeout=30):
    global next_id
    next_id += 1
    msg = {"id": next_id, "method": method, "params": params or {}}
    if session:
        msg["sessionId"] = session
    os.write(cmd_w, json.dumps(msg).encode() + b"\0")
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = read_message()
        if m.get("id") == next_id:
            if "error" in m:
                raise SystemExit("%s failed: %s" % (method, m["error"]))
            return m.get("result", {})
        events.append(m)
    raise SystemExit(method + " timed out")


def evaluate(session, expression, timeout=30):
    r = send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session, timeout)
    if "exceptionDetails" in r:
        raise SystemExit("page error: %s" % json.dumps(r["exceptionDetails"])[:800])
    return r.get("result", {}).get("value")


def open_page():
    """A new tab with the web client loaded (signed in through the URL's #token)."""
    target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
    page = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    send("Runtime.enable", session=page)
    send("Page.enable", session=page)
    send("Page.navigate", {"url": api + "/client#token=" + token}, page)
    deadline = time.time() + 15
    while time.time() < deadline and evaluate(page, "typeof window.msrpgw") != "object":
        time.sleep(0.1)
    return page


def delivery_state(page, sent_id, seconds=15):
    """The page's state for a message it sent, once a REPORT or IMDN has set it."""
    deadline = time.time() + seconds
    state = None
    while time.time() < deadline:
        state = evaluate(page, "msrpgw.state.sent.get(%s).state" % json.dumps(sent_id))
        if "REPORT" in state or "IMDN" in state:
            break
        time.sleep(0.1)
    return state


def log_shows(page, text, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if evaluate(page, "document.getElementById('log').textContent.includes(%s)" % json.dumps(text)):
            return True
        time.sleep(0.1)
    return False


try:
    session = open_page()
    print("PAGE", evaluate(session, "document.title"), flush=True)
    connected = evaluate(session, "msrpgw.fill({me: 'sip:carol@example.com'}), msrpgw.connect()")
    print("CONNECTED", connected, evaluate(session, "document.getElementById('status').textContent"), flush=True)
    print("RELAY-PATH", evaluate(session, "window.msrpgw.state.relayPath || 'none'"), flush=True)
    gw_session = evaluate(session, "msrpgw.state.gatewaySession")
    sent = evaluate(session, "msrpgw.sendText('hello from Chromium ✓', %s)" % json.dumps(to))
    print("SENT", delivery_state(session, sent), flush=True)
    # A file goes in chunks of 2 KiB (binary WebSocket messages, Byte-Range in bytes).
    big = "".join("line %03d of a file sent in chunks ✓\n" % i for i in range(200))
    file_id = evaluate(session, "msrpgw.sendText(%s, %s, 'text/plain')" % (json.dumps(big), json.dumps(to)))
    print("FILE", len(big.encode()), delivery_state(session, file_id), flush=True)
    body = json.dumps({"session": gw_session, "text": "hello browser, from the API"}).encode()
    req = urllib.request.Request(api + "/v1/messages", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    print("API", urllib.request.urlopen(req).status, flush=True)
    if log_shows(session, "hello browser, from the API"):
        print("RECEIVED yes", flush=True)
    png = send("Page.captureScreenshot", {"format": "png"}, session)["data"]
    with open(shot, "wb") as f:
        f.write(base64.b64decode(png))
    print("SCREENSHOT", shot, flush=True)
    print("LOG", evaluate(session, "document.getElementById('log').innerText").replace("\n", " | "), flush=True)
    if room:
        # Another page, another participant: it joins the room through the route field.
        page = open_page()
        joined = evaluate(page, "msrpgw.fill({me: 'sip:dora@example.com', route: %s}), msrpgw.connect()" % json.dumps(room))
        print("ROOM-JOINED", joined, flush=True)
        # The room's 200 is all a room message gets (RFC 7701: reports come from the
        # recipients, and the room's copies owe the sender nothing more).
        said = evaluate(page, "msrpgw.sendText('hello room, from the browser', %s)" % json.dumps(room))
        state = evaluate(page, "msrpgw.state.sent.get(%s).state" % json.dumps(said))
        print("ROOM-SENT", state, flush=True)
        if log_shows(page, "hello browser, from the room", seconds=20):
            print("ROOM-RECEIVED yes", flush=True)
finally:
    browser.kill()
    browser.wait()
