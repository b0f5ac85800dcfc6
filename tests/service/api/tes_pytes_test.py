#!/usr/bin/env python3
"""GA4GH TES acceptance test with a real client (py-tes, pinned in tests/requirements-tes.txt).

Starts a real `omicsd serve` (no in-process workers) and `omicsd worker --task-runtime host
--allow-host-runtime` on loopback, then through py-tes and plain HTTP checks that:
  - a task with file:// and inline content inputs, a DIRECTORY input, several executors (workdir, env,
    stdin/stdout) and outputs (file://, omicsd:objects, a glob with path_prefix, a DIRECTORY) is
    COMPLETE with the expected files, exit codes, stdout/stderr tails and output sizes;
  - a failing executor gives EXECUTOR_ERROR (later executors do not run), ignore_error carries on;
  - cancel of a running task gives CANCELED and kills the executor's process group;
  - a worker killed with SIGKILL mid-task: the lease expires, another worker retries it to COMPLETE;
  - an executor that is an omicsd stage (`omicsd run` on real reads from ../shared/data) gives the same
    VCF records as the command run directly;
  - bad requests get 400 with the GA4GH error shape; list filters, views and paging;
  - `serve --task-runtime host`: the daemon's in-process workers run TES tasks too.
Usage: tes_pytes_test.py --binary build-cpu/service/omicsd
"""
import argparse
import functools
import http.server as http_server
import json
import threading
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import tes  # py-tes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from py_test_support import free_port  # noqa: E402

LEASE_SECONDS = 4  # short leases: a killed worker's task is retried within seconds


