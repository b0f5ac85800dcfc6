"""What the Python client tests of the HTTP API share (stdlib only at import): a free loopback port, the pinned
client package installed into its own virtual environment, stopping a daemon, and headless Chromium driven
by Selenium (Debian's chromium and chromium-driver; selenium pinned, imported only inside its venv)."""
import os
import shutil
import socket
import subprocess
import sys


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned_venv(venv, package, version, who):
    """The python of `venv` with `package`==`version` installed (created or re-created when it is
    missing or another version), or None when pip cannot install it (the caller skips, exit 77); the
    reason is printed prefixed by `who`."""
    py = os.path.join(venv, "bin", "python")
    if os.path.exists(py) and subprocess.run(
            [py, "-c", "import importlib.metadata as m; assert m.version(%r) == %r" % (package, version)],
            capture_output=True).returncode == 0:
        return py
    shutil.rmtree(venv, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "%s==%s" % (package, version)],
                           capture_output=True, text=True)
    if r.returncode != 0:
        print("%s: skipped: cannot install %s==%s with pip: %s" %
              (who, package, version, (r.stderr or r.stdout).strip().splitlines()[-1:]))
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return py


def stop_process(proc, seconds=30):
    """SIGTERM, then SIGKILL after `seconds` if it has not exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SELENIUM_VERSION = "4.27.1"


def browser_paths():
    """(chromium, chromedriver) from PATH (Debian's chromium and chromium-driver), or None when either
    is missing (the caller skips, exit 77)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def selenium_python(venv, who):
    """The python of `venv` with the pinned Selenium, or None when pip cannot install it."""
    return pinned_venv(venv, "selenium", SELENIUM_VERSION, who)


def chrome_driver(chromium, chromedriver):
    """A headless Chromium session (run inside the Selenium venv) that keeps the browser console's
    messages for browser_errors()."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)


def browser_errors(driver):
    """The browser console's errors since the last call (driver.get_log('browser') drains the log)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
