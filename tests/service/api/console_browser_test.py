#!/usr/bin/env python3
"""The web console (/ui/, issue 20) in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium (pinned, in a venv in the build dir; the test re-runs itself there)
against `omicsd serve` on loopback with auth on and an `omicsd worker`, on the real reads of
../shared/data/na12878-chr22-tiny:

- runs in every state: a germline run COMPLETE, a call run FAILED (its "BAM" is a FASTA), a run held
  RUNNING by a lease taken by hand (with GPU telemetry in its heartbeat), runs QUEUED in a run group
  whose max_runs is 0, one of them CANCELED from the console;
- the token is entered once in the page; the runs list shows every run and state, filters by state
  and sample; the run page shows the tasks, the timeline plot and the outputs; cancel and resume work
  from the buttons (the API confirms CANCELED); the queue page shows the lease, depth and the GPU; the
  stores page lists the reference and read set (import state, compression ratio), the variant search
  finds a GIAB truth SNP's carrier (the variant store is filled by the completed germline run), and a
  cohort rule counts it;
- at 1280x800 and at a phone's width (390 px, no horizontal scroll of the page), every control is
  labelled, the browser console logs no errors; screenshots under --artifacts.

Exits 77 (ctest: skipped) when chromium, chromedriver, the shared data or pip are absent.
Usage: tests/service/api/console_browser_test.py --binary build/service/omicsd --venv build/console-venv
       [--artifacts build/test-artifacts/console]
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import (browser_errors, browser_paths, chrome_driver, free_port,  # noqa: E402
                             selenium_python, stop_process)
TOKENS = {"client": "console-client-token", "worker": "console-worker-token", "admin": "console-admin-token"}
SKIP = 77


def truth_snp(path):
    """The first SNP of the GIAB truth VCF: (chrom, pos, ref, alt)."""
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            c = line.split("\t")
            if len(c[3]) == 1 and len(c[4]) == 1:
                return c[0], int(c[1]), c[3], c[4]
    raise RuntimeError("no SNP in " + path)


class Daemon:
    def __init__(self, binary, tmp, root):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.data = os.path.join(tmp, "data")
        self.log = open(os.path.join(tmp, "serve.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data, "--workers", "0",
             "--allow-root", root, "--token-file", os.path.join(tmp, "tokens"), "--max-attempts", "1"],
            stdout=self.log, stderr=self.log)
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

    def request(self, method, path, body=None, token="client"):
        h = {"Authorization": "Bearer " + TOKENS[token]} if token else {}
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw, headers = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, raw, headers = e.code, e.read(), e.headers
        try:
            return status, json.loads(raw) if raw else None, headers
        except ValueError:
            return status, raw, headers

    def wait_run(self, run_id, states, seconds=300):
        end = time.time() + seconds
        while time.time() < end:
            st, run, _ = self.request("GET", "/v1/runs/" + run_id)
            if st == 200 and run["state"] in states:
                return run
            time.sleep(0.3)
        raise RuntimeError("run %s did not reach %s: %s" % (run_id, states, run))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--artifacts", default="")
    ap.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = os.environ.get("OMICSD_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    tiny = os.path.join(data, "na12878-chr22-tiny")
    browser = browser_paths()
    if not browser or not os.path.exists(os.path.join(tiny, "NA12878.chr22.tiny.bam")):
        print("console_browser_test: skipped: chromium, chromedriver or %s missing" % tiny)
        return SKIP
    if not args.in_venv:
        py = selenium_python(args.venv, "console_browser_test")
        if py is None:
            return SKIP
        sys.stdout.flush()
        os.execv(py, [py, os.path.abspath(__file__), "--binary", args.binary, "--venv", args.venv,
                      "--artifacts", args.artifacts, "--in-venv"])
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    tmp = tempfile.mkdtemp(prefix="omicsd-console-")
    shots = args.artifacts or os.path.join(tmp, "screenshots")
    os.makedirs(shots, exist_ok=True)
    for old in os.listdir(shots):  # this run's screenshots only
        if old.endswith(".png"):
            os.remove(os.path.join(shots, old))
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    for f in ("q.fa", "NA12878.chr22.tiny.bam"):
        shutil.copy(os.path.join(tiny, f), os.path.join(root, f))
    fasta, bam = os.path.join(root, "q.fa"), os.path.join(root, "NA12878.chr22.tiny.bam")
    with open(os.path.join(tmp, "tokens"), "w") as f:
        f.write("".join("%s %s\n" % (t, s) for s, t in TOKENS.items()))
    chrom, pos, ref, alt = truth_snp(os.path.join(tiny, "truth.vcf.gz"))
    snp = "%s:%d:%s:%s" % (chrom, pos, ref, alt)
    failures = []

    def check(cond, what):
        print("%s: %s" % ("ok" if cond else "FAIL", what))
        if not cond:
            failures.append(what)

    d = worker = driver = None
    try:
        d = Daemon(args.binary, tmp, root)
        # The console's files: no token needed, strict headers, nothing else under /ui/.
        st, _, h = d.request("GET", "/ui/", token=None)
        check(st == 200 and h["Content-Type"].startswith("text/html") and "script-src 'self'" in
              h["Content-Security-Policy"] and h["X-Content-Type-Options"] == "nosniff", "/ui/ served with CSP and nosniff")
        check(d.request("GET", "/ui/..%2Fomicsd.db", token=None)[0] == 404, "/ui/ refuses traversal")

        def submit(body):
            st, run, _ = d.request("POST", "/v1/runs", body)
            if st != 201:
                raise RuntimeError("submit: %d %s" % (st, run))
            return run["id"]

        germline = {"workflow": "germline", "inputs": {"reference": fasta, "reads": [bam]}, "parameters": {"threads": 2}}
        check(d.request("PUT", "/v1/run-groups/hold", {"max_runs": 0}, token="admin")[0] in (200, 201), "run group hold")
        # RUNNING: a run whose first task is leased by hand (no worker runs yet), with GPU telemetry.
        running = submit(dict(germline, sample="HELD"))
        st, lease, _ = d.request("POST", "/v1/tasks/lease", {"worker_id": "console-test-gpu-worker", "lease_seconds": 900},
                                 token="worker")
        check(st == 200 and lease["run"]["id"] == running, "a task of the RUNNING run leased by hand")
        d.request("POST", "/v1/tasks/%s/heartbeat" % urllib.request.quote(lease["task"]["id"], safe=""),
                  {"lease_token": lease["task"]["lease_token"], "lease_seconds": 900,
                   "telemetry": {"gpus": [{"index": 0, "name": "Test GPU", "utilization": 0.42,
                                           "memory_used_bytes": 3 << 30, "memory_total_bytes": 80 << 30}]}}, token="worker")
        complete = submit(dict(germline, sample="NA12878"))
        failed = submit({"workflow": "call", "sample": "BROKEN", "inputs": {"reference": fasta, "bam": fasta}})
        to_cancel = submit(dict(germline, sample="CANCELME", group="hold"))
        queued = submit(dict(germline, sample="WAITING", group="hold"))
        d.request("POST", "/v1/references", {"name": "chr22-stretch", "uri": "file://" + fasta})
        d.request("POST", "/v1/readsets", {"sample_id": "NA12878", "tags": {"cohort": "giab"}, "sources": ["file://" + bam]})
        env = dict(os.environ, OMICSD_TOKEN=TOKENS["worker"])
        wlog = open(os.path.join(tmp, "worker.log"), "w")
        worker = subprocess.Popen([args.binary, "worker", "--server", d.url, "--data-dir", d.data, "--worker-id",
                                   "console-test-worker", "--lease-seconds", "3", "--threads", "2"],
                                  env=env, stdout=wlog, stderr=wlog)
        check(d.wait_run(complete, {"COMPLETE", "FAILED"})["state"] == "COMPLETE", "germline run COMPLETE")
        check(d.wait_run(failed, {"COMPLETE", "FAILED"})["state"] == "FAILED", "call run of a FASTA FAILED")
        end = time.time() + 120
        while time.time() < end:
            st, v, _ = d.request("GET", "/v1/variants?variant=" + snp)
            if st == 200 and any(c["sample_id"] == "NA12878" for c in v["carriers"]):
                break
            time.sleep(0.5)
        check(st == 200 and v["carriers"], "the variant store has the truth SNP %s's carrier" % snp)

        chromium, chromedriver = browser
        driver = chrome_driver(chromium, chromedriver)
        wait = WebDriverWait(driver, 30)
        driver.set_window_size(1280, 800)

        def errors(where):
            errs = browser_errors(driver)
            check(not errs, "%s: no browser console errors (%s)" % (where, errs))

        def unlabelled():
            """Form controls without a label (a <label for>, aria-label or aria-labelledby)."""
            return driver.execute_script("""
                return [...document.querySelectorAll('input, select, textarea, button')].filter(e =>
                  !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute('aria-label') &&
                  !e.getAttribute('aria-labelledby') && !(e.tagName === 'BUTTON' && e.textContent.trim())
                ).map(e => e.outerHTML.slice(0, 120));""")

        def js_text(css):
            """The text of the first element matching css, read in one step (pages re-render as they poll)."""
            return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null", css)

        def junk(where):
            """Text a page should never show (a value rendered without its formatting), outside <pre>."""
            text = driver.execute_script("""const m = document.getElementById('main').cloneNode(true);
                for (const p of m.querySelectorAll('pre')) p.remove();
                return m.textContent;""")
            bad = [w for w in ("null", "undefined", "NaN", "[object") if w in text]
            check(not bad, "%s: no %s in the page" % (where, bad))

        def page(hash_, ready_css):
            driver.get(d.url + "/ui/" + hash_)
            return wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ready_css)))

        # The token, entered once: kept for the tab (sessionStorage), sent with each call.
        driver.get(d.url + "/ui/")
        wait.until(EC.presence_of_element_located((By.ID, "message")))
        wait.until(lambda drv: drv.find_element(By.ID, "message").is_displayed())
        check("token" in driver.find_element(By.ID, "message").text, "without a token the page asks for one")
        browser_errors(driver)  # the 401 of that first call is expected
        driver.find_element(By.ID, "token-input").send_keys(TOKENS["client"])
        driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr[data-run='%s']" % complete)))
        check(driver.execute_script("return sessionStorage.getItem('omicsd.token')") == TOKENS["client"],
              "token kept in sessionStorage")

        # Runs list: every run, every state.
        def shown_states():
            return driver.execute_script("""const out = {};
                for (const r of document.querySelectorAll('tr[data-run]')) out[r.dataset.run] = r.querySelector('.state').textContent;
                return out;""")
        states = shown_states()
        check(states.get(complete) == "COMPLETE" and states.get(failed) == "FAILED" and
              states.get(running) == "RUNNING" and states.get(queued) == "QUEUED", "runs list: states %s" % states)
        check(not unlabelled(), "runs list: every control labelled (%s)" % unlabelled())

        # Filters: state (by the API) and sample (in the page).
        Select(driver.find_element(By.NAME, "state")).select_by_value("COMPLETE")
        driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait.until(lambda drv: "state=COMPLETE" in drv.current_url and set(shown_states()) == {complete})
        check(set(shown_states()) == {complete}, "state filter COMPLETE shows the complete run only")
        page("#/runs?sample=CANCELME", "tr[data-run='%s']" % to_cancel)
        check(set(shown_states()) == {to_cancel}, "sample filter shows that sample's run only")

        # A run page: tasks, timeline, outputs.
        page("#/runs/" + complete, "svg[data-plot=timeline] rect[data-stage]")
        tasks = [r.get_attribute("data-task") for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-task]")]
        check(tasks == ["align", "call", "qc"], "run page: tasks %s" % tasks)
        bars = driver.find_elements(By.CSS_SELECTOR, "svg[data-plot=timeline] rect[data-stage]")
        check(len(bars) == 3 and all(b.size["width"] > 0 and b.size["height"] > 0 for b in bars),
              "run page: timeline plots %d task bars" % len(bars))
        outs = {r.get_attribute("data-output") for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-output]")}
        check({"bam", "vcf", "qc", "report"} <= outs, "run page: outputs %s with downloads" % sorted(outs))
        # The report's download: fetched with the token, saved under the sample's name, the API's bytes.
        downloads = os.path.join(tmp, "downloads")
        os.makedirs(downloads)
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        driver.find_element(By.ID, "run-report").click()
        saved = os.path.join(downloads, "NA12878.report.html")
        end = time.time() + 30
        while time.time() < end and not os.path.exists(saved):
            time.sleep(0.2)
        req = urllib.request.Request(d.url + "/v1/runs/%s/outputs/report" % complete,
                                     headers={"Authorization": "Bearer " + TOKENS["client"]})
        with urllib.request.urlopen(req) as r:
            report = r.read()
        check(os.path.exists(saved) and open(saved, "rb").read() == report and b"<svg" in report,
              "run page: the HTML report downloads (%s)" % os.listdir(downloads))
        check(not driver.find_element(By.ID, "run-cancel").is_enabled(), "a COMPLETE run cannot be canceled")
        check(not unlabelled(), "run page: every control labelled (%s)" % unlabelled())
        check(len(driver.find_elements(By.CSS_SELECTOR, "details.task-log")) == 3, "run page: a log for each task")
        junk("run page")
        driver.save_screenshot(os.path.join(shots, "run-desktop.png"))
        driver.execute_script("document.querySelector('tr[data-output]').scrollIntoView()")
        driver.save_screenshot(os.path.join(shots, "run-desktop-outputs.png"))
        errors("run page")
        page("#/runs/" + failed, "h1 .state")
        check(js_text("h1 .state") == "FAILED" and
              "Failure" in driver.find_element(By.CSS_SELECTOR, "dl.facts").text, "FAILED run shows its failure")
        page("#/runs/" + running, "tr[data-task='align']")
        check("console-test-gpu-worker" in driver.find_element(By.CSS_SELECTOR, "tr[data-task='align']").text,
              "RUNNING run shows the leasing worker")

        # Cancel from the console, then resume.
        page("#/runs/" + to_cancel, "#run-cancel")
        check(js_text("h1 .state") == "QUEUED", "run to cancel is QUEUED")
        driver.find_element(By.ID, "run-cancel").click()
        wait.until(lambda drv: js_text("h1 .state") == "CANCELED")
        check(d.request("GET", "/v1/runs/" + to_cancel)[1]["state"] == "CANCELED", "cancel from the UI: the API says CANCELED")
        driver.save_screenshot(os.path.join(shots, "run-canceled.png"))
        errors("cancel")
        page("#/runs", "tr[data-run='%s']" % to_cancel)
        wait.until(lambda drv: shown_states().get(to_cancel) == "CANCELED")
        check(set(shown_states().values()) == {"QUEUED", "RUNNING", "COMPLETE", "FAILED", "CANCELED"},
              "runs list renders every state: %s" % sorted(set(shown_states().values())))
        junk("runs list")
        driver.save_screenshot(os.path.join(shots, "runs-desktop.png"))
        page("#/runs/" + to_cancel, "#run-resume")
        driver.find_element(By.ID, "run-resume").click()
        wait.until(lambda drv: js_text("h1 .state") == "QUEUED")
        check(d.request("GET", "/v1/runs/" + to_cancel)[1]["state"] == "QUEUED", "resume from the UI: QUEUED again")
        errors("resume")

        # Queue and workers.
        page("#/queue", "[data-metric=queue_depth]")
        wait.until(lambda drv: "Test GPU" in js_text("#main"))
        text = driver.find_element(By.ID, "main").text
        check("console-test-gpu-worker" in text and "42%" in text, "queue page: the lease, the worker and its GPU at 42%")
        check(driver.find_element(By.CSS_SELECTOR, "[data-metric=runs-QUEUED] .big").text.isdigit(), "queue page: depth by state")
        junk("queue page")
        driver.save_screenshot(os.path.join(shots, "queue-desktop.png"))
        errors("queue page")

        # Stores: the reference and read set, the variant search, a cohort rule.
        page("#/stores", "#variant-query")
        wait.until(lambda drv: "chr22-stretch" in js_text("#main") and "ACTIVE" in js_text("section[aria-labelledby=h-readsets]"))
        check("ACTIVE" in driver.find_element(By.CSS_SELECTOR, "section[aria-labelledby=h-refs]").text,
              "stores page: the reference ACTIVE")
        driver.find_element(By.ID, "variant-query").send_keys(snp)
        driver.find_element(By.ID, "variant-search").click()
        row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#variant-results tr[data-sample]")))
        check(row.get_attribute("data-sample") == "NA12878", "variant search by position finds %s's carrier NA12878" % snp)
        Select(driver.find_element(By.ID, "variant-kind")).select_by_value("region")
        driver.find_element(By.ID, "variant-query").clear()
        driver.find_element(By.ID, "variant-query").send_keys("%s:%d-%d" % (chrom, pos - 10, pos + 10))
        driver.find_element(By.ID, "variant-search").click()
        wait.until(lambda drv: "genotype(s) in" in drv.find_element(By.ID, "variant-results").text)
        check("NA12878" in driver.find_element(By.ID, "variant-results").text, "variant search by region finds it")
        driver.find_element(By.CSS_SELECTOR, "input[name=variant]").send_keys(snp)
        driver.find_element(By.ID, "cohort-run").click()
        count = wait.until(EC.presence_of_element_located((By.ID, "cohort-count")))
        check(count.text.startswith("1 of 1"), "cohort rule counts the carrier: %s" % count.text)
        check(not unlabelled(), "stores page: every control labelled (%s)" % unlabelled())
        junk("stores page")
        driver.save_screenshot(os.path.join(shots, "stores-desktop.png"))
        errors("stores page")

        # A phone's width: no horizontal scroll of the page.
        driver.set_window_size(390, 844)
        for name, hash_, ready in (("runs", "#/runs", "tr[data-run]"), ("run", "#/runs/" + complete, "tr[data-task]"),
                                   ("queue", "#/queue", "[data-metric]"), ("stores", "#/stores", "#variant-query")):
            page(hash_, ready)
            time.sleep(0.3)
            width = driver.execute_script("return document.documentElement.scrollWidth")
            check(width <= 391, "phone width: %s page %d px wide" % (name, width))
            driver.save_screenshot(os.path.join(shots, "%s-phone.png" % name))
        errors("phone width")

        # A token without the client scope: the page says why instead of showing data.
        driver.execute_script("sessionStorage.setItem('omicsd.token', arguments[0])", TOKENS["worker"])
        driver.get(d.url + "/ui/#/runs?state=FAILED")
        driver.refresh()
        wait.until(lambda drv: "403" in (js_text("#message") or ""))
        check("client" in js_text("#message"), "a token without the scope: the 403 is shown (%s)" % js_text("#message"))
        browser_errors(driver)  # the 403 itself is logged by the browser, as expected
        driver.execute_script("sessionStorage.setItem('omicsd.token', arguments[0])", TOKENS["client"])

        # Keyboard: Tab reaches the navigation and the token field, Enter follows a link.
        driver.set_window_size(1280, 800)
        page("#/runs", "tr[data-run]")
        driver.refresh()  # focus starts at the top of the document
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr[data-run]")))
        reached = []
        for _ in range(12):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            a = driver.switch_to.active_element
            reached.append((a.tag_name, a.get_attribute("id") or a.text))
        check(("a", "Queue and workers") in reached and ("input", "token-input") in reached,
              "keyboard: Tab reaches the navigation and the token field (%s)" % reached[:6])
        driver.find_element(By.CSS_SELECTOR, "a[data-nav=queue]").send_keys(Keys.ENTER)
        wait.until(lambda drv: drv.current_url.endswith("#/queue"))
        check(driver.switch_to.active_element.get_attribute("id") == "main", "keyboard: focus moves to the new page")
        check(all(os.path.getsize(os.path.join(shots, f)) > 5000 for f in os.listdir(shots)),
              "screenshots saved in %s: %s" % (shots, sorted(os.listdir(shots))))
    except Exception as e:  # a failure of the daemon, the worker or the browser is a test failure
        failures.append(repr(e))
        print("FAIL: %r" % e)
        if driver:
            driver.save_screenshot(os.path.join(shots, "failure.png"))
    finally:
        if driver:
            driver.quit()
        if worker:
            stop_process(worker)
        if d:
            stop_process(d.proc)
        if failures:
            for log in ("serve.log", "worker.log"):
                p = os.path.join(tmp, log)
                if os.path.exists(p):
                    print("---- %s (tail)\n%s" % (log, open(p).read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print("console_browser_test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