class Cluster:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work
        self.root = os.path.join(work, "root")  # the daemon's and the workers' --allow-root
        self.data = os.path.join(work, "data")
        os.makedirs(self.root)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = []
        self.serve = self.spawn("serve", ["serve", "--data-dir", self.data, "--workers", "0", "--allow-root",
                                          self.root, "--listen", f"127.0.0.1:{self.port}"])
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/readyz", timeout=1)
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        else:
            raise RuntimeError("daemon did not become ready")
        self.workers = {}

    def spawn(self, name, args, env=None):
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.logs.append(log.name)
        return subprocess.Popen([self.binary] + args, stdout=log, stderr=subprocess.STDOUT, env=env)

    def start_worker(self, name):
        self.workers[name] = self.spawn(
            "worker-" + name,
            ["worker", "--server", self.url, "--data-dir", self.data, "--worker-id", name, "--task-runtime",
             "host", "--allow-host-runtime", "--allow-root", self.root, "--lease-seconds", str(LEASE_SECONDS),
             # The test's web server is on loopback, which TES inputs may not use unless allowed.
             "--tes-http-allow", "127.0.0.0/8"],
            # The host runtime finds executors' tools on the worker's PATH: omicsd itself among them.
            env=dict(os.environ, PATH=os.path.dirname(self.binary) + os.pathsep + os.environ.get("PATH", "")))

    def stop(self):
        for p in list(self.workers.values()) + [self.serve]:
            if p.poll() is None:
                p.terminate()
        for p in list(self.workers.values()) + [self.serve]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def http(method, url, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_state(client, task_id, states, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        t = client.get_task(task_id, view="MINIMAL")
        if t.state in states:
            return t.state
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} never reached {states} (last {t.state})")


def wait_file(path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


def serve_directory(directory):
    """A loopback HTTP server of `directory` (for http:// inputs); returns its base URL."""
    handler = functools.partial(http_server.SimpleHTTPRequestHandler, directory=directory)
    handler.log_message = lambda *a: None
    server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def put_object(c, data):
    """Stores bytes in omicsd's object store (PUT /v1/objects/{digest}); returns the digest."""
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(c.url + "/v1/objects/" + digest, data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (200, 201), r.status
    return digest


def test_complete(c, client):
    root = c.root
    with open(os.path.join(root, "reads.txt"), "w") as f:
        f.write("ACGT\nTTGA\n")
    os.makedirs(os.path.join(root, "refdir", "sub"))
    with open(os.path.join(root, "refdir", "a.fa"), "w") as f:
        f.write(">a\nAC\n")
    with open(os.path.join(root, "refdir", "sub", "b.fa"), "w") as f:
        f.write(">b\nGT\n")
    web = os.path.join(c.work, "web")
    os.makedirs(web)
    with open(os.path.join(web, "adapters.txt"), "w") as f:
        f.write("AGATCGGAAGAGC\n")
    web_url = serve_directory(web)
    digest = put_object(c, b"from the object store\n")
    task = tes.Task(
        name="pytes-complete",
        tags={"project": "tes-test", "kind": "complete"},
        inputs=[
            tes.Input(url=f"file://{root}/reads.txt", path="/data/in/reads.txt"),
            tes.Input(content="line from content\n", path="/data/in/note.txt"),
            tes.Input(url=f"file://{root}/refdir", path="/data/ref", type="DIRECTORY"),
            tes.Input(url=f"{web_url}/adapters.txt", path="/data/in/adapters.txt"),
            tes.Input(url=digest, path="/data/in/object.txt"),
        ],
        outputs=[
            tes.Output(url=f"file://{root}/out/count.txt", path="/data/out/count.txt"),
            tes.Output(url=f"file://{root}/out/fetched.txt", path="/data/out/fetched.txt"),
            tes.Output(url="omicsd:objects", path="/data/out/upper.txt"),
            tes.Output(url=f"file://{root}/out/parts", path="/data/out/part-*.txt",
                       path_prefix="/data/out"),
            tes.Output(url=f"file://{root}/out/refcopy", path="/data/ref", type="DIRECTORY"),
        ],
        executors=[
            tes.Executor(image="alpine", command=["sh", "-c", "wc -l < /data/in/reads.txt > /data/out/count.txt; "
                                                  "cat /data/in/adapters.txt /data/in/object.txt > /data/out/fetched.txt"]),
            tes.Executor(image="alpine", command=["tr", "a-z", "A-Z"], stdin="/data/in/note.txt",
                         stdout="/data/out/upper.txt"),
            tes.Executor(image="alpine", workdir="/data/out", env={"GREETING": "hello"},
                         command=["sh", "-c", "for i in 1 2; do echo $GREETING-$i > part-$i.txt; done; "
                                  "ls /data/ref /data/ref/sub; echo to-stderr >&2"]),
        ],
        resources=tes.Resources(cpu_cores=1, ram_gb=0.1, disk_gb=0.1, preemptible=False),
    )
    task_id = client.create_task(task)
    check(wait_state(client, task_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}) == "COMPLETE",
          "task with file/content/directory inputs and 3 executors is COMPLETE")
    with open(os.path.join(root, "out", "count.txt")) as f:
        check(f.read().strip() == "2", "file:// output holds the first executor's result")
    with open(os.path.join(root, "out", "fetched.txt")) as f:
        check(f.read() == "AGATCGGAAGAGC\nfrom the object store\n", "http:// and sha256: (object store) inputs staged")
    with open(os.path.join(root, "out", "parts", "part-1.txt")) as f:
        check(f.read() == "hello-1\n", "glob output delivered below path_prefix, executor env applied")
    check(os.path.exists(os.path.join(root, "out", "parts", "part-2.txt")), "every glob match delivered")
    with open(os.path.join(root, "out", "refcopy", "sub", "b.fa")) as f:
        check(f.read() == ">b\nGT\n", "DIRECTORY input staged and DIRECTORY output delivered")
    full = client.get_task(task_id, view="FULL")
    log = full.logs[-1]
    check([e.exit_code for e in log.logs] == [0, 0, 0], "three executor logs with exit code 0")
    check("a.fa" in log.logs[2].stdout and "b.fa" in log.logs[2].stdout, "stdout tail in the executor log")
    check(log.logs[2].stderr == "to-stderr\n", "stderr tail in the executor log")
    check(log.logs[0].start_time and log.logs[0].end_time, "executor start/end times")
    outs = {o.path: o for o in log.outputs}
    check(outs["/data/out/upper.txt"].url.startswith("sha256:") and int(outs["/data/out/upper.txt"].size_bytes) == 18,
          "omicsd:objects output stored by content with its size")
    check(int(outs["/data/out/count.txt"].size_bytes) == 2, "file:// output size in the log")
    check("/data/out/part-2.txt" in outs and "/data/ref/sub/b.fa" in outs, "glob and directory outputs logged")
    # The object is the stdin executor's output, upper-cased.
    with urllib.request.urlopen(c.url + "/v1/objects/" + outs["/data/out/upper.txt"].url, timeout=10) as r:
        check(r.read() == b"LINE FROM CONTENT\n", "the stored output (stdin -> stdout executor) is in the object store")
    basic = client.get_task(task_id, view="BASIC")
    check(basic.logs[-1].logs[0].stdout is None and basic.inputs[1].content is None,
          "BASIC view omits stdout/stderr and input content")
    return task_id


def test_executor_error(c, client):
    task_id = client.create_task(tes.Task(name="pytes-fail", executors=[
        tes.Executor(image="alpine", command=["sh", "-c", "echo boom >&2; exit 3"]),
        tes.Executor(image="alpine", command=["sh", "-c", f"touch {c.root}/must-not-run"]),
    ]))
    check(wait_state(client, task_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}) == "EXECUTOR_ERROR",
          "a failing executor gives EXECUTOR_ERROR")
    log = client.get_task(task_id, view="FULL").logs[-1]
    check(len(log.logs) == 1 and log.logs[0].exit_code == 3 and log.logs[0].stderr == "boom\n",
          "its exit code and stderr are logged; later executors do not run")
    check(not os.path.exists(os.path.join(c.root, "must-not-run")), "the second executor never ran")
    ok_id = client.create_task(tes.Task(name="pytes-ignore", executors=[
        tes.Executor(image="alpine", command=["false"], ignore_error=True),
        tes.Executor(image="alpine", command=["true"]),
    ]))
    check(wait_state(client, ok_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}) == "COMPLETE",
          "ignore_error: a failing executor does not fail the task")
    codes = [e.exit_code for e in client.get_task(ok_id, view="FULL").logs[-1].logs]
    check(codes == [1, 0], "both executors ran (exit codes 1, 0)")
    return task_id


