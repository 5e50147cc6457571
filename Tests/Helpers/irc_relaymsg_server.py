"""A scripted IRC server offering draft/relaymsg (as Ergo does; none of the
Debian servers does). It registers one client with the capabilities it asks
for, lets it join channels, and answers RELAYMSG as Ergo does with
echo-message: the relayed line comes back as a PRIVMSG from the relayed nick,
tagged `draft/relaymsg=<relayer>`. A relayed nick must hold the separator "/".
Every line the client sends is printed to stdout, prefixed with "C: ".
Usage: irc_relaymsg_server.py PORT"""
import socket
import sys

port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(4)
print("READY", flush=True)
OFFER = b"draft/relaymsg echo-message message-tags server-time"

while True:
    conn, _ = srv.accept()
    buf = b""
    nick = b"bot"
    caps = set()
    negotiating = False  # registration waits for CAP END, as a real server's does
    user_seen = False
    while True:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            print("C: " + line.decode("utf-8", "replace"), flush=True)
            words = line.split(b" ")
            cmd = words[0].upper()
            trailing = line.split(b" :", 1)[1] if b" :" in line else (words[-1] if len(words) > 1 else b"")
            if cmd == b"CAP" and len(words) > 1 and words[1] == b"LS":
                negotiating = True
                conn.sendall(b":relay.test CAP * LS :" + OFFER + b"\r\n")
            elif cmd == b"CAP" and len(words) > 1 and words[1] == b"END":
                negotiating = False
                if user_seen:
                    conn.sendall(b":relay.test 001 " + nick + b" :Welcome\r\n")
            elif cmd == b"CAP" and len(words) > 1 and words[1] == b"REQ":
                caps = set(trailing.split())
                conn.sendall(b":relay.test CAP * ACK :" + trailing + b"\r\n")
            elif cmd == b"NICK":
                nick = words[1]
            elif cmd == b"USER":
                user_seen = True
                if not negotiating:
                    conn.sendall(b":relay.test 001 " + nick + b" :Welcome\r\n")
            elif cmd == b"PING":
                conn.sendall(b":relay.test PONG relay.test :" + trailing + b"\r\n")
            elif cmd == b"JOIN":
                conn.sendall(b":" + nick + b"!u@h JOIN " + words[1] + b"\r\n")
            elif cmd == b"RELAYMSG" and len(words) >= 4:
                target, relayed = words[1], words[2]
                if b"/" not in relayed:
                    conn.sendall(b":relay.test FAIL RELAYMSG INVALID_NICK :Invalid nickname\r\n")
                elif b"echo-message" in caps:
                    conn.sendall(b"@draft/relaymsg=" + nick + b" :" + relayed + b"!relay@relay.test PRIVMSG " + target + b" :" + trailing + b"\r\n")
            elif cmd in (b"PRIVMSG", b"NOTICE") and len(words) >= 3 and b"echo-message" in caps:
                conn.sendall(b":" + nick + b"!u@h " + cmd + b" " + words[1] + b" :" + trailing + b"\r\n")
    conn.close()
