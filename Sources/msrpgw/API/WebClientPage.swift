/// The web client served at `/client` (plain HTML and JavaScript, no build
/// step): it signs in with the API token, creates a session through the API,
/// connects to the MSRP WebSocket listener (RFC 7977), and sends and receives
/// CPIM messages, showing each one's delivery state from its 200, its REPORT and
/// its IMDN; files go in chunks. With the relay role on, the page presents the
/// token at the WebSocket handshake and AUTHs (RFC 7977 §5.3): its path goes
/// through the granted Use-Path. `__MSRPGW_WS__` is replaced by the WebSocket
/// ports and whether to AUTH (`{"ws": 8080, "wss": null, "relay": false}`).
enum WebClientPage {
    static func html(wsPort: Int?, wssPort: Int?, relay: Bool) -> String {
        let ports = "{\"ws\": \(wsPort.map(String.init) ?? "null"), \"wss\": \(wssPort.map(String.init) ?? "null"), \"relay\": \(relay)}"
        return template.replacingOccurrences(of: "__MSRPGW_WS__", with: ports)
    }

    static let template = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>msrpgw web client</title>
<style>
body { font: 15px system-ui, sans-serif; margin: 2em; max-width: 52em; }
fieldset { margin-bottom: 1em; } label { display: inline-block; min-width: 7em; }
input[type=text], input[type=password] { width: 24em; }
#log { border: 1px solid #aaa; min-height: 10em; padding: .5em; }
.msg { margin: .2em 0; } .state { color: #555; font-size: 90%; margin-left: .5em; }
.delivered { color: #070; } .failed { color: #a00; } .system { font-style: italic; }
</style>
</head>
<body>
<h1>msrpgw</h1>
<fieldset id="signin"><legend>Sign in</legend>
<div><label for="token">API token</label><input id="token" type="password" autocomplete="off"></div>
<div><label for="me">You are</label><input id="me" type="text" value="sip:web@example.com"></div>
<div><label for="route">Room or route</label><input id="route" type="text" placeholder="sip:chat@gw.example"></div>
<button id="connect">Connect</button> <span id="status">not connected</span>
</fieldset>
<fieldset><legend>Message</legend>
<div><label for="to">To</label><input id="to" type="text"></div>
<div><label for="text">Text</label><input id="text" type="text"> <button id="send">Send</button></div>
<div><label for="file">File</label><input id="file" type="file"> <button id="sendfile">Send file</button></div>
</fieldset>
<div id="log"></div>
<script>
"use strict";
const PORTS = __MSRPGW_WS__;
const CHUNK = 2048;
const $ = (id) => document.getElementById(id);
const state = { ws: null, myURI: null, toPath: null, sessionID: null, pending: new Map(), sent: new Map(), inbound: new Map() };

function rand(n) { const a = new Uint8Array(n); crypto.getRandomValues(a); return Array.from(a, b => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join(""); }
function setStatus(s) { $("status").textContent = s; }
function show(text, cls, id) {
  const div = document.createElement("div"); div.className = "msg " + (cls || ""); div.textContent = text;
  if (id) { const st = document.createElement("span"); st.className = "state"; st.id = "state-" + id; st.textContent = "sending"; div.appendChild(st); }
  $("log").appendChild(div);
}
function setState(id, s, cls) { const el = $("state-" + id); if (el) { el.textContent = s; if (cls) el.className = "state " + cls; } const m = state.sent.get(id); if (m) m.state = s; }

// One MSRP chunk as text: first line, headers, body, end-line (RFC 4975 §7).
function frame(tid, first, headers, body, flag) {
  let t = "MSRP " + tid + " " + first + "\r\n" + headers.map(h => h[0] + ": " + h[1]).join("\r\n") + "\r\n";
  if (body !== null && body !== undefined) t += "\r\n" + body + "\r\n";
  return t + "-------" + tid + (flag || "$") + "\r\n";
}
function parse(text) {
  const nl = text.indexOf("\r\n"); const start = text.slice(0, nl).split(" ");
  const end = text.lastIndexOf("\r\n-------");
  let headEnd = text.indexOf("\r\n\r\n"); let body = null;
  if (headEnd < 0 || headEnd > end) headEnd = end; else body = text.slice(headEnd + 4, end);
  const headers = {};
  for (const line of text.slice(nl + 2, headEnd).split("\r\n")) { const i = line.indexOf(":"); if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim(); }
  const isResponse = /^\d{3}$/.test(start[2]);
  return { tid: start[1], method: isResponse ? null : start[2], code: isResponse ? +start[2] : null, headers, body };
}
function cpimParts(body) {
  const [outer, rest] = splitOnce(body, "\r\n\r\n"); const [inner, content] = splitOnce(rest || "", "\r\n\r\n");
  const h = {}; for (const l of (outer + "\r\n" + inner).split("\r\n")) { const i = l.indexOf(":"); if (i > 0) h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim(); }
  return { headers: h, content: content || "" };
}
function splitOnce(s, sep) { const i = s.indexOf(sep); return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + sep.length)]; }

// A request and its response. A body given as bytes goes in a binary message
// (a file's chunk cut at any byte); Byte-Range counts bytes either way.
function request(method, headers, body, flag) {
  const tid = rand(12);
  const all = [["To-Path", state.toPath], ["From-Path", state.myURI]].concat(headers);
  return new Promise((resolve) => {
    state.pending.set(tid, resolve);
    if (body instanceof Uint8Array) {
      const enc = new TextEncoder();
      const head = enc.encode(frame(tid, method, all, null, "").replace(/-------\S*\r\n$/, "") + "\r\n");
      const tail = enc.encode("\r\n-------" + tid + (flag || "$") + "\r\n");
      const out = new Uint8Array(head.length + body.length + tail.length);
      out.set(head, 0); out.set(body, head.length); out.set(tail, head.length + body.length);
      state.ws.send(out);
    } else {
      state.ws.send(frame(tid, method, all, body, flag));
    }
  });
}

async function connect() {
  const token = $("token").value, me = $("me").value, route = $("route").value;
  const secure = location.protocol === "https:" || PORTS.ws === null;
  const port = secure ? PORTS.wss : PORTS.ws;
  if (!port) { setStatus("this gateway has no WebSocket listener"); return false; }
  state.sessionID = rand(16);
  state.myURI = "msrp://" + rand(10) + ".invalid:2855/" + state.sessionID + ";ws";
  // With the gateway as our relay the token goes in the handshake (a page cannot
  // set headers on a WebSocket), and AUTH needs no digest.
  const wsURL = (secure ? "wss://" : "ws://") + location.hostname + ":" + port + "/" + (PORTS.relay ? "?access_token=" + encodeURIComponent(token) : "");
  state.ws = new WebSocket(wsURL, "msrp");
  state.ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => { state.ws.onopen = resolve; state.ws.onerror = () => reject(new Error("WebSocket failed")); });
  state.ws.onmessage = (e) => received(typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data));
  state.ws.onclose = (e) => setStatus("disconnected (" + e.code + ")");
  let usePath = "", proto = "TCP/" + (secure ? "WSS" : "WS") + "/MSRP";
  if (PORTS.relay) {
    state.toPath = (secure ? "msrps://" : "msrp://") + location.hostname + ":" + port + ";ws";
    const auth = await request("AUTH", [], null);
    if (auth.code !== 200) { setStatus("AUTH refused: " + auth.code); return false; }
    usePath = auth.headers["use-path"] + " ";
    proto = usePath.startsWith("msrps:") ? "TCP/TLS/MSRP" : "TCP/MSRP";  // the far side reaches us through the relay
    state.relayPath = usePath.trim();
  }
  const sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
    "m=message 2855 " + proto + " *\r\na=accept-types:message/cpim text/plain\r\n" +
    "a=accept-wrapped-types:text/plain message/imdn+xml\r\na=setup:active\r\na=path:" + usePath + state.myURI + "\r\n";
  let url = "/v1/sessions?peer=" + encodeURIComponent(me) + (route ? "&route=" + encodeURIComponent(route) : "");
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/sdp", "Authorization": "Bearer " + token }, body: sdp });
  if (r.status !== 201) { setStatus("session refused: " + r.status + " " + (await r.text())); return false; }
  state.gatewaySession = r.headers.get("Msrpgw-Session-Id");
  const answer = await r.text();
  state.toPath = usePath + answer.split(/\r?\n/).find(l => l.startsWith("a=path:")).slice(7).trim();
  const bound = await request("SEND", [["Message-ID", rand(10)], ["Byte-Range", "1-0/0"]], null);
  setStatus(bound.code === 200 ? "connected" : "bind refused: " + bound.code);
  return bound.code === 200;
}

