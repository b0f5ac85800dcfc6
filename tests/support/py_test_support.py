"""What the Python client tests of the HTTP API share (stdlib only): a free loopback port, the pinned
client package installed into its own virtual environment, and stopping a daemon."""
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
