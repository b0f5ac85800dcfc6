#!/usr/bin/env python3
"""refget v2 acceptance (issue 18) against a real `omicsd serve` with auth on:

- a reference registered in the reference store answers GET /sequence/{id} for its MD5, SQ. and
  ga4gh:SQ. ids; the digests equal hashlib's MD5 and SHA-512/24 (base64url) of the upper-cased
  sequence; 50 random start/end intervals and Range requests equal slices of the FASTA;
  /metadata, /service-info; 400/401/404/416 for bad requests;
- CRAMs without an embedded reference (one written by `omicsd align --cram`, one by `samtools view -C`)
  decode with an empty REF_CACHE and REF_PATH pointed at omicsd's refget URL, the token sent by
  htslib from HTS_AUTH_LOCATION, to exactly the records they decode to with the FASTA; without the
  token the decode fails.

Exits 77 (ctest: skipped) when samtools or the shared data are absent.
Usage: tests/service/stores/refget_samtools_test.py --binary build/service/omicsd
"""
import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # tests/service/<layer>/
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import free_port, stop_process  # noqa: E402
TOKEN = "refget-test-client-token"
BASE = "/ga4gh/refget/v2/sequence"


def fasta_sequences(path):
    seqs, name = {}, None
    for line in open(path):
        line = line.strip()
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = []
        elif name:
            seqs[name].append(line.upper())
    return {k: "".join(v) for k, v in seqs.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    data = os.environ.get("OMICSD_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    tiny = os.path.join(data, "na12878-chr22-tiny")
    if not shutil.which("samtools") or not os.path.exists(os.path.join(tiny, "q.fa")):
        print("refget_samtools_test: skipped: samtools or %s missing" % tiny)
        return 77

    tmp = tempfile.mkdtemp(prefix="omicsd-refget-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    fasta = os.path.join(root, "q.fa")
    shutil.copy(os.path.join(tiny, "q.fa"), fasta)
    with open(os.path.join(tmp, "tokens"), "w") as f:
        f.write("%s client\n" % TOKEN)
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN)
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "w")
    daemon = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir",
                               os.path.join(tmp, "data"), "--workers", "0", "--allow-root", root,
                               "--token-file", os.path.join(tmp, "tokens")], stdout=log, stderr=log)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL: " + what)
        return cond

    def get(path, headers=None, token=True):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + TOKEN
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=h,
                                     data=None if "body" not in h else h.pop("body"))
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    try:
        deadline = time.time() + 30
        while daemon.poll() is None and time.time() < deadline:
            try:
                if get("/healthz", token=False)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        req = urllib.request.Request("http://127.0.0.1:%d/v1/references" % port,
                                     data=json.dumps({"name": "q", "uri": "file://" + fasta}).encode(),
                                     headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        ref_id = json.loads(urllib.request.urlopen(req, timeout=30).read())["id"]
        deadline = time.time() + 60
        while True:
            ref = json.loads(get("/v1/references/" + ref_id)[2])
            if ref["state"] != "IMPORTING" or time.time() > deadline:
                break
            time.sleep(0.2)
        if not check(ref["state"] == "ACTIVE", "reference ACTIVE (%s)" % ref.get("failure_reason")):
            return 1

        seqs = fasta_sequences(fasta)
        rng = random.Random(18)
        for s in ref["sequences"]:
            seq = seqs[s["name"]]
            md5 = hashlib.md5(seq.encode()).hexdigest()
            sq = "SQ." + base64.urlsafe_b64encode(hashlib.sha512(seq.encode()).digest()[:24]).decode()
            check(s["md5"] == md5 and s["sha512t24u"] == sq, "digests of %s: %s %s vs %s %s" %
                  (s["name"], s["md5"], s["sha512t24u"], md5, sq))
            for ident in (md5, md5.upper(), sq, "ga4gh:" + sq):
                st, h, b = get("%s/%s" % (BASE, ident))
                check(st == 200 and b.decode() == seq and h.get("Content-Type", "").startswith(
                    "text/vnd.ga4gh.refget.v2.0.0+plain"), "whole sequence by %s" % ident)
            for _ in range(50):
                a = rng.randrange(len(seq))
                b_ = rng.randrange(a, len(seq) + 1)
                st, _, body = get("%s/%s?start=%d&end=%d" % (BASE, sq, a, b_))
                check(st == 200 and body.decode() == seq[a:b_], "start=%d end=%d" % (a, b_))
                st, h, body = get("%s/%s" % (BASE, md5), {"Range": "bytes=%d-%d" % (a, max(a, b_ - 1))})
                check(st == 206 and body.decode() == seq[a:max(a, b_ - 1) + 1] and
                      h.get("Content-Range") == "bytes %d-%d/%d" % (a, max(a, b_ - 1), len(seq)),
                      "Range bytes=%d-%d" % (a, b_ - 1))
            st, _, body = get("%s/%s/metadata" % (BASE, sq))
            meta = json.loads(body)["metadata"]
            check(st == 200 and meta["md5"] == md5 and meta["ga4gh"] == sq and meta["length"] == len(seq), "metadata")
            L = len(seq)
            for path, headers, want in [
                    ("%s/%s?start=5&end=2" % (BASE, md5), {}, 416),
                    ("%s/%s?start=0&end=%d" % (BASE, md5, L + 1), {}, 416),
                    ("%s/%s?start=%d" % (BASE, md5, L), {}, 416),
                    ("%s/%s?start=-1" % (BASE, md5), {}, 400),
                    ("%s/%s?start=x" % (BASE, md5), {}, 400),
                    ("%s/%s?start=1" % (BASE, md5), {"Range": "bytes=1-2"}, 400),
                    ("%s/%s" % (BASE, md5), {"Range": "bytes=%d-%d" % (L, L + 5)}, 416),
                    ("%s/%s" % (BASE, md5), {"Range": "items=1-2"}, 400),
                    ("%s/%s" % (BASE, "0" * 32), {}, 404),
                    ("%s/%s" % (BASE, "SQ.short"), {}, 404),
                    ("%s/%s/metadata" % (BASE, "nonsense"), {}, 404)]:
                st, _, body = get(path, headers)
                check(st == want, "%s %s -> %d (want %d) %r" % (path, headers, st, want, body[:200]))
            check(get("%s/%s" % (BASE, md5), token=False)[0] == 401, "no token: 401")
        st, _, body = get(BASE + "/service-info")
        check(st == 200 and json.loads(body)["type"]["artifact"] == "refget", "service-info")

        # CRAMs whose reference is not embedded: by omicsd align --cram and by samtools.
        bam = os.path.join(tiny, "NA12878.chr22.tiny.bam")
        reads = os.path.join(tmp, "reads.fq")
        with open(reads, "w") as f:
            subprocess.run(["samtools", "fastq", bam], stdout=f, stderr=subprocess.DEVNULL, check=True)
        hidden = os.path.join(tmp, "hidden")  # the FASTA the CRAMs name in UR:, removed before decoding
        os.makedirs(hidden)
        ref_copy = os.path.join(hidden, "q.fa")
        shutil.copy(fasta, ref_copy)
        crams = {"omicsd": os.path.join(tmp, "omicsd.cram"), "samtools": os.path.join(tmp, "samtools.cram")}
        subprocess.run([args.binary, "align", ref_copy, reads, "--cram", "-o", crams["omicsd"], "-t", "2"],
                       check=True, capture_output=True)
        subprocess.run(["samtools", "view", "-C", "-T", ref_copy, "-o", crams["samtools"], bam], check=True)
        expected = {}
        for k, c in crams.items():
            expected[k] = subprocess.run(["samtools", "view", "--no-PG", "-h", "-T", ref_copy, c], capture_output=True,
                                         text=True, check=True).stdout
        shutil.rmtree(hidden)
        url = "http://127.0.0.1:%d%s/%%s" % (port, BASE)
        for k, c in crams.items():
            cache = os.path.join(tmp, "cache-" + k)
            os.makedirs(cache)
            env = dict(os.environ, REF_PATH=url, REF_CACHE=os.path.join(cache, "%2s/%2s/%s"),
                       HTS_AUTH_LOCATION=token_file,
                       HTS_ALLOW_UNENCRYPTED_AUTHORIZATION_HEADER="I understand the risks")
            r = subprocess.run(["samtools", "view", "--no-PG", "-h", c], capture_output=True, text=True, env=env)
            n = sum(1 for line in expected[k].splitlines() if not line.startswith("@"))
            if check(r.returncode == 0 and r.stdout == expected[k] and n > 3000,
                     "%s CRAM through refget: rc %d, %d records expected, same: %s, stderr %s" %
                     (k, r.returncode, n, r.stdout == expected[k], r.stderr[-300:])):
                print("%s CRAM: %d records decoded through refget, identical to the FASTA decode" % (k, n))
            check(any(files for _, _, files in os.walk(cache)), "%s: REF_CACHE filled from refget" % k)
            no_token = dict(env, REF_CACHE=os.path.join(tmp, "cache-none-" + k, "%s"))
            del no_token["HTS_AUTH_LOCATION"]
            r = subprocess.run(["samtools", "view", "--no-PG", "-h", c], capture_output=True, text=True, env=no_token)
            check(r.returncode != 0 and r.stdout != expected[k], "%s: without a token no decode" % k)
        check(daemon.poll() is None, "daemon still serving")

        # --refget-public: the refget routes answer without a token, nothing else does.
        daemon.terminate()
        daemon.wait(30)
        daemon = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir",
                                   os.path.join(tmp, "data"), "--workers", "0", "--allow-root", root,
                                   "--token-file", os.path.join(tmp, "tokens"), "--refget-public"],
                                  stdout=log, stderr=log)
        deadline = time.time() + 30
        while daemon.poll() is None and time.time() < deadline:
            try:
                if get("/healthz", token=False)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        md5 = ref["sequences"][0]["md5"]
        st, _, body = get("%s/%s?start=0&end=10" % (BASE, md5), token=False)
        check(st == 200 and body.decode() == seqs[ref["sequences"][0]["name"]][:10], "--refget-public: no token needed")
        check(get("/v1/references/" + ref_id, token=False)[0] == 401, "--refget-public: other routes keep their scope")
        check(get("/ga4gh/wes/v1/runs", token=False)[0] == 401, "--refget-public: WES keeps its scope")
        check(get("/ga4gh/wes/v1/runs")[0] == 200, "WES with the client token")
    except Exception as e:
        failures.append(repr(e))
        print("FAIL: %r" % e)
    finally:
        stop_process(daemon)
        log.close()
        if failures:
            print("serve.log tail:\n" + "".join(open(os.path.join(tmp, "serve.log")).readlines()[-20:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print("refget_samtools_test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
