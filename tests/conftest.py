"""Shared fixtures: real photographs that pip installs anyway, and a real daemon on loopback."""

import os
import subprocess

import numpy as np
import pytest

from backend.spawn import spawn_daemon

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session", autouse=True)
def no_user_styles(tmp_path_factory):
    """Learnt styles live in the user's data folder: every test (and every daemon it starts) gets an empty one."""
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if old is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = old


@pytest.fixture(scope="session")
def photo():
    """scikit-image's 'astronaut' (512x512 RGB u8), a real photograph."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def coffee():
    from skimage import data

    return np.ascontiguousarray(data.coffee())


def start_daemon(tmp_path, *extra):
    """A real `semantic-enhance serve` process on a free loopback port (backend.spawn, as the demo and the
    benchmarks start theirs)."""
    return spawn_daemon(tmp_path, *extra, timeout=60)


def stop_daemon(daemon):
    daemon.stop()


def start_daemon_with_styles(tmp_path_factory):
    """A real daemon with a styles folder of its own (the session's is shared by every other daemon), for tests
    that teach it styles: returns (daemon, its styles folder)."""
    data = tmp_path_factory.mktemp("styles-xdg")
    old = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(data)
    try:
        running = start_daemon(tmp_path_factory.mktemp("styles-daemon"))
    finally:
        if old is None:
            os.environ.pop("XDG_DATA_HOME", None)
        else:
            os.environ["XDG_DATA_HOME"] = old
    return running, data / "semantic-enhance" / "styles"


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
