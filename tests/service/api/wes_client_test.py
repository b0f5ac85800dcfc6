#!/usr/bin/env python3
"""GA4GH WES acceptance with the real client (issue 17): wes-client from the `wes-service` package
(pinned, installed into a virtual environment next to the build) against a real `omicsd serve` with
an in-process worker on loopback.

- submits a germline run of ../shared/data/na12878-chr22-tiny through wes_client.WESClient.run (the
  client's own multipart request), follows it with get_run_status to COMPLETE, lists its outputs
  with `wes-client --get` and downloads the VCF from its output URL (digest checked);
- submits a second run and cancels it with WESClient.cancel: CANCELED;
- `wes-client --info` / `--list`, the tasks of a run a page at a time, and bad requests answered
  with WES's ErrorResponse {msg, status_code} and a 4xx.

Exits 77 (ctest: skipped) with a message when pip cannot install the client or the data is absent.
Usage: tests/service/api/wes_client_test.py --binary build/service/omicsd --venv build/wes-client-venv
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

WES_SERVICE_VERSION = "5.0"  # pinned: the client whose behaviour this test was written against
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # tests/service/<layer>/
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import free_port, pinned_venv, stop_process  # noqa: E402
SKIP = 77

# Runs inside the venv: the real client. wes-client 5.0 infers workflow_type from a .cwl/.wdl/.py
# file name (wf_info); omicsd's workflows are built in and named by workflow_url, so wf_info is
# given type "omicsd", version "1" and the rest of WESClient.run (its multipart form, the workflow
# file as workflow_attachment, workflow_url its base name) runs unchanged.
CLIENT = r'''
import json, sys, time
import wes_client.util as util
util.wf_info = lambda path: ("1", "omicsd")
host, action = sys.argv[1], sys.argv[2]
client = util.WESClient({"auth": {}, "proto": "http", "host": host})
if action == "run":
    print(json.dumps(client.run(sys.argv[3], sys.argv[4], None)))
elif action == "wait":
    deadline = time.time() + float(sys.argv[4])
    seen = []
    while True:
        s = client.get_run_status(sys.argv[3])
        if not seen or seen[-1] != s["state"]:
            seen.append(s["state"])
        if s["state"] not in ("QUEUED", "INITIALIZING", "RUNNING") or time.time() > deadline:
            break
        time.sleep(0.2)
    print(json.dumps({"final": s, "seen": seen}))
elif action == "run-and-cancel":  # milliseconds apart: the run cannot finish in between
    run_id = client.run(sys.argv[3], sys.argv[4], None)["run_id"]
    print(json.dumps({"run_id": run_id, "cancel": client.cancel(run_id)}))
elif action == "status":
    print(json.dumps(client.get_run_status(sys.argv[3])))
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--venv", required=True)
    args = ap.parse_args()
    data = os.environ.get("OMICSD_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    tiny = os.path.join(data, "na12878-chr22-tiny")
    if not os.path.exists(os.path.join(tiny, "NA12878.chr22.tiny.bam")):
        print("wes_client_test: skipped: %s not found" % tiny)
        return SKIP
    py = pinned_venv(args.venv, "wes-service", WES_SERVICE_VERSION, "wes_client_test")
    if py is None:
        return SKIP
    wes_cli = os.path.join(args.venv, "bin", "wes-client")

    tmp = tempfile.mkdtemp(prefix="omicsd-wes-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    reads = os.path.join(root, "reads.fq")
    with open(reads, "w") as f:
        subprocess.run(["samtools", "fastq", os.path.join(tiny, "NA12878.chr22.tiny.bam")], stdout=f,
                       stderr=subprocess.DEVNULL, check=True)
    shutil.copy(os.path.join(tiny, "q.fa"), os.path.join(root, "q.fa"))
    # The "workflow file" wes-client attaches: omicsd ignores attachments (built-in workflows).
    workflow_file = os.path.join(tmp, "germline")
    with open(workflow_file, "w") as f:
        f.write("omicsd built-in workflow: align -> call -> qc\n")
    port = free_port()
    host = "127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "serve.log"), "w")
    daemon = subprocess.Popen([args.binary, "serve", "--listen", host, "--data-dir", os.path.join(tmp, "data"),
                               "--workers", "1", "--allow-root", root], stdout=log, stderr=log)
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print("FAIL: " + what)
        return cond

    def client(*argv):
        r = subprocess.run([py, "-c", CLIENT, host] + list(argv), capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("wes client %s failed: %s" % (argv[0], r.stderr.strip()[-2000:]))
        return json.loads(r.stdout)

    def cli(*argv):
        r = subprocess.run([wes_cli, "--host", host, "--proto", "http"] + list(argv), capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("wes-client %s failed: %s" % (" ".join(argv), r.stderr.strip()[-2000:]))
        return json.loads(r.stdout)

    def raw(method, path, body=None, headers=None):
        req = urllib.request.Request("http://" + host + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    try:
        deadline = time.time() + 30
        while daemon.poll() is None and time.time() < deadline:
            try:
                if raw("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if daemon.poll() is not None:
            print("daemon did not start:\n" + open(os.path.join(tmp, "serve.log")).read())
            return 1

        info = cli("--info")
        check(info["workflow_type_versions"]["omicsd"]["workflow_type_version"] == ["1"], "service-info types")
        check("1.1.0" in info["supported_wes_versions"], "service-info WES versions")

        params = {"sample": "NA12878", "inputs": {"reference": "file://" + os.path.join(root, "q.fa"),
                                                  "reads": "file://" + reads}}
        run_id = client("run", workflow_file, json.dumps(params))["run_id"]
        # A second run, cancelled while the first one holds the only worker.
        cancelled = client("run-and-cancel", workflow_file, json.dumps(dict(params, cache=False)))
        cancel_id = cancelled["run_id"]
        check(cancelled["cancel"] == {"run_id": cancel_id}, "cancel answer")
        check(client("status", cancel_id)["state"] == "CANCELED", "cancelled run is CANCELED")

        waited = client("wait", run_id, "240")
        print("germline run %s: states %s" % (run_id, " -> ".join(waited["seen"])))
        check(waited["final"]["state"] == "COMPLETE", "germline run COMPLETE (got %s)" % waited["final"])

        log_ = cli("--get", run_id)
        check(log_["state"] == "COMPLETE" and log_["run_log"]["exit_code"] == 0, "RunLog state and exit code")
        check(log_["request"]["workflow_url"] == "germline" and log_["request"]["workflow_params"] == params,
              "RunLog request is the submitted one")
        check([a["filename"] for a in log_["request"]["workflow_attachment"]] == ["germline"], "attachment recorded")
        outputs = log_["outputs"]
        print("outputs: " + ", ".join("%s %s" % (k, v["url"]) for k, v in sorted(outputs.items())))
        check(set(outputs) >= {"bam", "bai", "vcf", "tbi", "qc"}, "germline outputs listed")
        with urllib.request.urlopen(outputs["vcf"]["url"], timeout=30) as r:
            vcf = r.read()
        check("sha256:" + hashlib.sha256(vcf).hexdigest() == outputs["vcf"]["digest"], "VCF digest matches its URL")
        vcf_path = os.path.join(tmp, "out.vcf.gz")
        with open(vcf_path, "wb") as f:
            f.write(vcf)
        records = subprocess.run(["bcftools", "view", "-H", vcf_path], capture_output=True, text=True, check=True)
        check(len(records.stdout.splitlines()) > 0, "the VCF has records")

        listed = cli("--list")
        states = {r["run_id"]: r["state"] for r in listed["runs"]}
        check(states.get(run_id) == "COMPLETE" and states.get(cancel_id) == "CANCELED", "run list states")

        # Tasks a page at a time: align, call, qc.
        st, b = raw("GET", "/ga4gh/wes/v1/runs/%s/tasks?page_size=2" % run_id)
        page1 = json.loads(b)
        st2, b2 = raw("GET", "/ga4gh/wes/v1/runs/%s/tasks?page_size=2&page_token=%s" %
                      (run_id, page1["next_page_token"]))
        page2 = json.loads(b2)
        names = [t["name"] for t in page1["task_logs"] + page2["task_logs"]]
        check(st == 200 and st2 == 200 and names == ["align", "call", "qc"] and page2["next_page_token"] == "",
              "task pages (%s)" % names)

        # The same request as JSON (workflow_params an object), twice with one Idempotency-Key: one
        # run, served from the call cache, with the first run's outputs.
        body = json.dumps({"workflow_type": "omicsd", "workflow_type_version": "1", "workflow_url": "germline",
                           "workflow_params": params, "tags": {"via": "json"}}).encode()
        hdrs = {"Content-Type": "application/json", "Idempotency-Key": "wes-json-1"}
        st, b = raw("POST", "/ga4gh/wes/v1/runs", body, hdrs)
        st2, b2 = raw("POST", "/ga4gh/wes/v1/runs", body, hdrs)
        check(st == 200 and st2 == 200 and json.loads(b) == json.loads(b2), "JSON submission, idempotent")
        json_id = json.loads(b)["run_id"]
        waited = client("wait", json_id, "240")
        check(waited["final"]["state"] == "COMPLETE", "JSON run COMPLETE")
        json_log = cli("--get", json_id)
        check({k: v["digest"] for k, v in json_log["outputs"].items()} ==
              {k: v["digest"] for k, v in outputs.items()} and json_log["request"]["tags"] == {"via": "json"},
              "JSON run: same outputs (call cache), its tags")

        # application/x-www-form-urlencoded (requests' data= without files) and a run submitted at
        # /v1/runs: both are WES runs, the latter with its request made up from the omicsd one.
        form_body = urllib.parse.urlencode({"workflow_type": "omicsd", "workflow_type_version": "1",
                                            "workflow_url": "align", "workflow_params": json.dumps(params)}).encode()
        st, b = raw("POST", "/ga4gh/wes/v1/runs", form_body, {"Content-Type": "application/x-www-form-urlencoded"})
        check(st == 200 and json.loads(b)["run_id"].startswith("run-"), "urlencoded submission (%d %r)" % (st, b[:200]))
        st, b = raw("POST", "/v1/runs", json.dumps(dict(params, workflow="align")).encode(),
                    {"Content-Type": "application/json"})
        v1_id = json.loads(b)["id"]
        v1_log = cli("--get", v1_id)
        check(v1_log["request"]["workflow_url"] == "align" and v1_log["request"]["workflow_type"] == "omicsd" and
              v1_log["request"]["workflow_params"]["inputs"] == params["inputs"], "a /v1 run seen through WES")

        # Bad requests: WES ErrorResponse with a 4xx.
        def error_of(status, body):
            try:
                e = json.loads(body)
                return e.get("status_code") == status and isinstance(e.get("msg"), str)
            except ValueError:
                return False
        form = "multipart/form-data; boundary=B"
        bad = [
            ("POST", "/ga4gh/wes/v1/runs", json.dumps({"workflow_type": "CWL", "workflow_type_version": "v1.0",
                                                       "workflow_url": "x.cwl"}).encode(),
             {"Content-Type": "application/json"}, 400),
            ("POST", "/ga4gh/wes/v1/runs", json.dumps({"workflow_type": "omicsd", "workflow_type_version": "1",
                                                       "workflow_url": "nope", "workflow_params": {}}).encode(),
             {"Content-Type": "application/json"}, 400),
            ("POST", "/ga4gh/wes/v1/runs", json.dumps({"workflow_type": "omicsd", "workflow_type_version": "1",
                                                       "workflow_url": "germline",
                                                       "workflow_params": {"inputs": {"reference": "/etc/passwd",
                                                                                      "reads": "/etc/hosts"}}}).encode(),
             {"Content-Type": "application/json"}, 400),
            ("POST", "/ga4gh/wes/v1/runs", b"--B\r\nContent-Disposition: form-data; name=workflow_type\r\n\r\nomicsd",
             {"Content-Type": form}, 400),
            ("POST", "/ga4gh/wes/v1/runs", b"--B\r\nContent-Disposition: form-data; name=workflow_params\r\n\r\n{[\r\n--B--",
             {"Content-Type": form}, 400),
            ("GET", "/ga4gh/wes/v1/runs/run-0123456789abcdef", None, {}, 404),
            ("POST", "/ga4gh/wes/v1/runs/%s/cancel" % run_id, None, {}, 409),
            ("GET", "/ga4gh/wes/v1/runs/%s/tasks?page_token=x" % run_id, None, {}, 400),
        ]
        for method, path, body, headers, want in bad:
            st, b = raw(method, path, body, headers)
            check(st == want and error_of(st, b), "%s %s -> %d %r (want %d ErrorResponse)" % (method, path, st, b[:200], want))
        check(daemon.poll() is None and raw("GET", "/healthz")[0] == 200, "daemon still serving")
    except Exception as e:  # a client failure is a test failure, with its message
        failures.append(str(e))
        print("FAIL: %s" % e)
    finally:
        stop_process(daemon)
        log.close()
        if failures:
            print("serve.log tail:\n" + "".join(open(os.path.join(tmp, "serve.log")).readlines()[-30:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print("wes_client_test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
