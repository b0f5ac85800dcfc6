#!/usr/bin/env python3
"""htsget 1.3 acceptance (issue 18) against a real `omicsd serve` with auth on, read by a real client
(the `htsget` package from PyPI, pinned, installed into a venv in the build dir):

- a germline run aligns and calls na12878-chr22-tiny; for 20 random regions of its BAM and of its
  VCF, what the htsget client reassembles (header blocks + index-chosen BGZF blocks + EOF) is indexed
  with samtools/tabix and queried for the region: exactly the records `samtools view BAM region` /
  `bcftools view -r region VCF` give on the whole output (htsget may send extra records from the same
  BGZF blocks; the region query filters them);
- whole-file requests decode to every record; POST with several regions; class=header answers the
  header only (samtools view -H equal, no records); regions at the contig's ends;
- errors in htsget's shape: a start outside the contig or start > end (InvalidRange 400), an unknown
  referenceName or id (NotFound 404), CRAM/BCF (UnsupportedFormat 400), bad fields/tags
  (InvalidInput 400), no token (InvalidAuthentication 401), a worker-only token (PermissionDenied 403).

Exits 77 (ctest: skipped) when samtools/bcftools, the shared data or pip are absent.
Usage: tests/service/stores/htsget_client_test.py --binary build/service/omicsd --venv build/htsget-venv
"""
import argparse
import base64
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

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import free_port, pinned_venv, stop_process  # noqa: E402
TOKEN = "htsget-test-client-token"
WORKER_TOKEN = "htsget-test-worker-token"
HTSGET_VERSION = "0.2.6"
BASE = "/ga4gh/htsget/v1"
SKIP = 77


