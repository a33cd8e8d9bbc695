"""Shared fixtures: real photographs that pip installs anyway, and a real daemon on loopback."""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def photo():
    """scikit-image's 'astronaut' (512x512 RGB u8), a real photograph."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def coffee():
    from skimage import data

    return np.ascontiguousarray(data.coffee())


class RunningDaemon:
    def __init__(self, process, address, token_file, config_home):
        self.process, self.address, self.token_file, self.config_home = process, address, token_file, config_home

    def client(self, **kwargs):
        from backend.client import Client

        return Client(self.address, token_file=self.token_file, **kwargs)

    def env(self):
        env = dict(os.environ, SEMANTIC_ENHANCE_ADDR=self.address, SEMANTIC_ENHANCE_TOKEN_FILE=self.token_file)
        return env


def start_daemon(tmp_path, *extra):
    """Start `semantic-enhance serve` as a real process on a free loopback port; wait until it listens."""
    config_home = tmp_path / "config"
    token_file = str(config_home / "semantic-enhance" / "token")
    env = dict(os.environ, XDG_CONFIG_HOME=str(config_home), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", "0", "--device", "cpu",
                                "--token-file", token_file, *extra], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    lines = []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"listening on (\S+)", line)
        if match:
            return RunningDaemon(process, match.group(1), token_file, str(config_home))
    process.kill()
    raise RuntimeError("daemon did not start:\n" + "".join(lines))


def stop_daemon(daemon):
    daemon.process.terminate()
    try:
        daemon.process.wait(20)
    except subprocess.TimeoutExpired:
        daemon.process.kill()


def self_signed_certificate(directory):
    """A throwaway self-signed certificate (and key) for localhost, 127.0.0.1 and 0.0.0.0, made with the
    openssl command (no network, nothing downloaded): returns (cert path, key path)."""
    cert, key = os.path.join(directory, "daemon.crt"), os.path.join(directory, "daemon.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:0.0.0.0", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    return self_signed_certificate(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield running
    stop_daemon(running)