def test_cancel(c, client):
    pidfile = os.path.join(c.root, "cancel.pid")
    task_id = client.create_task(tes.Task(name="pytes-cancel", executors=[
        tes.Executor(image="alpine", command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 120"]),
    ]))
    wait_file(pidfile)
    pid = int(open(pidfile).read())
    check(wait_state(client, task_id, {"RUNNING"}) == "RUNNING", "the long task is RUNNING")
    client.cancel_task(task_id)
    check(client.get_task(task_id, view="MINIMAL").state == "CANCELED", "cancel gives CANCELED")
    deadline = time.time() + LEASE_SECONDS + 10  # the worker learns it at its next heartbeat
    while time.time() < deadline and pid_alive(pid):
        time.sleep(0.2)
    check(not pid_alive(pid), "the canceled executor's process was killed")


def test_worker_killed(c, client):
    marker = os.path.join(c.root, "attempts.txt")
    task_id = client.create_task(tes.Task(name="pytes-retry", outputs=[
        tes.Output(url=f"file://{c.root}/out/retried.txt", path="/work/retried.txt")], executors=[
        tes.Executor(image="alpine", command=["sh", "-c", f"echo x >> {marker}; sleep 3; echo done > /work/retried.txt"]),
    ]))
    wait_file(marker)
    c.workers["a"].send_signal(signal.SIGKILL)
    c.workers["a"].wait()
    c.start_worker("b")
    check(wait_state(client, task_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}, timeout=90) == "COMPLETE",
          "a task whose worker was killed with SIGKILL is retried and COMPLETE")
    check(open(marker).read().count("x") >= 2, "the executor ran again on the retry")
    meta = client.get_task(task_id, view="FULL").logs[-1].metadata
    check(meta["worker_id"] == "b" and int(meta["attempts"]) >= 2, "completed by the second worker, attempt >= 2")
    check(open(os.path.join(c.root, "out", "retried.txt")).read() == "done\n", "the retry's output delivered")


