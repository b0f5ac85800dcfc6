#!/usr/bin/env python3
"""GA4GH TES with executors in podman containers (issue 17; run by scripts/container-test.sh, which has
podman and a local Debian 12 image; not by scripts/test.sh, whose workers use the host runtime).

Starts `omicsd serve` and `omicsd worker --task-runtime podman` on loopback and, through py-tes, checks:
  - inputs (file:// and inline content), three executors in IMAGE (stdin/stdout, workdir, env) and
    file:// outputs: COMPLETE with the right files and executor logs;
  - a failing executor: EXECUTOR_ERROR with its exit code and stderr; the next executor never runs;
  - cancel of a running executor: CANCELED, and its container is gone (`podman ps -a`) soon after;
  - SIGTERM to a worker whose executor outlasts the drain: the task is handed back (QUEUED again) and
    the executor's container is gone when the worker has exited (it used to keep running).
No container of the test is left behind. Usage:
  tes_podman_test.py --binary build-cpu/service/omicsd --image localhost/debian:12 [--podman podman]
The podman configuration (CONTAINERS_CONF) comes from the environment, as the worker's does.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import tes  # py-tes

from tes_pytes_test import LEASE_SECONDS, Cluster, check, wait_state

DONE = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}


class PodmanCluster(Cluster):
    def start_worker(self, name):
        self.workers[name] = self.spawn(
            "worker-" + name,
            ["worker", "--server", self.url, "--data-dir", self.data, "--worker-id", name, "--task-runtime",
             "podman", "--allow-root", self.root, "--lease-seconds", str(LEASE_SECONDS)])


def task_containers(podman, task_id):
    """Names of the containers (running or not) of one task: the worker names them omicsd-tes-<id>-...,
    <id> the first 40 characters of its task id (run-.../tes) with every non-alphanumeric one as _."""
    out = subprocess.run([podman, "ps", "-a", "--format", "{{.Names}}"], check=True, capture_output=True,
                         text=True).stdout.split()
    safe = "".join(ch if ch.isalnum() else "_" for ch in task_id)[:20]
    return [n for n in out if n.startswith("omicsd-tes-" + safe)]


def test_complete(c, client, image):
    root = c.root
    with open(os.path.join(root, "reads.txt"), "w") as f:
        f.write("ACGT\nTTGA\nGGCC\n")
    task_id = client.create_task(tes.Task(
        name="podman-complete",
        inputs=[tes.Input(url=f"file://{root}/reads.txt", path="/data/in/reads.txt"),
                tes.Input(content="line from content\n", path="/data/in/note.txt")],
        outputs=[tes.Output(url=f"file://{root}/out/count.txt", path="/data/out/count.txt"),
                 tes.Output(url=f"file://{root}/out/upper.txt", path="/data/out/upper.txt"),
                 tes.Output(url=f"file://{root}/out/greeting.txt", path="/data/out/greeting.txt")],
        executors=[
            tes.Executor(image=image, command=["sh", "-c", "wc -l < /data/in/reads.txt > /data/out/count.txt"]),
            tes.Executor(image=image, command=["tr", "a-z", "A-Z"], stdin="/data/in/note.txt",
                         stdout="/data/out/upper.txt"),
            # The image's own files prove it ran in the container, not on the host.
            tes.Executor(image=image, workdir="/data/out", env={"GREETING": "hello"},
                         command=["sh", "-c", ". /etc/os-release; echo $GREETING $VERSION_CODENAME > greeting.txt; "
                                  "pwd; echo to-stderr >&2"]),
        ]))
    check(wait_state(client, task_id, DONE, timeout=120) == "COMPLETE",
          "podman: task with file/content inputs and 3 executors is COMPLETE")
    out = os.path.join(root, "out")
    check(open(os.path.join(out, "count.txt")).read().strip() == "3", "podman: file:// output of executor 1")
    check(open(os.path.join(out, "upper.txt")).read() == "LINE FROM CONTENT\n", "podman: stdin -> stdout executor")
    check(open(os.path.join(out, "greeting.txt")).read() == "hello bookworm\n",
          "podman: workdir and env applied, inside the image (Debian bookworm)")
    log = client.get_task(task_id, view="FULL").logs[-1]
    check([e.exit_code for e in log.logs] == [0, 0, 0], "podman: three executor logs with exit code 0")
    check(log.logs[2].stdout == "/data/out\n" and log.logs[2].stderr == "to-stderr\n",
          "podman: stdout and stderr tails in the executor log")
    check(task_containers(c.podman, task_id) == [], "podman: no container left after the task")


def test_executor_error(c, client, image):
    task_id = client.create_task(tes.Task(name="podman-fail", executors=[
        tes.Executor(image=image, command=["sh", "-c", "echo boom >&2; exit 3"]),
        tes.Executor(image=image, command=["sh", "-c", "echo must-not-run"]),
    ]))
    check(wait_state(client, task_id, DONE, timeout=120) == "EXECUTOR_ERROR",
          "podman: a failing executor gives EXECUTOR_ERROR")
    log = client.get_task(task_id, view="FULL").logs[-1]
    check(len(log.logs) == 1 and log.logs[0].exit_code == 3 and log.logs[0].stderr == "boom\n",
          "podman: its exit code and stderr are logged; the next executor did not run")
    check(task_containers(c.podman, task_id) == [], "podman: no container left after the failed task")


def test_cancel(c, client, image):
    task_id = client.create_task(tes.Task(
        name="podman-cancel", volumes=["/shared"],
        inputs=[tes.Input(content="x\n", path="/shared/seed.txt")],
        executors=[tes.Executor(image=image, command=["sh", "-c", "echo up > /shared/started; exec sleep 300"])]))
    check(wait_state(client, task_id, {"RUNNING"}, timeout=120) == "RUNNING", "podman: the long task is RUNNING")
    deadline = time.time() + 60
    while time.time() < deadline and not task_containers(c.podman, task_id):
        time.sleep(0.2)
    running = task_containers(c.podman, task_id)
    check(len(running) == 1, f"podman: its executor runs in a container ({running})")
    client.cancel_task(task_id)
    check(client.get_task(task_id, view="MINIMAL").state == "CANCELED", "podman: cancel gives CANCELED")
    # The worker learns of the cancel at its next heartbeat.
    check(wait_no_container(c, task_id, LEASE_SECONDS + 20) == [], "podman: the canceled executor's container is gone")


def wait_no_container(c, task_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and task_containers(c.podman, task_id):
        time.sleep(0.2)
    return task_containers(c.podman, task_id)


def test_drain(c, client, image):
    task_id = client.create_task(tes.Task(name="podman-drain", executors=[
        tes.Executor(image=image, command=["sleep", "300"])]))
    check(wait_state(client, task_id, {"RUNNING"}, timeout=120) == "RUNNING", "podman: the task to drain is RUNNING")
    deadline = time.time() + 60
    while time.time() < deadline and not task_containers(c.podman, task_id):
        time.sleep(0.2)
    check(len(task_containers(c.podman, task_id)) == 1, "podman: its executor runs in a container")
    worker = c.workers.pop("a")
    worker.send_signal(signal.SIGTERM)
    check(worker.wait(timeout=60) == 0, "podman: SIGTERM: the worker drains and exits 0")
    check(task_containers(c.podman, task_id) == [], "podman: the handed-back executor's container is gone")
    check(client.get_task(task_id, view="MINIMAL").state in ("QUEUED", "INITIALIZING"),
          "podman: the task is queued again for another worker")
    client.cancel_task(task_id)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--image", required=True, help="executor image, present in podman's local storage")
    ap.add_argument("--podman", default="podman")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if not shutil.which(args.podman):
        raise SystemExit(f"{args.podman} not found")
    work = tempfile.mkdtemp(prefix="omicsd-tes-podman-")
    c = PodmanCluster(os.path.abspath(args.binary), work)
    c.podman = args.podman
    ok = False
    try:
        c.start_worker("a")
        client = tes.HTTPClient(c.url, timeout=10)
        test_complete(c, client, args.image)
        test_executor_error(c, client, args.image)
        test_cancel(c, client, args.image)
        test_drain(c, client, args.image)
        ok = True
    finally:
        c.stop()
        if not ok:
            for name in c.logs:
                print(f"--- {name} (tail)", file=sys.stderr)
                print("".join(open(name, errors="replace").readlines()[-25:]), file=sys.stderr)
        if args.keep or not ok:
            print("work directory:", work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("tes_podman_test: all checks passed")


if __name__ == "__main__":
    main()
