#!/usr/bin/python3
"""The demo's sign-in: what the app's auth service (Supabase Auth in the
seed) does for the module, and nothing more.

  POST /demo/signin   form "user" -> an HS256 JWT signed with the secret in
                      $DEMO_JWT_SECRET, set as the "demo_session" cookie
                      (HttpOnly, Secure, SameSite=Lax), 303 to /
  POST /demo/signout  the cookie cleared, 303 to /
  GET  /demo/session  200 {"user": sub} for a valid cookie, else 401
                      {"user": null}; the page asks it who is signed in

The token has the claims a Supabase session has: sub, aud "authenticated",
iat and exp (8 hours).  nginx checks it, not this script: the demo's
nginx.conf has tiktok_jwt with the same secret and cookie name.

Run (scripts/demo.sh does):  DEMO_JWT_SECRET=... signin.py PORT READY_FILE
It listens on 127.0.0.1 only; the demo's nginx proxies /demo/ to it.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import time
import urllib.parse

COOKIE = "demo_session"
AUDIENCE = "authenticated"
LIFETIME = 8 * 3600
USER_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(secret, user):
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "aud": AUDIENCE, "iat": now,
                              "exp": now + LIFETIME,
                              "role": "authenticated"}).encode())
    signing = (head + "." + body).encode()
    sig = hmac.new(secret, signing, hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def subject(secret, token):
    """The token's sub when it is ours and current, else None."""
    try:
        head, body, sig = token.split(".")
        want = hmac.new(secret, (head + "." + body).encode(),
                        hashlib.sha256).digest()
        if not hmac.compare_digest(unb64url(sig), want):
            return None
        if json.loads(unb64url(head)).get("alg") != "HS256":
            return None
        claims = json.loads(unb64url(body))
    except (ValueError, AttributeError):
        return None
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and sub else None


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "demo-signin"
    secret = b""

    def log_message(self, fmt, *args):
        sys.stderr.write("signin: %s\n" % (fmt % args))

    def reply(self, status, obj=None, headers=()):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def cookie(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return ""

    def do_GET(self):
        if self.path != "/demo/session":
            return self.reply(404, {"error": "not found"})
        user = subject(self.secret, self.cookie())
        if user is None:
            return self.reply(401, {"user": None})
        return self.reply(200, {"user": user})

    def do_POST(self):
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > 4096:
            return self.reply(400, {"error": "a short form is expected"})
        form = urllib.parse.parse_qs(self.rfile.read(int(length))
                                     .decode("utf-8", "replace"))
        if self.path == "/demo/signout":
            return self.reply(303, headers=[
                ("Location", "/"),
                ("Set-Cookie", "%s=; Path=/; Max-Age=0; HttpOnly; Secure; "
                               "SameSite=Lax" % COOKIE)])
        if self.path != "/demo/signin":
            return self.reply(404, {"error": "not found"})
        user = (form.get("user") or [""])[0].strip()
        if not USER_RE.fullmatch(user):
            return self.reply(400, {"error": "user must be 1-64 letters, "
                                             "digits or ._@-"})
        return self.reply(303, headers=[
            ("Location", "/"),
            ("Set-Cookie", "%s=%s; Path=/; Max-Age=%d; HttpOnly; Secure; "
                           "SameSite=Lax" % (COOKIE, mint(self.secret, user),
                                             LIFETIME))])


def main(argv):
    secret = os.environ.get("DEMO_JWT_SECRET", "").encode()
    if len(secret) < 32 or len(argv) != 3:
        sys.stderr.write("usage: DEMO_JWT_SECRET=<32+ chars> signin.py "
                         "PORT READY_FILE\n")
        return 2
    Handler.secret = secret
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(argv[1])),
                                             Handler)
    with open(argv[2], "w") as f:
        f.write("%d\n" % os.getpid())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
