#!/usr/bin/env python3
"""Beacon v2 acceptance (issue 18) against a real `omicsd serve`, every answer validated with the
`jsonschema` package (pinned, installed into a venv in the build dir; the test re-runs itself there)
against the Beacon v2 framework and model schemas copied under tests/service/stores/beacon-v2-schemas
(every $ref resolved locally):

- eight germline runs of na12878-chr22-tiny, each on another random subset of its reads (2% to 80%), so
  the variant store holds sites carried by 1 to 8 samples;
- every site of the store asked for by a sequence query (GET and POST) at boolean, count and record
  granularity: exists, the count and each record's allele count, number, frequency, het/hom-alt
  counts equal /v1/variants/frequencies for the site; sites carried by fewer samples than the threshold
  (default 5) answer exists only; absent alleles exist not;
- random range queries (alone, with variantType, with alternateBases incl. N wildcards), their
  counts and records equal the region's /v1/variants/frequencies rows, paged with skip/limit;
- the informational endpoints, bad parameters (400 in Beacon's error shape), no token (401), a worker
  token (403); then the same store served with --beacon-public --beacon-min-count 2
  --beacon-assembly GRCh37: no token needed, the lower threshold, assemblyId checked.

Exits 77 (ctest: skipped) when samtools, the shared data or pip are absent.
Usage: tests/service/stores/beacon_test.py --binary build/service/omicsd --venv build/beacon-venv
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import free_port, pinned_venv, stop_process  # noqa: E402
SCHEMAS = os.path.join(REPO, "tests", "service", "stores", "beacon-v2-schemas")
TOKEN = "beacon-test-client-token"
WORKER_TOKEN = "beacon-test-worker-token"
JSONSCHEMA_VERSION = "4.23.0"
BASE = "/beacon/v2"
FRACTIONS = [0.02, 0.04, 0.06, 0.1, 0.2, 0.35, 0.55, 0.8]
SKIP = 77


class Schemas:
    """Validators of the copied schemas; $refs resolve to the local files."""

    def __init__(self):
        from referencing import Registry, Resource
        import jsonschema
        self.jsonschema = jsonschema
        remote = {
            "https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json": os.path.join(SCHEMAS, "vrs-1.3", "vrs.json"),
            "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/framework/json/common/ontologyTerm.json":
                os.path.join(SCHEMAS, "framework", "json", "common", "ontologyTerm.json"),
        }

        def retrieve(uri):
            if uri in remote:
                path = remote[uri]
            elif uri.startswith("file://") and os.path.realpath(uri[7:]).startswith(os.path.realpath(SCHEMAS)):
                path = uri[7:]
            else:
                raise LookupError("schema %s is not in the local copy" % uri)
            with open(path) as f:
                return Resource.from_contents(json.load(f))
        self.registry = Registry(retrieve=retrieve)
        self.cache = {}

    def errors(self, rel, doc):
        """The schema violations of `doc` against SCHEMAS/rel (empty when valid)."""
        if rel not in self.cache:
            path = os.path.join(SCHEMAS, rel)
            with open(path) as f:
                schema = json.load(f)
            schema["$id"] = "file://" + path
            cls = self.jsonschema.validators.validator_for(schema)
            self.cache[rel] = cls(schema, registry=self.registry)
        return ["%s at %s" % (e.message[:200], "/".join(map(str, e.absolute_path)))
                for e in self.cache[rel].iter_errors(doc)]


RESPONSES = "framework/json/responses/"
BY_GRANULARITY = {"boolean": RESPONSES + "beaconBooleanResponse.json",
                  "count": RESPONSES + "beaconCountResponse.json",
                  "record": RESPONSES + "beaconResultsetsResponse.json"}
VARIANT_MODEL = "models/json/beacon-v2-default-model/genomicVariations/defaultSchema.json"


def variant_type(ref, alt):
    if len(ref) == len(alt):
        return "SNP" if len(ref) == 1 else "MNP"
    return "DEL" if len(ref) > len(alt) else "INS"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = os.environ.get("OMICSD_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    tiny = os.path.join(data, "na12878-chr22-tiny")
    if not shutil.which("samtools") or not os.path.exists(os.path.join(tiny, "NA12878.chr22.tiny.bam")):
        print("beacon_test: skipped: samtools or %s missing" % tiny)
        return SKIP
    if not args.in_venv:
        py = pinned_venv(args.venv, "jsonschema", JSONSCHEMA_VERSION, "beacon_test")
        if py is None:
            return SKIP
        sys.stdout.flush()
        os.execv(py, [py, os.path.abspath(__file__), "--binary", args.binary, "--venv", args.venv, "--in-venv"])
    schemas = Schemas()

    tmp = tempfile.mkdtemp(prefix="omicsd-beacon-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    fasta = os.path.join(root, "q.fa")
    shutil.copy(os.path.join(tiny, "q.fa"), fasta)
    samples = []
    for i, frac in enumerate(FRACTIONS):
        reads = os.path.join(root, "s%d.fq" % i)
        subset = subprocess.run(["samtools", "view", "-b", "--subsample", str(frac), "--subsample-seed",
                                 str(100 + i), os.path.join(tiny, "NA12878.chr22.tiny.bam")],
                                capture_output=True, check=True).stdout
        with open(reads, "w") as f:
            subprocess.run(["samtools", "fastq", "-"], input=subset, stdout=f, stderr=subprocess.DEVNULL,
                           check=True)
        samples.append(("S%d" % (i + 1), reads))
    with open(os.path.join(tmp, "tokens"), "w") as f:
        f.write("%s client\n%s worker\n" % (TOKEN, WORKER_TOKEN))
    failures = []
    counted = {"validated": 0, "queries": 0}

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL:", what)

    class Daemon:
        def __init__(self, extra):
            self.port = free_port()
            self.url = "http://127.0.0.1:%d" % self.port
            self.log = open(os.path.join(tmp, "serve-%d.log" % self.port), "w")
            self.proc = subprocess.Popen(
                [args.binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
                 os.path.join(tmp, "data"), "--workers", "1", "--allow-root", root, "--token-file",
                 os.path.join(tmp, "tokens")] + extra, stdout=self.log, stderr=self.log)
            for _ in range(600):
                if self.proc.poll() is not None:
                    raise RuntimeError("omicsd serve exited: see %s" % self.log.name)
                try:
                    if self.request("GET", "/readyz")[0] == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            raise RuntimeError("omicsd serve not ready: see %s" % self.log.name)

        def request(self, method, path, body=None, token=TOKEN):
            h = {"Authorization": "Bearer " + token} if token else {}
            if body is not None:
                h["Content-Type"] = "application/json"
                body = body if isinstance(body, bytes) else json.dumps(body).encode()
            req = urllib.request.Request(self.url + path, data=body, method=method, headers=h)
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    status, raw = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, raw = e.code, e.read()
            try:
                return status, json.loads(raw)
            except ValueError:
                return status, {"not JSON": raw[:200].decode("latin-1")}

        def stop(self):
            stop_process(self.proc)
            self.log.close()

    def valid(rel, doc, what):
        errs = schemas.errors(rel, doc)
        counted["validated"] += 1
        check(not errs, "%s: not valid against %s: %s" % (what, rel, errs[:3]))

    def frequencies(d, region):
        """Every row of /v1/variants/frequencies for a region (all pages)."""
        rows, token = [], None
        while True:
            q = {"region": region, "page_size": 1000}
            if token:
                q["page_token"] = token
            st, b = d.request("GET", "/v1/variants/frequencies?" + urllib.parse.urlencode(q))
            assert st == 200, (st, b)
            rows += b["sites"]
            token = b.get("next_page_token")
            if not token:
                return rows

    def beacon_get(d, params, token=TOKEN):
        return d.request("GET", BASE + "/g_variants?" + urllib.parse.urlencode(params), token=token)

    def beacon_post(d, params, granularity, extra=None, token=TOKEN):
        rp = dict(params)
        for k in ("start", "end"):
            if k in rp:
                rp[k] = [int(rp[k])]
        body = {"meta": {"apiVersion": "v2.0.0"},
                "query": dict({"requestParameters": rp, "requestedGranularity": granularity}, **(extra or {}))}
        return d.request("POST", BASE + "/g_variants", body, token=token)

    def ask(d, params, expected, min_count, what, post=False):
        """Asks at each granularity; `expected`: the frequency rows the query must match, in order."""
        rare = any(r["n_het"] + r["n_hom_alt"] < min_count for r in expected)
        for g in ("boolean", "count", "record"):
            counted["queries"] += 1
            if post:
                st, b = beacon_post(d, params, g, {"pagination": {"skip": 0, "limit": 0}})
            else:
                st, b = beacon_get(d, dict(params, requestedGranularity=g, limit=0))
            label = "%s %s %s" % ("POST" if post else "GET", what, g)
            if st != 200:
                check(False, "%s: status %d %s" % (label, st, b))
                continue
            returned = b["meta"]["returnedGranularity"]
            valid(BY_GRANULARITY[returned], b, label)
            check(b["responseSummary"]["exists"] == bool(expected), "%s: exists %s, expected %d variants" %
                  (label, b["responseSummary"]["exists"], len(expected)))
            want = "boolean" if (rare or g == "boolean") else g
            check(returned == want, "%s: returned %s, expected %s (carriers %s, threshold %d)" %
                  (label, returned, want, [r["n_het"] + r["n_hom_alt"] for r in expected], min_count))
            if returned == "boolean":
                check("numTotalResults" not in b["responseSummary"] and "response" not in b,
                      "%s: a boolean answer carries a count or records" % label)
                continue
            check(b["responseSummary"]["numTotalResults"] == len(expected),
                  "%s: numTotalResults %s, frequencies %d" % (label, b["responseSummary"]["numTotalResults"],
                                                              len(expected)))
            if returned != "record":
                continue
            sets = b["response"]["resultSets"]
            if not expected:
                check(sets == [], "%s: a miss answers no result set (HIT)" % label)
                continue
            check(len(sets) == 1 and sets[0]["resultsCount"] == len(expected), "%s: result set count" % label)
            got = sets[0]["results"] if sets else []
            check(len(got) == len(expected), "%s: %d records, expected %d" % (label, len(got), len(expected)))
            for rec, row in zip(got, expected):
                valid(VARIANT_MODEL, rec, label + " record")
                key = "%s:%d:%s:%s" % (row["chrom"], row["pos"], row["ref"], row["alt"])
                info = rec.get("info", {})
                freq = rec["frequencyInPopulations"][0]["frequencies"][0]["alleleFrequency"]
                check(rec["variantInternalId"] == key and info.get("alleleCount") == row["ac"] and
                      info.get("alleleNumber") == row["an"] and abs(freq - row["af"]) < 1e-12 and
                      info.get("heterozygous") == row["n_het"] and info.get("homozygousAlt") == row["n_hom_alt"] and
                      info.get("carriers") == row["n_het"] + row["n_hom_alt"] and
                      info.get("samples") == row["n_samples"],
                      "%s: record %s differs from frequencies %s" % (label, rec, row))
                v = rec["variation"]
                loc = v["location"]["interval"]
                check(v["referenceBases"] == row["ref"] and v["alternateBases"] == row["alt"] and
                      loc["start"]["value"] == row["pos"] - 1 and loc["end"]["value"] == row["pos"] - 1 + len(row["ref"]) and
                      v["variantType"] == variant_type(row["ref"], row["alt"]),
                      "%s: record's variation %s differs from %s" % (label, v, key))
                check(not any(k in json.dumps(rec) for k in ("sample_id", "\"gt\"", "S1", "genotype")),
                      "%s: a record names a sample or genotype: %s" % (label, rec))

    def error(d, st, b, code, what):
        check(st == code, "%s: status %d, expected %d (%s)" % (what, st, code, b))
        valid(RESPONSES + "beaconErrorResponse.json", b, what)
        check(b.get("error", {}).get("errorCode") == code, "%s: errorCode %s" % (what, b.get("error")))

    d = Daemon([])
    try:
        # The cohort: eight germline runs, each on its own subset of the reads.
        run_ids = []
        for name, reads in samples:
            st, b = d.request("POST", "/v1/runs", {"workflow": "germline", "sample": name,
                                                   "inputs": {"reference": fasta, "reads": reads}})
            assert st == 201, (st, b)
            run_ids.append(b["id"])
        for rid in run_ids:
            for _ in range(2400):
                st, b = d.request("GET", "/v1/runs/" + rid)
                if b["state"] in ("COMPLETE", "FAILED", "CANCELED"):
                    break
                time.sleep(0.25)
            assert b["state"] == "COMPLETE", b
        for _ in range(600):
            st, b = d.request("GET", "/v1/variant-samples?page_size=100")
            if len(b["samples"]) == len(samples):
                break
            time.sleep(0.1)
        assert len(b["samples"]) == len(samples), b

        sites = frequencies(d, "q")
        carriers = sorted(r["n_het"] + r["n_hom_alt"] for r in sites)
        print("beacon_test: %d sites, carriers per site: %s" % (len(sites), carriers))
        check(any(c < 5 for c in carriers) and any(c >= 5 for c in carriers),
              "the cohort has sites both below and at or above the threshold")

        # Informational endpoints.
        for path, rel in (("", "beaconInfoResponse.json"), ("/info", "beaconInfoResponse.json"),
                          ("/service-info", "ga4gh-service-info-1-0-0-schema.json"),
                          ("/configuration", "beaconConfigurationResponse.json"),
                          ("/map", "beaconMapResponse.json"), ("/entry_types", "beaconEntryTypesResponse.json"),
                          ("/filtering_terms", "beaconFilteringTermsResponse.json")):
            st, b = d.request("GET", BASE + path)
            check(st == 200, "GET %s: %d" % (BASE + path, st))
            valid(RESPONSES + rel, b, "GET " + BASE + path)
        st, b = d.request("GET", BASE + "/configuration")
        check(b["response"]["securityAttributes"]["securityLevels"] == ["CONTROLLED"], "configuration: CONTROLLED")
        st, b = d.request("GET", BASE + "/map")
        check(b["response"]["endpointSets"]["genomicVariant"]["rootUrl"].endswith(BASE + "/g_variants"), "map")

        # Every site by a sequence query (0-based start = VCF pos - 1), GET and POST alternately.
        for i, row in enumerate(sites):
            params = {"referenceName": "q", "start": row["pos"] - 1, "referenceBases": row["ref"],
                      "alternateBases": row["alt"]}
            ask(d, params, [row], 5, "site %s:%d:%s:%s" % (row["chrom"], row["pos"], row["ref"], row["alt"]),
                post=bool(i % 2))
            # The same position without referenceBases finds the sites there with that ALT.
            at_pos = [r for r in sites if r["pos"] == row["pos"] and r["alt"] == row["alt"]]
            ask(d, {"referenceName": "q", "start": row["pos"] - 1, "alternateBases": row["alt"]}, at_pos, 5,
                "position %d alt %s" % (row["pos"], row["alt"]))
        # Alleles and places nobody carries.
        known = {(r["pos"], r["ref"], r["alt"]) for r in sites}
        rng = random.Random(18)
        misses = 0
        for row in sites[:20]:
            for alt in "ACGT":
                if alt != row["ref"][0] and (row["pos"], row["ref"][:1], alt) not in known and len(row["ref"]) == 1:
                    ask(d, {"referenceName": "q", "start": row["pos"] - 1, "referenceBases": row["ref"],
                            "alternateBases": alt}, [], 5, "absent %d %s>%s" % (row["pos"], row["ref"], alt))
                    misses += 1
                    break
        ask(d, {"referenceName": "chrNone", "start": 100, "referenceBases": "A", "alternateBases": "G"}, [], 5,
            "unknown contig")
        check(misses > 0, "absent alleles were asked")

        # Random ranges: [start, end) 0-based = VCF positions start+1..end.
        contig_len = 12356
        ranges = [(0, contig_len)]
        for _ in range(40):
            a = rng.randrange(0, contig_len - 1)
            ranges.append((a, min(contig_len, a + rng.choice([1, 10, 100, 500, 2000, 6000]))))
        for r in sites[:10]:  # exactly one site, and the base after it
            ranges += [(r["pos"] - 1, r["pos"]), (r["pos"], r["pos"] + 1)]
        for a, e in ranges:
            rows = frequencies(d, "q:%d-%d" % (a + 1, e))
            ask(d, {"referenceName": "q", "start": a, "end": e}, rows, 5, "range %d-%d" % (a, e), post=(a % 2 == 0))
            for vt in ("SNP", "INDEL", "DEL", "INS", "MNP"):
                want = [r for r in rows if variant_type(r["ref"], r["alt"]) == vt or
                        (vt == "INDEL" and variant_type(r["ref"], r["alt"]) in ("INS", "DEL"))]
                ask(d, {"referenceName": "q", "start": a, "end": e, "variantType": vt}, want, 5,
                    "range %d-%d %s" % (a, e, vt))
            ask(d, {"referenceName": "q", "start": a, "end": e, "alternateBases": "G"},
                [r for r in rows if r["alt"] == "G"], 5, "range %d-%d alt G" % (a, e))
            ask(d, {"referenceName": "q", "start": a, "end": e, "referenceBases": "N", "alternateBases": "N"},
                [r for r in rows if len(r["ref"]) == 1 and len(r["alt"]) == 1], 5, "range %d-%d N>N" % (a, e))

        # Record pages: skip counts pages of `limit` records; MISS and ALL result sets. A threshold of 1
        # (below) lets every range list records, so paging is checked on the second daemon.

        # Bad parameters: 400 in Beacon's error shape (GET and POST).
        good = {"referenceName": "q", "start": "100", "referenceBases": "A", "alternateBases": "G"}
        for bad, what in (({"start": "100", "alternateBases": "G"}, "no referenceName"),
                          ({"referenceName": "q", "alternateBases": "G"}, "no start"),
                          (dict(good, start="abc"), "start not a number"),
                          (dict(good, start="-5"), "negative start"),
                          (dict(good, start="100,200"), "bracket query"),
                          (dict(good, end="50"), "end before start"),
                          (dict(good, end="100"), "end equal to start"),
                          ({"referenceName": "q", "start": "100"}, "no alternateBases nor end"),
                          (dict(good, alternateBases="XYZ"), "alternateBases not bases"),
                          (dict(good, alternateBases=""), "empty alternateBases"),
                          (dict(good, referenceBases="A;drop"), "referenceBases not bases"),
                          (dict(good, variantType="BND"), "unknown variantType"),
                          (dict(good, geneId="BRCA1"), "unsupported parameter"),
                          (dict(good, colour="red"), "unknown parameter"),
                          (dict(good, filters="NCIT:C20197"), "filters"),
                          (dict(good, requestedGranularity="all"), "bad granularity"),
                          (dict(good, limit="-1"), "negative limit"),
                          (dict(good, includeResultsetResponses="SOME"), "bad includeResultsetResponses"),
                          (dict(good, referenceBases="A", alternateBases="A"), "REF equals ALT")):
            st, b = beacon_get(d, bad)
            error(d, st, b, 400, "GET " + what)
        for body, what in ((b"{not json", "POST malformed JSON"), (b"[]", "POST an array"),
                           ({"meta": {}}, "POST without query"),
                           ({"query": {"requestParameters": {"referenceName": "q"}}}, "POST without start"),
                           ({"query": {"requestParameters": {"referenceName": "q", "start": ["x"],
                                                             "alternateBases": "G"}}}, "POST start not a number"),
                           ({"query": {"requestParameters": {"referenceName": "q", "start": [1, 2], "end": [5, 6]}}},
                            "POST bracket query"),
                           ({"query": {"requestParameters": {"referenceName": "q", "start": [1], "end": [9]},
                                       "filters": [{"id": "NCIT:C20197"}]}}, "POST filters"),
                           ({"query": {"requestParameters": {"referenceName": "q", "start": [1], "end": [9]},
                                       "pagination": {"limit": "ten"}}}, "POST bad pagination"),
                           ({"query": {"requestParameters": {"referenceName": "q", "start": [1], "end": [9]},
                                       "colour": 1}}, "POST unknown query field")):
            st, b = d.request("POST", BASE + "/g_variants", body)
            error(d, st, b, 400, what)
        # Auth: as /v1/variants (client scope), refusals in Beacon's shape.
        for path in ("/info", "/g_variants?" + urllib.parse.urlencode(good)):
            st, b = d.request("GET", BASE + path, token=None)
            error(d, st, b, 401, "GET %s without a token" % path)
            st, b = d.request("GET", BASE + path, token="not-a-token")
            error(d, st, b, 401, "GET %s with an unknown token" % path)
            st, b = d.request("GET", BASE + path, token=WORKER_TOKEN)
            error(d, st, b, 403, "GET %s with a worker token" % path)
        st, b = beacon_post(d, {"referenceName": "q", "start": 100, "alternateBases": "G"}, "boolean", token=None)
        error(d, st, b, 401, "POST without a token")
    finally:
        d.stop()

    # The same store, public, threshold 2, assembly declared.
    d = Daemon(["--beacon-public", "--beacon-min-count", "2", "--beacon-assembly", "GRCh37"])
    try:
        st, b = d.request("GET", BASE + "/configuration", token=None)
        check(st == 200 and b["response"]["securityAttributes"]["securityLevels"] == ["PUBLIC"],
              "public configuration without a token")
        for row in sites:
            params = {"referenceName": "q", "start": row["pos"] - 1, "referenceBases": row["ref"],
                      "alternateBases": row["alt"]}
            ask(d, params, [row], 2, "threshold 2, site %d" % row["pos"])
            ask(d, dict(params, assemblyId="GRCh37"), [row], 2, "assembly GRCh37, site %d" % row["pos"])
            ask(d, dict(params, assemblyId="GRCh38"), [], 2, "assembly GRCh38, site %d" % row["pos"])
        st, b = beacon_get(d, {"referenceName": "q", "start": 0, "end": 12356, "requestedGranularity": "count"},
                           token=None)
        check(st == 200, "public g_variants without a token: %d" % st)
        common = [r for r in sites if r["n_het"] + r["n_hom_alt"] >= 2]
        check(len(common) >= 3, "at least three sites carried by two or more samples")
        if len(common) >= 3:
            # Paging over a range of common sites only: skip pages of limit records.
            a, e = common[0]["pos"] - 1, common[2]["pos"]
            rows = frequencies(d, "q:%d-%d" % (a + 1, e))
            if all(r["n_het"] + r["n_hom_alt"] >= 2 for r in rows):
                got = []
                for skip in range(len(rows) + 1):
                    st, b = beacon_post(d, {"referenceName": "q", "start": a, "end": e}, "record",
                                        {"pagination": {"skip": skip, "limit": 1}})
                    valid(BY_GRANULARITY["record"], b, "paged record query")
                    got += [x["variantInternalId"] for x in b["response"]["resultSets"][0]["results"]]
                check(got == ["%s:%d:%s:%s" % (r["chrom"], r["pos"], r["ref"], r["alt"]) for r in rows],
                      "pages of one record each list the range's sites in order: %s" % got)
        # MISS / ALL / NONE result sets.
        miss = {"referenceName": "q", "start": 0, "end": 1, "requestedGranularity": "record"}
        st, b = beacon_get(d, dict(miss, includeResultsetResponses="MISS"))
        valid(BY_GRANULARITY["record"], b, "MISS")
        check(len(b["response"]["resultSets"]) == 1 and b["response"]["resultSets"][0]["exists"] is False,
              "MISS answers the empty result set")
        st, b = beacon_get(d, dict(miss, includeResultsetResponses="NONE"))
        check(b["response"]["resultSets"] == [], "NONE answers no result set")
    finally:
        d.stop()

    print("beacon_test: %d queries, %d documents validated, %d failures" %
          (counted["queries"], counted["validated"], len(failures)))
    if failures:
        print("logs in", tmp)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
