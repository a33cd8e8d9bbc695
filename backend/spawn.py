"""Start a real ``semantic-enhance serve`` process on a free loopback port, with its own token: the one way
the demo, the tests and the benchmarks get a daemon. Imports neither torch nor the server.

    with spawn_daemon(workdir) as daemon:
        daemon.client().models()
"""

import collections
import os
import re
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SpawnedDaemon:
    def __init__(self, process, address, token_file, config_home, lines):
        self.process, self.address, self.token_file, self.config_home = process, address, token_file, config_home
        self.log = collections.deque(lines, maxlen=200)  # its last lines of output, for a failing test to show
        # keep reading what it prints: a full pipe would stall a daemon that logs many refusals
        threading.Thread(target=self._drain, name="daemon-output", daemon=True).start()

    def _drain(self):
        for line in self.process.stdout:
            self.log.append(line)

    def client(self, **kwargs):
        from .client import Client

        return Client(self.address, token_file=self.token_file, **kwargs)

    def env(self):
        """An environment in which the CLI's client commands find this daemon."""
        return dict(os.environ, SEMANTIC_ENHANCE_ADDR=self.address, SEMANTIC_ENHANCE_TOKEN_FILE=self.token_file)

    def stop(self, timeout=20):
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def spawn_daemon(workdir, *extra, timeout=120, echo=False):
    """``semantic-enhance serve --port 0`` with a token and config under ``workdir``; waits until it listens.
    ``extra``: more ``serve`` flags (``--unix PATH``...). Raises RuntimeError with its output if it does not."""
    config_home = os.path.join(str(workdir), "config")
    token_file = os.path.join(config_home, "semantic-enhance", "token")
    env = dict(os.environ, XDG_CONFIG_HOME=config_home, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", "0", "--device", "cpu",
                                "--token-file", token_file, *extra], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, lines = time.time() + timeout, []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"listening on (\S+)", line)
        if match:
            if echo:
                print(line.strip())
            return SpawnedDaemon(process, match.group(1), token_file, config_home, lines)
    process.kill()
    raise RuntimeError("the daemon did not start:\n" + "".join(lines))
