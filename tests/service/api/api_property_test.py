#!/usr/bin/env python3
"""Property test of the HTTP API against a real `omicsd serve` with auth on (issue 12).

Generates requests for every route of docs/openapi.json (path parameters, query parameters, headers
and JSON bodies drawn from the schemas, then mutated: wrong types, huge and deep values, unknown
fields, junk bytes) with a random token of each scope (or none, or a wrong one), and checks the
properties every answer must have, whatever the input:
  - no 5xx (except 503 from /readyz while starting);
  - a 4xx with a JSON content type is {"error": {"code": <status>, "message": <string>}};
  - the daemon keeps answering /healthz and is alive at the end.
Seeded (--seed) and bounded in time (--seconds), so a failure is reproducible: the failing request
is printed. Registered with ctest as ApiPropertyTest (tests/CMakeLists.txt).

Usage: tests/service/api/api_property_test.py --binary build/service/omicsd [--seconds 20] [--seed 12]
"""
import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # tests/service/<layer>/
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import free_port  # noqa: E402
TOKENS = {"client": "tok-client-0123456789", "worker": "tok-worker-0123456789",
          "admin": "tok-admin-0123456789", "metrics": "tok-metrics-0123456789"}


class Generator:
    def __init__(self, rng, spec, known):
        self.rng, self.spec, self.known = rng, spec, known

    def resolve(self, schema):
        while isinstance(schema, dict) and "$ref" in schema:
            name = schema["$ref"].split("/")[-1]
            schema = self.spec["components"]["schemas"][name]
        return schema or {}

    def junk(self, depth=0):
        r = self.rng.random()
        if r < 0.1:
            return None
        if r < 0.2:
            return self.rng.choice([True, False])
        if r < 0.35:
            return self.rng.choice([0, -1, 1, 2**31, -2**63, 2**64, 1e308, 0.5, -0.0])
        if r < 0.6:
            return self.string()
        if r < 0.8 and depth < 3:
            return [self.junk(depth + 1) for _ in range(self.rng.randint(0, 3))]
        if depth < 3:
            return {self.string(): self.junk(depth + 1) for _ in range(self.rng.randint(0, 3))}
        return "x"

    def string(self):
        return self.rng.choice([
            "", "x", "NA12878", "../../etc/passwd", "/etc/passwd", "file:///etc/passwd",
            "sha256:" + "0" * 64, "sha256:xyz", "%00", "a" * self.rng.choice([1, 300, 5000]),
            "chr22:100:A:G", "chr1:1-100", "ref-0123456789abcdef", "rs-0123456789abcdef",
            "http://127.0.0.1:1/x", "http://169.254.169.254/", "https://u:p@h.example/x",
            "\u00e9\u4e2d", "\ud7ff", "{}", "[", "run-" + "f" * 16, self.rng.choice(self.known)])

    def value(self, schema, depth=0):
        schema = self.resolve(schema)
        if self.rng.random() < 0.1:  # a value of some other type
            return self.junk(depth)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return self.value(self.rng.choice(schema[key]), depth)
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        t = schema.get("type", self.rng.choice(["string", "integer", "object"]))
        if t == "object":
            out = {}
            for k, sub in schema.get("properties", {}).items():
                if k in schema.get("required", []) or self.rng.random() < 0.6:
                    out[k] = self.value(sub, depth + 1) if depth < 6 else None
            if self.rng.random() < 0.1:
                out[self.string()] = self.junk()
            return out
        if t == "array":
            lo, hi = schema.get("minItems", 0), min(schema.get("maxItems", 3), 4)
            return [self.value(schema.get("items", {}), depth + 1) for _ in range(self.rng.randint(lo, max(lo, hi)))]
        if t == "integer":
            lo, hi = schema.get("minimum", -10), schema.get("maximum", 10**6)
            return self.rng.choice([lo, hi, lo - 1, hi + 1, self.rng.randint(int(lo), int(hi))])
        if t == "number":
            return self.rng.choice([0, 1.5, -1, 1e300, 20])
        if t == "boolean":
            return self.rng.choice([True, False])
        return self.string()

    def body(self, schema):
        r = self.rng.random()
        if r < 0.05:
            return "[" * 5000 + "]" * 5000
        if r < 0.1:
            return self.rng.choice(["", "{", "1e400", "null", "\xff\xfe", '{"a":' * 100])
        return json.dumps(self.value(schema))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    spec = json.load(open(os.path.join(REPO, "docs", "openapi.json")))

    tmp = tempfile.mkdtemp(prefix="omicsd-api-prop-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    with open(os.path.join(root, "g.fa"), "w") as f:
        f.write(">chr1\n" + "ACGT" * 50 + "\n")
    with open(os.path.join(tmp, "tokens"), "w") as f:
        f.write("".join("%s %s\n" % (t, s) for s, t in TOKENS.items()))
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "w")
    daemon = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir",
                               os.path.join(tmp, "data"), "--workers", "0", "--allow-root", root,
                               "--token-file", os.path.join(tmp, "tokens")], stdout=log, stderr=log)

    def request(method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            c.request(method, path, body=body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body,
                      headers=headers or {})
            r = c.getresponse()
            return r.status, r.getheader("Content-Type", ""), r.read()
        finally:
            c.close()

    failures = []
    try:
        deadline = time.time() + 30
        while True:
            try:
                if request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or daemon.poll() is not None:
                print("daemon did not start:\n" + open(os.path.join(tmp, "serve.log")).read())
                return 1
            time.sleep(0.1)
        # Something to refer to: a run (its id and task ids become candidate path parameters).
        auth = {"Authorization": "Bearer " + TOKENS["client"], "Content-Type": "application/json"}
        st, _, b = request("POST", "/v1/runs", json.dumps(
            {"workflow": "call", "inputs": {"reference": os.path.join(root, "g.fa"), "bam": os.path.join(root, "g.fa")}}),
            auth)
        known = ["run-0123456789abcdef"]
        if st == 201:
            rid = json.loads(b)["id"]
            known += [rid, rid + "%2Fcall", rid + "/call"]
        st, _, b = request("POST", "/ga4gh/tes/v1/tasks", json.dumps(
            {"name": "t", "executors": [{"image": "alpine", "command": ["true"]}]}), auth)
        if st == 200:
            known.append(json.loads(b)["id"])  # a TES task (nothing runs it: no worker has a runtime)
        gen = Generator(rng, spec, known)
        routes = [(p, m, op) for p, ops in spec["paths"].items() for m, op in ops.items()
                  if m in ("get", "post", "put", "delete")]
        n = 0
        end = time.time() + args.seconds
        while time.time() < end:
            path, method, op = rng.choice(routes)
            params = [p for p in op.get("parameters", []) if isinstance(p, dict) and "name" in p]
            url = path
            query = []
            headers = {}
            for p in params:
                v = gen.value(p.get("schema", {"type": "string"}))
                sv = v if isinstance(v, str) else json.dumps(v)
                if p["in"] == "path":
                    sv = rng.choice([sv, rng.choice(known)])
                    url = url.replace("{%s}" % p["name"], quote(sv[:300], "%") or "x")
                elif p["in"] == "query" and rng.random() < 0.7:
                    query.append("%s=%s" % (p["name"], quote(sv[:200], "")))
                elif p["in"] == "header" and rng.random() < 0.5:
                    headers[p["name"]] = "".join(c for c in sv[:200] if 32 <= ord(c) < 127)
            if query:
                url += "?" + "&".join(query)
            scope = rng.choice(["client", "worker", "admin", "metrics", None, "bogus"])
            if scope:
                headers["Authorization"] = "Bearer " + TOKENS.get(scope, "bogus-token")
            body = None
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content or (method in ("post", "put") and rng.random() < 0.3):
                schema = content.get("application/json", {}).get("schema", {"type": "object"})
                body = gen.body(schema)
                headers["Content-Type"] = "application/json"
            elif content:
                body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
                headers["Content-Type"] = "application/octet-stream"
            try:
                status, ctype, data = request(method.upper(), url, body, headers)
            except (OSError, http.client.HTTPException) as e:
                failures.append("%s %s: no answer (%s)" % (method.upper(), url, e))
                break
            n += 1
            what = "%s %s body=%r -> %d %r" % (method.upper(), url, (body or "")[:200], status, data[:300])
            if status >= 500 and not (status == 503 and path == "/readyz"):
                failures.append(what)
            elif 400 <= status < 500 and ctype.startswith("application/json"):
                try:
                    body_json = json.loads(data)
                    if path.startswith("/ga4gh/") and "msg" in body_json:  # the GA4GH error shape
                        if body_json["status_code"] != status or not isinstance(body_json["msg"], str):
                            failures.append("bad GA4GH error body: " + what)
                    elif path.startswith("/beacon/"):  # Beacon v2's error shape
                        err = body_json["error"]
                        if err["errorCode"] != status or not isinstance(err["errorMessage"], str) or \
                                "meta" not in body_json:
                            failures.append("bad Beacon error body: " + what)
                    else:
                        err = body_json["error"]
                        if err["code"] != status or not isinstance(err["message"], str):
                            failures.append("bad error body: " + what)
                except (ValueError, KeyError, TypeError):
                    failures.append("bad error body: " + what)
            if n % 50 == 0 and request("GET", "/healthz")[0] != 200:
                failures.append("/healthz failed after " + what)
            if len(failures) >= 5:
                break
        alive = daemon.poll() is None and request("GET", "/healthz")[0] == 200
        if not alive:
            failures.append("the daemon stopped serving")
        print("api_property_test: %d requests (seed %d), %d failure(s)" % (n, args.seed, len(failures)))
        for f in failures:
            print("  " + f)
        return 1 if failures or n == 0 else 0
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        log.close()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
