#!/usr/bin/env python3
"""The QC outputs of `omicsd run` read by the tools a lab already uses (issue 20, reports):

- MultiQC (pinned, from the package registry) parses our <sample>.flagstat.txt,
  <sample>.samtools_stats.txt and <sample>.bcftools_stats.txt and reports the same numbers as for
  `samtools flagstat`, `samtools stats` and `bcftools stats` run on the same BAM and VCF (its parsed
  data tables compared, every key);
- the HTML report opens in headless Chromium (Debian's chromium and chromium-driver, driven by
  Selenium, pinned): every [data-qc] number on the page equals the QC JSON's, every plot renders
  with a size, the browser logs no errors; screenshots at 1280x800 and at a phone's width are saved
  under --artifacts.

The real NA12878 reads of ../shared/data/na12878-chr22-tiny go through `omicsd run`.
Exits 77 (ctest: skipped) when samtools, bcftools, chromium, the shared data or pip are absent.
Usage: tests/cli/qc_report_clients_test.py --binary build/service/omicsd --venv-dir build/qc-venvs
       [--artifacts DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from py_test_support import browser_paths, pinned_venv, selenium_python  # noqa: E402
MULTIQC_VERSION = "1.33"
TABLES = ("multiqc_samtools_flagstat", "multiqc_samtools_stats", "multiqc_bcftools_stats")
SKIP = 77

# Runs in the Selenium venv: opens the report, prints what the page shows as JSON.
BROWSER = r'''
import json, sys
sys.path.insert(0, sys.argv[5])
from py_test_support import browser_errors, chrome_driver
from selenium.webdriver.common.by import By
report, shots = sys.argv[1], sys.argv[2]
driver = chrome_driver(sys.argv[3], sys.argv[4])
try:
    out = {}
    for name, (w, h) in {"desktop": (1280, 800), "phone": (390, 844)}.items():
        driver.set_window_size(w, h)
        driver.get("file://" + report)
        driver.save_screenshot("%s/report-%s.png" % (shots, name))
        svgs = driver.find_elements(By.CSS_SELECTOR, "figure svg")
        out[name] = {
            "title": driver.title,
            "numbers": {e.get_attribute("data-qc"): e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-qc]")},
            "plots": [[s.get_attribute("aria-label"), s.size["width"], s.size["height"]] for s in svgs],
            "page_width": driver.execute_script("return document.documentElement.scrollWidth"),
            "errors": browser_errors(driver),
        }
    print(json.dumps(out))
finally:
    driver.quit()
'''


def flatten(j, prefix=""):
    out = {}
    for k, v in j.items():
        path = k if not prefix else prefix + "." + k
        if path == "distributions":
            continue
        if isinstance(v, dict):
            out.update(flatten(v, path))
        else:
            out[path] = json.dumps(v)
    return out


def multiqc_tables(multiqc, directory):
    """MultiQC's parsed samtools flagstat, samtools stats and bcftools stats rows for the files in `directory`."""
    outdir = directory + "-multiqc"
    r = subprocess.run([multiqc, "-f", "-q", "--no-ansi", "-o", outdir, "--data-format", "json", directory],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("multiqc failed on %s: %s" % (directory, (r.stderr or r.stdout)[-2000:]))
    with open(os.path.join(outdir, "multiqc_data", "multiqc_data.json")) as f:
        raw = json.load(f)["report_saved_raw_data"]
    return {k: raw.get(k) for k in TABLES}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--venv-dir", required=True)
    ap.add_argument("--artifacts", default="")
    args = ap.parse_args()
    data = os.environ.get("OMICSD_SHARED_DATA", os.path.join(REPO, "..", "shared", "data"))
    tiny = os.path.join(data, "na12878-chr22-tiny")
    browser = browser_paths()
    if not (shutil.which("samtools") and shutil.which("bcftools") and browser and
            os.path.exists(os.path.join(tiny, "NA12878.chr22.tiny.bam"))):
        print("qc_report_clients_test: skipped: samtools, bcftools, chromium, chromedriver or %s missing" % tiny)
        return SKIP
    mq_py = pinned_venv(os.path.join(args.venv_dir, "multiqc"), "multiqc", MULTIQC_VERSION, "qc_report_clients_test")
    se_py = selenium_python(os.path.join(args.venv_dir, "selenium"), "qc_report_clients_test")
    if not mq_py or not se_py:
        return SKIP
    multiqc = os.path.join(os.path.dirname(mq_py), "multiqc")
    chromium, driver = browser
    tmp = tempfile.mkdtemp(prefix="omicsd-qc-clients-")
    shots = args.artifacts or os.path.join(tmp, "screenshots")
    os.makedirs(shots, exist_ok=True)
    failures = []

    def check(cond, what):
        print("%s: %s" % ("ok" if cond else "FAIL", what))
        if not cond:
            failures.append(what)

    try:
        out = os.path.join(tmp, "out")
        subprocess.run([args.binary, "run", "-o", out, "-t", "2", "--sample", "NA12878",
                        os.path.join(tiny, "q.fa"), os.path.join(tiny, "NA12878.chr22.tiny.bam")],
                       check=True, capture_output=True, text=True)
        ours, tools = os.path.join(tmp, "ours"), os.path.join(tmp, "tools")
        os.makedirs(ours)
        os.makedirs(tools)
        for ext in ("flagstat.txt", "samtools_stats.txt", "bcftools_stats.txt"):
            shutil.copy(os.path.join(out, "NA12878." + ext), os.path.join(ours, "NA12878." + ext))
        with open(os.path.join(tools, "NA12878.flagstat.txt"), "w") as f:
            subprocess.run(["samtools", "flagstat", os.path.join(out, "NA12878.bam")], stdout=f, check=True)
        with open(os.path.join(tools, "NA12878.samtools_stats.txt"), "w") as f:
            subprocess.run(["samtools", "stats", os.path.join(out, "NA12878.bam")], stdout=f, check=True)
        # bcftools names the VCF in its ID line as given: the same name ours gives, so MultiQC's
        # sample names match.
        with open(os.path.join(tools, "NA12878.bcftools_stats.txt"), "w") as f:
            subprocess.run(["bcftools", "stats", "NA12878.vcf.gz"], stdout=f, check=True, cwd=out)

        got, want = multiqc_tables(multiqc, ours), multiqc_tables(multiqc, tools)
        for table in TABLES:
            check(bool(want[table]), "MultiQC parses the %s of samtools/bcftools" % table)
            check(bool(got[table]), "MultiQC parses our %s" % table)
            if not want[table] or not got[table]:
                continue
            g, w = got[table], want[table]
            check(sorted(g) == sorted(w), "%s: the same samples (%s vs %s)" % (table, sorted(g), sorted(w)))
            for sample in set(g) & set(w):
                # Every key MultiQC derives from both; the bcftools sections we do not write (QUAL, DP)
                # give keys only the tool's file has.
                common = set(g[sample]) & set(w[sample])
                diff = {k: (g[sample][k], w[sample][k]) for k in common if g[sample][k] != w[sample][k]}
                check(not diff, "%s %s: %d values equal the tool's (differ: %s)" % (table, sample, len(common), diff))
                missing = set(w[sample]) - set(g[sample])
                if table != "multiqc_bcftools_stats":
                    check(not missing, "%s: no value missing (%s)" % (table, sorted(missing)))
                if table == "multiqc_samtools_stats":
                    for k in ("raw_total_sequences", "reads_mapped", "reads_properly_paired", "error_rate",
                              "insert_size_average", "bases_mapped_(cigar)", "reads_mapped_percent"):
                        check(k in common, "samtools stats: %s parsed from ours" % k)
                elif table == "multiqc_bcftools_stats":
                    for k in ("number_of_records", "number_of_SNPs", "number_of_indels", "tstv", "ts", "tv"):
                        check(k in common, "bcftools stats: %s parsed from ours" % k)

        r = subprocess.run([se_py, "-c", BROWSER, os.path.join(out, "NA12878.report.html"), shots, chromium, driver,
                            os.path.join(REPO, "tests", "support")],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("browser failed: %s" % r.stderr[-3000:])
        pages = json.loads(r.stdout)
        with open(os.path.join(out, "NA12878.qc.json")) as f:
            want_numbers = flatten(json.load(f))
        for name, page in pages.items():
            check(page["numbers"] == want_numbers,
                  "%s: the page's %d numbers equal the QC JSON's %d" % (name, len(page["numbers"]), len(want_numbers)))
            check(len(page["plots"]) >= 8 and all(w > 0 and h > 0 for _, w, h in page["plots"]),
                  "%s: %d plots rendered: %s" % (name, len(page["plots"]), [p[0] for p in page["plots"]]))
            check(not page["errors"], "%s: no browser errors (%s)" % (name, page["errors"]))
            check(page["title"].startswith("NA12878"), "%s: title names the sample" % name)
        check(pages["phone"]["page_width"] <= 390 + 1, "phone width: no horizontal scrolling (%d px)" % pages["phone"]["page_width"])
        check(all(os.path.getsize(os.path.join(shots, "report-%s.png" % n)) > 10000 for n in pages), "screenshots saved in " + shots)
    except Exception as e:  # a client failure is a test failure, with its message
        failures.append(str(e))
        print("FAIL: %s" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True) if not failures and not args.artifacts else None
    print("qc_report_clients_test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