async function sendText(text, to, contentType) {
  const id = rand(12), imdnID = rand(12);
  const cpim = "From: <" + $("me").value + ">\r\nTo: <" + to + ">\r\nDateTime: " + new Date().toISOString() + "\r\n" +
    "NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: " + imdnID + "\r\nimdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\r\n" +
    "Content-Type: " + (contentType || "text/plain;charset=UTF-8") + "\r\n\r\n" + text;
  state.sent.set(id, { imdnID, state: "sending" }); show("me: " + (contentType ? "(file) " : "") + text.slice(0, 200), "", id);
  const bytes = new TextEncoder().encode(cpim); const total = bytes.length;
  let last = null;
  for (let start = 0; start < total || start === 0; start += CHUNK) {
    const piece = bytes.slice(start, start + CHUNK);
    const end = Math.min(total, start + CHUNK);
    last = await request("SEND", [["Message-ID", id], ["Byte-Range", (start + 1) + "-" + end + "/" + total], ["Success-Report", "yes"],
      ["Failure-Report", "yes"], ["Content-Type", "message/cpim"]], piece, end < total ? "+" : "$");
    if (last.code !== 200) break;
  }
  setState(id, last.code === 200 ? "accepted (200)" : "refused (" + last.code + ")", last.code === 200 ? "" : "failed");
  return id;
}

