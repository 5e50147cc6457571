"""What the MSRP-over-WebSocket test clients share: a chunk as text, and a
session set up through the gateway's HTTP API (its path on a .invalid host)."""
import urllib.parse
import urllib.request


def frame(me, tid, method, to_path, headers=(), body=None, flag="$"):
    """One MSRP chunk from `me` (RFC 4975 §7), as one WebSocket message carries it."""
    lines = [f"MSRP {tid} {method}", f"To-Path: {to_path}", f"From-Path: {me}"] + list(headers)
    text = "\r\n".join(lines) + "\r\n"
    if body is not None:
        text += "\r\n" + body + "\r\n"
    return text + f"-------{tid}{flag}\r\n"


def create_session(api, token, peer, proto, path):
    """POST /v1/sessions with an offer (`proto` on the m-line, `path` in a=path,
    setup active): the gateway's a=path and its session id."""
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
        f"m=message 2855 {proto} *\r\na=accept-types:message/cpim text/plain\r\n"
        "a=accept-wrapped-types:text/plain message/imdn+xml\r\na=setup:active\r\n"
        f"a=path:{path}\r\n"
    )
    req = urllib.request.Request(
        f"{api}/v1/sessions?peer={urllib.parse.quote(peer)}", data=sdp.encode(), method="POST",
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req) as r:
        answer, session = r.read().decode(), r.headers["Msrpgw-Session-Id"]
    return [l[len("a=path:"):].strip() for l in answer.splitlines() if l.startswith("a=path:")][0], session