def run(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kw).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--venv", required=True)
    args = ap.parse_args()
    data = os.environ.get("OMICSD_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    tiny = os.path.join(data, "na12878-chr22-tiny")
    if not (shutil.which("samtools") and shutil.which("bcftools") and shutil.which("tabix")) or \
            not os.path.exists(os.path.join(tiny, "NA12878.chr22.tiny.bam")):
        print("htsget_client_test: skipped: samtools/bcftools/tabix or %s missing" % tiny)
        return SKIP
    if pinned_venv(args.venv, "htsget", HTSGET_VERSION, "htsget_client_test") is None:
        return SKIP
    client = os.path.join(args.venv, "bin", "htsget")

    tmp = tempfile.mkdtemp(prefix="omicsd-htsget-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    fasta = os.path.join(root, "q.fa")
    shutil.copy(os.path.join(tiny, "q.fa"), fasta)
    reads = os.path.join(root, "reads.fq")
    with open(reads, "w") as f:
        subprocess.run(["samtools", "fastq", os.path.join(tiny, "NA12878.chr22.tiny.bam")], stdout=f,
                       stderr=subprocess.DEVNULL, check=True)
    with open(os.path.join(tmp, "tokens"), "w") as f:
        f.write("%s client\n%s worker\n" % (TOKEN, WORKER_TOKEN))
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "serve.log"), "w")
    serve = [args.binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir", os.path.join(tmp, "data"),
             "--workers", "1", "--allow-root", root, "--token-file", os.path.join(tmp, "tokens")]
    daemon = subprocess.Popen(serve, stdout=log, stderr=log)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    def request(method, path, body=None, token=TOKEN, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(url + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def fetch_ticket(ticket):
        """Reassembles a ticket's URLs as a client does (data: URLs and ranged GETs)."""
        out = b""
        for u in ticket["htsget"]["urls"]:
            if u["url"].startswith("data:"):
                out += base64.b64decode(u["url"].split(",", 1)[1])
            else:
                st, b = request("GET", u["url"][len(url):], token=None, headers=u.get("headers", {}))
                assert st in (200, 206), (st, b[:200])
                out += b
        return out

    def wait_ready():
        for _ in range(300):
            if daemon.poll() is not None:
                raise RuntimeError("omicsd serve exited: see %s" % log.name)
            try:
                if request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)

    try:
        wait_ready()
        st, b = request("POST", "/v1/runs", json.dumps(
            {"workflow": "germline", "sample": "NA12878", "inputs": {"reference": fasta, "reads": reads}}).encode())
        assert st == 201, (st, b)
        run_id = json.loads(b)["id"]
        for _ in range(1200):
            st, b = request("GET", "/v1/runs/" + run_id)
            state = json.loads(b)["state"]
            if state in ("COMPLETE", "FAILED", "CANCELED"):
                break
            time.sleep(0.25)
        assert state == "COMPLETE", json.loads(b)

        # The whole outputs, as the truth the reassembled slices are compared to.
        whole_bam, whole_vcf = os.path.join(tmp, "whole.bam"), os.path.join(tmp, "whole.vcf.gz")
        for name, path in (("bam", whole_bam), ("vcf", whole_vcf)):
            st, b = request("GET", "/v1/runs/%s/outputs/%s" % (run_id, name))
            assert st == 200, (name, st)
            with open(path, "wb") as f:
                f.write(b)
        run("samtools", "index", whole_bam)
        run("tabix", "-p", "vcf", whole_vcf)
        contig_len = int(run("samtools", "view", "--no-PG", "-H", whole_bam).split("SN:q\tLN:")[1].split()[0])
        st, b = request("GET", "/v1/runs/%s/outputs/bam" % run_id, headers={"Range": "bytes=0-1"})
        check(st == 206, "the BAM output answers Range with 206")

        def htsget_client(endpoint, out, region=None, fmt=None):
            argv = [client, url + BASE + "/" + endpoint, "-O", out, "-b", TOKEN, "-M", "0"]
            if region:
                argv += ["-r", region[0], "-s", str(region[1]), "-e", str(region[2])]
            if fmt:
                argv += ["-f", fmt]
            r = subprocess.run(argv, capture_output=True, text=True)
            return r.returncode, r.stderr

        def reads_equal(reassembled, region, label):
            run("samtools", "index", reassembled)
            reg = "q:%d-%d" % (region[1] + 1, region[2])
            got = run("samtools", "view", reassembled, reg)
            want = run("samtools", "view", whole_bam, reg)
            check(got == want and run("samtools", "view", "--no-PG", "-H", reassembled) == run("samtools", "view", "--no-PG", "-H", whole_bam),
                  "%s: reassembled reads of %s differ (%d vs %d lines)" % (label, reg, got.count("\n"), want.count("\n")))
            return want.count("\n")

        def variants_equal(reassembled, region, label):
            run("tabix", "-f", "-p", "vcf", reassembled)
            reg = "q:%d-%d" % (region[1] + 1, region[2])
            got = run("bcftools", "view", "--no-version", "-H", "-r", reg, reassembled)
            want = run("bcftools", "view", "--no-version", "-H", "-r", reg, whole_vcf)
            check(got == want and run("bcftools", "view", "--no-version", "-h", reassembled) == run("bcftools", "view", "--no-version", "-h", whole_vcf),
                  "%s: reassembled variants of %s differ (%d vs %d lines)" % (label, reg, got.count("\n"), want.count("\n")))
            return want.count("\n")

        # 20 random regions, plus both contig ends, through the real client.
        rng = random.Random(18)
        regions = []
        for _ in range(20):
            a = rng.randrange(0, contig_len - 1)
            regions.append(("q", a, min(contig_len, a + rng.choice([1, 50, 400, 2000, 6000]))))
        regions += [("q", 0, 150), ("q", contig_len - 150, contig_len), ("q", contig_len - 1, contig_len)]
        total_reads = total_vars = 0
        for i, region in enumerate(regions):
            out = os.path.join(tmp, "r%d.bam" % i)
            rc, err = htsget_client("reads/" + run_id, out, region)
            check(rc == 0, "htsget client reads %s: %s" % (region, err[-300:]))
            if rc == 0:
                total_reads += reads_equal(out, region, "reads")
            out = os.path.join(tmp, "v%d.vcf.gz" % i)
            rc, err = htsget_client("variants/" + run_id + ".vcf.gz", out, region, "VCF")
            check(rc == 0, "htsget client variants %s: %s" % (region, err[-300:]))
            if rc == 0:
                total_vars += variants_equal(out, region, "variants")
        check(total_reads > 0 and total_vars > 0, "the regions hold reads and variants")

        # (That a small region is answered with a part of a file is checked on the 100-kb hg001 BAM by
        # test_htsget_slices: this 12-kb contig lies in one 16-kb BAI bin, so every region reads it all.)

        # The whole files through the client.
        out = os.path.join(tmp, "all.bam")
        rc, err = htsget_client("reads/%s.bam" % run_id, out)
        check(rc == 0 and run("samtools", "view", out) == run("samtools", "view", whole_bam), "whole BAM via htsget")
        out = os.path.join(tmp, "all.vcf.gz")
        rc, err = htsget_client("variants/" + run_id, out)
        check(rc == 0 and run("bcftools", "view", "--no-version", out) == run("bcftools", "view", "--no-version", whole_vcf), "whole VCF via htsget")

        # POST with several regions: their union.
        two = [("q", 1000, 1500), ("q", 9000, 9400)]
        st, b = request("POST", BASE + "/reads/" + run_id, json.dumps(
            {"format": "BAM", "regions": [{"referenceName": r[0], "start": r[1], "end": r[2]} for r in two]}).encode())
        check(st == 200, "POST reads: %d %s" % (st, b[:200]))
        if st == 200:
            out = os.path.join(tmp, "post.bam")
            with open(out, "wb") as f:
                f.write(fetch_ticket(json.loads(b)))
            for r in two:
                reads_equal(out, r, "POST")

        # An end past the contig is read as the contig's end.
        st, b = request("GET", BASE + "/reads/%s?referenceName=q&start=%d&end=%d" % (run_id, contig_len - 100,
                                                                                   contig_len + 1000))
        check(st == 200, "end past the contig: %d" % st)
        if st == 200:
            out = os.path.join(tmp, "past_end.bam")
            with open(out, "wb") as f:
                f.write(fetch_ticket(json.loads(b)))
            check(reads_equal(out, ("q", contig_len - 100, contig_len), "end past the contig") > 0,
                  "reads at the contig's end")

        # referenceName=*: the unplaced reads (those samtools view lists for region '*').
        st, b = request("GET", BASE + "/reads/%s?referenceName=*" % run_id)
        check(st == 200, "reads referenceName=*: %d" % st)
        if st == 200:
            out = os.path.join(tmp, "unplaced.bam")
            with open(out, "wb") as f:
                f.write(fetch_ticket(json.loads(b)))
            run("samtools", "index", out)
            want = run("samtools", "view", whole_bam, "*")
            check(run("samtools", "view", out, "*") == want, "referenceName=*: the unplaced reads (%d)" % want.count("\n"))
            print("htsget_client_test: %d unplaced reads" % want.count("\n"))
        error_path = BASE + "/reads/%s?referenceName=*&start=1" % run_id
        st, _ = request("GET", error_path)
        check(st == 400, "referenceName=* with start: 400")

        # Errors in htsget's shape.
        def error(method, path, status, name, body=None, token=TOKEN):
            st, b = request(method, path, body, token=token)
            try:
                e = json.loads(b)["htsget"]
                ok = st == status and e["error"] == name and e["message"]
            except (ValueError, KeyError, TypeError):
                ok = False
            check(ok, "%s %s -> %d %s, got %d %s" % (method, path, status, name, st, b[:200]))

        # An unaligned read set (rs-...): all its reads through the client, equal to the read set's BAM
        # export; a region of it is NotFound (it has no references), referenceName=* is all of it.
        st, b = request("POST", "/v1/readsets", json.dumps({"sample_id": "NA12878", "sources": [reads]}).encode())
        check(st == 202, "read set registered: %d %s" % (st, b[:200]))
        rs_id = json.loads(b)["id"]
        for _ in range(600):
            rs_state = json.loads(request("GET", "/v1/readsets/" + rs_id)[1])["state"]
            if rs_state in ("ACTIVE", "FAILED"):
                break
            time.sleep(0.1)
        check(rs_state == "ACTIVE", "read set ACTIVE")
        st, b = request("GET", "/v1/readsets/%s/content?format=bam" % rs_id)
        export = os.path.join(tmp, "export.bam")
        with open(export, "wb") as f:
            f.write(b)
        out = os.path.join(tmp, "rs.bam")
        rc, err = htsget_client("reads/" + rs_id, out)
        want = run("samtools", "view", export)
        check(rc == 0 and run("samtools", "view", out) == want and want.count("\n") > 3000 and
              run("samtools", "view", "--no-PG", "-H", out) == run("samtools", "view", "--no-PG", "-H", export),
              "read set via htsget: %s" % err[-300:])
        st, b = request("GET", BASE + "/reads/%s?referenceName=*" % rs_id)
        check(st == 200 and fetch_ticket(json.loads(b)) == open(out, "rb").read(), "read set referenceName=*")
        error("GET", BASE + "/reads/%s?referenceName=q&start=0&end=10" % rs_id, 404, "NotFound")
        error("GET", BASE + "/reads/rs-0123456789abcdef", 404, "NotFound")

        # class=header: the header only, GET and POST.
        for method, path, body in (("GET", BASE + "/reads/%s?class=header" % run_id, None),
                                   ("POST", BASE + "/reads/" + run_id, json.dumps({"class": "header"}).encode())):
            st, b = request(method, path, body)
            check(st == 200, "%s header ticket: %d" % (method, st))
            if st == 200:
                t = json.loads(b)
                check(all(u["class"] == "header" for u in t["htsget"]["urls"]), "header ticket classes")
                out = os.path.join(tmp, "header.bam")
                with open(out, "wb") as f:
                    f.write(fetch_ticket(t))
                check(run("samtools", "view", "--no-PG", "-H", out) == run("samtools", "view", "--no-PG", "-H", whole_bam) and
                      run("samtools", "view", "--no-PG", "-c", out).strip() == "0", "%s class=header: the header, no records" % method)
        st, b = request("GET", BASE + "/variants/%s?class=header" % run_id)
        if st == 200:
            out = os.path.join(tmp, "header.vcf.gz")
            with open(out, "wb") as f:
                f.write(fetch_ticket(json.loads(b)))
            check(run("bcftools", "view", "--no-version", "-h", out) == run("bcftools", "view", "--no-version", "-h", whole_vcf) and
                  run("bcftools", "view", "--no-version", "-H", out) == "", "variants class=header")
        else:
            check(False, "variants class=header: %d" % st)

        # fields / tags accepted (whole records answered, as the spec allows).
        st, b = request("GET", BASE + "/reads/%s?referenceName=q&start=100&end=200&fields=QNAME,POS&tags=RG&notags=NM"
                        % run_id)
        check(st == 200, "fields/tags/notags accepted: %d" % st)

        R = BASE + "/reads/" + run_id
        error("GET", R + "?referenceName=q&start=%d&end=%d" % (contig_len + 10, contig_len + 20), 400, "InvalidRange")
        error("GET", R + "?referenceName=q&start=500&end=100", 400, "InvalidRange")
        error("GET", R + "?referenceName=chrNope", 404, "NotFound")
        error("GET", BASE + "/variants/%s?referenceName=chrNope" % run_id, 404, "NotFound")
        error("GET", BASE + "/variants/%s?referenceName=q&start=%d" % (run_id, contig_len + 5), 400, "InvalidRange")
        error("GET", BASE + "/reads/run-0123456789abcdef", 404, "NotFound")
        error("GET", R + "?format=CRAM", 400, "UnsupportedFormat")
        error("GET", BASE + "/variants/%s?format=BCF" % run_id, 400, "UnsupportedFormat")
        error("GET", R + "?format=SAM", 400, "UnsupportedFormat")
        error("GET", R + "?start=5", 400, "InvalidInput")
        error("GET", R + "?referenceName=q&start=x", 400, "InvalidInput")
        error("GET", R + "?fields=NOPE", 400, "InvalidInput")
        error("GET", R + "?tags=NM&notags=NM", 400, "InvalidInput")
        error("GET", R + "?class=body2", 400, "InvalidInput")
        error("POST", R, 400, "InvalidInput", body=b"{[")
        error("POST", R, 400, "InvalidInput", body=json.dumps({"regions": [{"start": 1}]}).encode())
        error("POST", R, 413, "PayloadTooLarge",
              body=json.dumps({"regions": [{"referenceName": "q"}] * 1025}).encode())
        error("GET", R, 401, "InvalidAuthentication", token=None)
        error("GET", R, 401, "InvalidAuthentication", token="wrong")
        error("GET", R, 403, "PermissionDenied", token=WORKER_TOKEN)
        error("GET", BASE + "/reads/service-info", 401, "InvalidAuthentication", token=None)
        for kind, fmt in (("reads", "BAM"), ("variants", "VCF")):
            st, b = request("GET", BASE + "/%s/service-info" % kind)
            info = json.loads(b) if st == 200 else {}
            check(info.get("type", {}).get("artifact") == "htsget" and fmt in info.get("htsget", {}).get("formats", []),
                  "%s service-info" % kind)
        # serve --htsget-public-url: the tickets' URLs start with it instead of the Host header.
        daemon.terminate()
        daemon.wait(timeout=20)
        public = "https://omicsd.example:8443"
        daemon = subprocess.Popen(serve + ["--htsget-public-url", public + "/"], stdout=log, stderr=log)
        wait_ready()
        st, b = request("GET", BASE + "/variants/%s?referenceName=q" % run_id)
        urls = [u["url"] for u in json.loads(b)["htsget"]["urls"]] if st == 200 else []
        check(any(u == public + "/v1/runs/%s/outputs/vcf" % run_id for u in urls) and
              all(u.startswith(public + "/") or u.startswith("data:") for u in urls),
              "--htsget-public-url in ticket URLs: %s" % urls[:2])
        print("htsget_client_test: %d regions, %d reads and %d variants compared; %d failures" %
              (len(regions), total_reads, total_vars, len(failures)))
    finally:
        stop_process(daemon, 20)
        log.close()
    if failures:
        print("serve log:", os.path.join(tmp, "serve.log"))
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
