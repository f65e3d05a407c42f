"""A token server for the OCI publish tests (the distribution token authentication spec):
GET /token?service=S&scope=repository:NAME:ACTIONS... with Basic USER:PASSWORD answers a JWT
(RS256, signed by `openssl dgst`, the certificate in its x5c header) granting what was asked;
other credentials get 401; repositories listed in DENY_FILE (one a line, read at each request)
are granted nothing. Each request is printed (the scopes, whether it was authorized), never the
credentials. Usage: token_server.py PORT KEY CERT ISSUER USER PASSWORD DENY_FILE"""

import base64
import hmac
import http.server
import json
import subprocess
import sys
import time
import urllib.parse
import uuid

import os

PORT, KEY, CERT, ISSUER, USER, PASSWORD, DENY_FILE = sys.argv[1:8]
with open(CERT) as f:
    X5C = "".join(l.strip() for l in f if l.strip() and not l.startswith("-----"))
WANT = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing.encode(),
                         capture_output=True, check=True).stdout
    return signing + "." + b64url(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        scopes = [s for v in q.get("scope", []) for s in v.split(" ")]
        ok = hmac.compare_digest(self.headers.get("Authorization", ""), WANT)
        print(f"token request service={q.get('service')} scopes={scopes} authorized={ok}",
              flush=True)
        if not ok:
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
            return
        denied = []
        if os.path.exists(DENY_FILE):
            with open(DENY_FILE) as f:
                denied = [l.strip() for l in f if l.strip()]
        access = []
        for s in scopes:
            kind, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if name in denied:
                continue
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": USER, "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(uuid.uuid4()),
                  "access": access}
        token = sign(claims)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler).serve_forever()
