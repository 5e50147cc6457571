#!/usr/bin/env python3
"""A webhook receiver for msrpgw's integration tests.

Verifies every request with the Standard Webhooks reference library
(`pip install standardwebhooks`), records it as one JSON line, and answers by
path:
  /ok          204
  /flaky/N     500 for the first N requests of each webhook-id, then 200
  /bad         400
  /gone        410
  /slow/S      waits S seconds, then 204
Usage: webhook_sink.py PORT SECRET RECORD_FILE
Prints "READY <port>" once listening.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

port, secret, record_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
verifier = Webhook(secret)
lock = threading.Lock()
attempts = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = verifier.verify(body, headers)
            valid = True
        except WebhookVerificationError as e:
            payload, valid = None, False
            sys.stderr.write(f"signature check failed: {e}\n")
        wid = headers.get("webhook-id", "")
        print(f"BEGIN {self.path} {wid}", flush=True)
        parts = self.path.strip("/").split("/")
        with lock:
            attempts[(self.path, wid)] = attempts.get((self.path, wid), 0) + 1
            n = attempts[(self.path, wid)]
        status = 204
        if parts[0] == "flaky":
            status = 500 if n <= int(parts[1] if len(parts) > 1 else 1) else 200
        elif parts[0] == "bad":
            status = 400
        elif parts[0] == "gone":
            status = 410
        elif parts[0] == "slow":
            time.sleep(float(parts[1] if len(parts) > 1 else 2))
        if not valid:
            status = 401
        record = {"path": self.path, "webhook_id": wid, "valid": valid, "status": status,
                  "timestamp": headers.get("webhook-timestamp"), "payload": payload}
        with lock, open(record_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
if len(sys.argv) > 5:  # HTTPS: certificate and key files
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"READY {server.server_address[1]}", flush=True)
server.serve_forever()