function received(text) {
  const m = parse(text);
  if (m.code !== null) { const r = state.pending.get(m.tid); if (r) { state.pending.delete(m.tid); r(m); } return; }
  if (m.method === "REPORT") {
    const code = +(m.headers["status"] || "000 0").split(" ")[1]; const id = m.headers["message-id"];
    setState(id, code === 200 ? "delivered (REPORT)" : "failed (REPORT " + code + ")", code === 200 ? "delivered" : "failed");
    return;
  }
  if (m.method === "SEND") {
    state.ws.send(frame(m.tid, "200 OK", [["To-Path", m.headers["from-path"]], ["From-Path", state.myURI]], null));
    const id = m.headers["message-id"]; const range = (m.headers["byte-range"] || "1-*/*").split(/[-\/]/);
    const acc = (state.inbound.get(id) || "") + (m.body || ""); const done = text.trimEnd().endsWith("$");
    if (!done) { state.inbound.set(id, acc); return; }
    state.inbound.delete(id);
    if (!acc) return;
    const ct = (m.headers["content-type"] || "").toLowerCase();
    if (!ct.startsWith("message/cpim")) { show("gateway: " + acc); return; }
    const c = cpimParts(acc);
    if ((c.headers["content-type"] || "").startsWith("message/imdn+xml")) {
      const mid = (c.content.match(/<message-id>([^<]+)<\/message-id>/) || [])[1];
      const status = (c.content.match(/<status>\s*<([a-z-]+)/) || [])[1];
      for (const [sid, s] of state.sent) if (s.imdnID === mid) setState(sid, (status === "delivered" ? "delivered" : status) + " (IMDN)", status === "delivered" ? "delivered" : "failed");
      return;
    }
    const system = (c.headers["to"] || "").includes("system") || /Failure-Report:\s*no/i.test(text);
    show((c.headers["from"] || "?") + ": " + c.content, system ? "system" : "");
  }
}

$("connect").onclick = () => connect().catch(e => setStatus("error: " + e.message));
$("send").onclick = () => sendText($("text").value, $("to").value || $("route").value);
$("sendfile").onclick = async () => { const f = $("file").files[0]; if (f) await sendText(await f.text(), $("to").value || $("route").value, f.type || "text/plain"); };
const fromHash = new URLSearchParams(location.hash.slice(1));
if (fromHash.get("token")) $("token").value = fromHash.get("token");
// For scripted use (the tests drive it through the DevTools protocol).
window.msrpgw = { connect, sendText, state, fill: (o) => { for (const k in o) $(k).value = o[k]; } };
</script>
</body>
</html>
"""#
}