def test_omicsd_stage(c, client):
    """An executor that is an omicsd stage: `omicsd run` on real reads (../shared/data) as a TES task,
    its VCF records identical to the same command run directly."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "shared", "data",
                        "na12878-chr22-tiny")
    if not os.path.isdir(data):
        raise AssertionError(f"shared test data missing: {data} (see its MANIFEST.md)")
    tiny = os.path.join(c.root, "tiny")
    os.makedirs(tiny)
    for f in ("q.fa", "q.fa.fai", "NA12878.chr22.tiny.bam", "NA12878.chr22.tiny.bam.bai"):
        shutil.copy(os.path.join(data, f), tiny)
    task_id = client.create_task(tes.Task(
        name="pytes-omicsd-run",
        inputs=[tes.Input(url=f"file://{tiny}", path="/ref", type="DIRECTORY")],
        outputs=[tes.Output(url=f"file://{c.root}/out/omicsd", path="/out", type="DIRECTORY")],
        executors=[tes.Executor(image="omicsd:cpu", command=[
            "omicsd", "run", "-o", "/out", "--sample", "S1", "-t", "2", "--backend", "cpu",
            "/ref/q.fa", "/ref/NA12878.chr22.tiny.bam"])]))
    check(wait_state(client, task_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}, timeout=120) == "COMPLETE",
          "omicsd run as a TES executor is COMPLETE")
    direct = os.path.join(c.work, "direct")
    subprocess.run([c.binary, "run", "-o", direct, "--sample", "S1", "-t", "2", "--backend", "cpu",
                    os.path.join(tiny, "q.fa"), os.path.join(tiny, "NA12878.chr22.tiny.bam")],
                   check=True, capture_output=True)

    def records(vcf):
        out = subprocess.run(["bcftools", "view", "-H", vcf], check=True, capture_output=True, text=True).stdout
        return out.splitlines()
    via_tes = records(os.path.join(c.root, "out", "omicsd", "S1.vcf.gz"))
    check(len(via_tes) > 0 and via_tes == records(os.path.join(direct, "S1.vcf.gz")),
          f"its {len(via_tes)} VCF records equal a direct omicsd run's")
    outs = {o.path for o in client.get_task(task_id, view="FULL").logs[-1].outputs}
    check({"/out/S1.bam", "/out/S1.bam.bai", "/out/S1.vcf.gz", "/out/S1.qc.json"} <= outs, "BAM, VCF and QC delivered")


def test_bad_requests(c):
    base = c.url + "/ga4gh/tes/v1"
    cases = [
        ({"executors": []}, "executors"),
        ({"executors": [{"image": "x", "command": ["true"]}], "inputs": [{"url": "file:///etc/passwd", "path": "/x"}]},
         "inputs[0].url"),
        ({"executors": [{"image": "x", "command": ["true"]}], "outputs": [{"url": "file:///etc/x", "path": "/x"}]},
         "outputs[0].url"),
        ({"executors": [{"image": "x", "command": ["true"], "workdir": "relative"}]}, "executors[0].workdir"),
        ({"executors": [{"image": "x", "command": "true"}]}, "executors[0].command"),
        ({"executors": [{"image": "x", "command": ["true"]}], "resources": {"cpu_cores": -1}}, "resources.cpu_cores"),
        ({"executors": [{"image": "x", "command": ["true"]}],
          "resources": {"backend_parameters": {"queue": "x"}, "backend_parameters_strict": True}},
         "resources.backend_parameters.queue"),
        ({"executors": [{"image": "x", "command": ["true"]}], "inputs": [{"path": "/x", "content": "a", "url": "sha256:0"}]},
         "inputs[0]"),
    ]
    for body, field in cases:
        status, err = http("POST", base + "/tasks", body)
        check(status == 400 and err["status_code"] == 400 and field in err["msg"],
              f"400 naming {field}: {err and err.get('msg')}")
    status, err = http("POST", base + "/tasks", b"{not json")
    check(status == 400 and "msg" in err, "malformed JSON is a TES-shaped 400")
    status, err = http("GET", base + "/tasks/run-unknown")
    check(status == 404 and err["status_code"] == 404, "unknown task is a TES-shaped 404")
    status, err = http("GET", base + "/tasks?view=EVERYTHING")
    check(status == 400, "unknown view is a 400")


def test_list(c, client, complete_id, failed_id):
    base = c.url + "/ga4gh/tes/v1"
    status, page = http("GET", base + "/tasks?name_prefix=pytes-c&view=BASIC")
    names = sorted(t["name"] for t in page["tasks"])
    check(status == 200 and names == ["pytes-cancel", "pytes-complete"], f"name_prefix filter: {names}")
    status, page = http("GET", base + "/tasks?tag_key=project&tag_value=tes-test")
    check([t["id"] for t in page["tasks"]] == [complete_id], "tag_key/tag_value filter")
    status, page = http("GET", base + "/tasks?state=EXECUTOR_ERROR")
    check([t["id"] for t in page["tasks"]] == [failed_id], "state filter")
    check(set(page["tasks"][0]) == {"id", "state"}, "MINIMAL view is id and state")
    seen, token = [], None
    while True:
        resp = client.list_tasks(view="MINIMAL", page_size=2, page_token=token)
        seen += [t.id for t in resp.tasks]
        token = resp.next_page_token
        if not token:
            break
    status, everything = http("GET", base + "/tasks?page_size=100")
    check(seen == [t["id"] for t in everything["tasks"]] and len(seen) >= 5, "py-tes pages through every task")
    info = client.get_service_info()
    check(info.type["artifact"] == "tes" and info.type["version"].startswith("1.1"), "service-info names TES 1.1")


def test_inproc_workers(binary, work):
    """`serve --workers 1 --task-runtime host`: the daemon's own workers run TES tasks too."""
    port = free_port()
    data, root = os.path.join(work, "inproc-data"), os.path.join(work, "inproc-root")
    os.makedirs(root)
    log = open(os.path.join(work, "inproc-serve.log"), "w")
    serve = subprocess.Popen([binary, "serve", "--data-dir", data, "--workers", "1", "--task-runtime", "host",
                              "--allow-host-runtime", "--allow-root", root, "--listen", f"127.0.0.1:{port}",
                              "--tes-http-allow", "127.0.0.0/8"],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        client = tes.HTTPClient(f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.time() + 30
        while True:
            try:
                client.get_service_info()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        task_id = client.create_task(tes.Task(
            inputs=[tes.Input(content="abc\n", path="/data/c.txt")],
            outputs=[tes.Output(url=f"file://{root}/upper.txt", path="/data/upper.txt")],
            executors=[tes.Executor(image="alpine", command=["sh", "-c", "tr a-z A-Z < /data/c.txt > /data/upper.txt"])]))
        check(wait_state(client, task_id, {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"}) == "COMPLETE",
              "serve --task-runtime host: an in-process worker runs the TES task")
        check(open(os.path.join(root, "upper.txt")).read() == "ABC\n", "its output delivered")
    finally:
        serve.terminate()
        serve.wait(timeout=20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="omicsd-tes-")
    c = Cluster(os.path.abspath(args.binary), work)
    ok = False
    try:
        c.start_worker("a")
        client = tes.HTTPClient(c.url, timeout=10)  # py-tes 1.1 adds /ga4gh/tes/v1
        complete_id = test_complete(c, client)
        failed_id = test_executor_error(c, client)
        test_cancel(c, client)
        test_omicsd_stage(c, client)
        test_bad_requests(c)
        test_worker_killed(c, client)
        test_list(c, client, complete_id, failed_id)
        test_inproc_workers(c.binary, work)
        ok = True
    finally:
        c.stop()
        if not ok:
            for log in c.logs:
                print(f"--- {log}", file=sys.stderr)
                print(open(log).read()[-4000:], file=sys.stderr)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("TES py-tes acceptance: all checks passed")


if __name__ == "__main__":
    main()
