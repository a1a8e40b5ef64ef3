#!/usr/bin/env python3
"""A tiny webhook receiver for examples/fraud/actions.toml (stdlib only).

Prints each alert POSTed to it (JSON arrays, NDJSON or one JSON value) and
answers 200. Checks the bearer token when WEBHOOK_TOKEN is set (the
pipeline sends `Authorization: Bearer <token>` from $WEBHOOK_AUTHORIZATION), and
remembers the Idempotency-Key of each request so a replay after a crash is
acknowledged without printing the alerts twice.

    WEBHOOK_TOKEN=dev-token python3 examples/fraud/webhook_receiver.py [port]
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = os.environ.get("WEBHOOK_TOKEN")
SEEN = set()
# One handler thread per request: the check of SEEN and the printing of a
# request's alerts happen under this lock, so two requests never interleave
# their lines (print writes the text and the newline separately).
LOCK = threading.Lock()


def values(body):
    text = body.decode("utf-8")
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if TOKEN and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b"bad token\n")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key", "")
        try:
            alerts = values(body)
        except (ValueError, UnicodeDecodeError) as e:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(f"not JSON: {e}\n".encode())
            return
        with LOCK:
            if key and key in SEEN:
                lines = [f"replay of {key}: already have these {len(alerts)} alerts"]
            else:
                SEEN.add(key)
                lines = [
                    f"ALERT {a.get('txn_id')} card {a.get('card_id')} amount {a.get('amount')} "
                    f"{a.get('merchant_category')} score {a.get('score', 0):.2f} "
                    f"(is_fraud={a.get('is_fraud')})"
                    for a in alerts
                ]
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    do_PUT = do_POST

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    print(f"webhook receiver on http://127.0.0.1:{port}/alerts", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
