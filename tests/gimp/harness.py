"""Host side of the GIMP end-to-end tests: the debootstrap root, installing the plug-in, running GIMP.

GIMP runs with ``chroot ROOT gimp-console-3.0 -i --batch-interpreter=python-fu-eval``; the root shares
the host's network, so the plug-in inside reaches the daemon the test started on 127.0.0.1. Files
are exchanged through ROOT/data (``/data`` inside), one folder per GIMP batch under ``data/runs``. Building the root: tests/gimp/setup_gimp_root.sh
(``make gimp-root``).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:  # plugin_gimp is imported from the checkout
    sys.path.insert(0, REPO)
ROOT = os.environ.get("SEMANTIC_ENHANCE_GIMP_ROOT", os.path.join(REPO, ".cache", "gimp-root"))
DATA = os.path.join(ROOT, "data")
PLUGINS_IN_ROOT = "/root/.config/GIMP/3.0/plug-ins"
ROOT_PYTHON = "/usr/bin/python3"  # Debian's, with grpcio: stands for "the backend's Python" inside the root
HIDE_GRPC = "/data/hide-grpc"     # on GIMP's PYTHONPATH, a grpc package that refuses to import


def missing_reason():
    """Why the GIMP tests cannot run here, or None."""
    if not os.path.exists(os.path.join(ROOT, "usr", "bin", "gimp-console-3.0")):
        return "no GIMP root at %s: run `make gimp-root` (tests/gimp/setup_gimp_root.sh, needs root)" % ROOT
    if os.geteuid() != 0:
        return "the GIMP root runs through chroot, which needs root"
    return None


def install_plugin():
    """Install the plug-in the way users do (plugin_gimp.install), into the root's GIMP profile."""
    from plugin_gimp.install import install

    profile = os.path.join(ROOT, PLUGINS_IN_ROOT.lstrip("/"))
    os.makedirs(profile, exist_ok=True)
    # GIMP caches registrations by file time (a stale cache hides new arguments); saved Backend… settings
    # from a manual session would point the tests at another daemon.
    for stale in ("pluginrc", "semantic-enhance-backend.json"):
        path = os.path.join(ROOT, "root/.config/GIMP/3.0", stale)
        if os.path.exists(path):
            os.remove(path)
    return install(profile, backend_python=ROOT_PYTHON)


HIDE_PROTOBUF = "/data/hide-protobuf"  # a regular "google" package that shadows protobuf's namespace


def prepare_hidden_grpc():
    for folder, package in (("hide-grpc", "grpc"), ("hide-protobuf", "google")):
        path = os.path.join(DATA, folder, package)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "__init__.py"), "w") as handle:
            handle.write('raise ImportError("%s is hidden from GIMP\'s Python by the test")\n' % package)


def fresh_run_dir():
    """A folder of its own under ROOT/data for one GIMP batch (other sessions may share the root);
    runs older than two hours are cleared."""
    runs = os.path.join(DATA, "runs")
    os.makedirs(runs, exist_ok=True)
    for name in os.listdir(runs):
        path = os.path.join(runs, name)
        if time.time() - os.path.getmtime(path) > 7200:
            shutil.rmtree(path, ignore_errors=True)
    run = tempfile.mkdtemp(prefix="%d-" % os.getpid(), dir=runs)
    RUNS.append(run)
    return run


RUNS = []  # this process's run folders, removed by cleanup_runs() when a test module is done


def cleanup_runs():
    while RUNS:
        shutil.rmtree(RUNS.pop(), ignore_errors=True)


def run_gimp(script_path_in_root, env=None, timeout=600):
    """Run one GIMP batch that exec()s a script; returns (returncode, output text, seconds)."""
    environ = ["HOME=/root", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"]
    environ += ["%s=%s" % item for item in (env or {}).items()]
    command = ["chroot", ROOT, "/usr/bin/env", "-i", *environ, "gimp-console-3.0", "-i",
               "--batch-interpreter=python-fu-eval", "-b", "exec(open(%r).read())" % script_path_in_root, "--quit"]
    started = time.time()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return done.returncode, done.stdout, time.time() - started


def run_cases(cases, env=None):
    """Write the cases, run tests/gimp/scenario.py in GIMP, return {case id: record}.

    Each record's ``folder`` holds what the scenario saved for that case (.npy pixels, XCF)."""
    run = fresh_run_dir()
    inside = "/" + os.path.relpath(run, ROOT)
    with open(os.path.join(run, "cases.json"), "w") as handle:
        json.dump(cases, handle)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenario.py"),
                os.path.join(run, "scenario.py"))
    code, output, seconds = run_gimp(inside + "/scenario.py", dict(env or {}, SE_SCENARIO_DIR=inside))
    results = os.path.join(run, "results.json")
    if not os.path.exists(results):
        raise AssertionError("GIMP exited %d without results (%.1f s):\n%s" % (code, seconds, output[-6000:]))
    with open(results) as handle:
        records = {record["id"]: record for record in json.load(handle)}
    for record in records.values():
        record["folder"] = os.path.join(run, record["id"])
        record["gimp_output"] = output
        record["gimp_seconds"] = seconds
    return records


def daemon_env(address, token_file_in_root):
    return {"SEMANTIC_ENHANCE_ADDR": address, "SEMANTIC_ENHANCE_TOKEN_FILE": token_file_in_root}
