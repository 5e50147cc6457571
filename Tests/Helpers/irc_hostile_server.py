"""A scripted IRC server for the bad-input tests: it registers one client, then
sends hostile lines (garbage, an over-long line, invalid UTF-8, unknown
numerics, NUL bytes, a line without a command) between two good PRIVMSGs,
and answers PING. Usage: irc_hostile_server.py PORT"""
import socket
import sys

port = int(sys.argv[1])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
print("READY", flush=True)
conn, _ = srv.accept()
buf = b""
nick = "bot"
registered = False
while not registered:
    data = conn.recv(4096)
    if not data:
        sys.exit(0)
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        words = line.strip().split(b" ")
        if words[0] == b"CAP" and len(words) > 1 and words[1] == b"LS":
            conn.sendall(b":hostile.test CAP * LS :server-time\r\n")
        elif words[0] == b"CAP" and len(words) > 1 and words[1] == b"REQ":
            conn.sendall(b":hostile.test CAP * ACK :server-time\r\n")
        elif words[0] == b"NICK":
            nick = words[1].decode()
        elif words[0] == b"USER":
            registered = True
conn.sendall((":hostile.test 001 %s :Welcome\r\n" % nick).encode())
hostile = [
    b":alice!a@h PRIVMSG #ops :first",
    b"\x00\x01\x02 garbage \xff\xfe",
    b"   ",
    b"@a=b :only.a.source",
    b":x PRIV@MSG #ops :bad command",
    b"PRIVMSG #ops :" + b"A" * 20000,
    b":hostile.test 999 " + nick.encode() + b" :an unknown numeric",
    b":hostile.test 042 " + nick.encode() + b" :another one",
    b"CMD " + b" ".join(b"p%d" % i for i in range(40)),
    b":bob!b@h PRIVMSG #ops :caf\xe9 cr\xe8me",
    b":alice!a@h PRIVMSG #ops :last",
]
conn.sendall(b"\r\n".join(hostile) + b"\r\n")
# Answer PINGs until the client leaves.
buf = b""
while True:
    data = conn.recv(4096)
    if not data:
        break
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        if line.startswith(b"PING"):
            conn.sendall(b":hostile.test PONG hostile.test " + line.split(b" ", 1)[1].strip() + b"\r\n")
        if line.startswith(b"QUIT"):
            sys.exit(0)
