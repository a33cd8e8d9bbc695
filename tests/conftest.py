"""Shared fixtures: real photographs that pip installs anyway, and a real daemon on loopback."""

import os

import numpy as np
import pytest

from backend.spawn import spawn_daemon

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


def start_daemon(tmp_path, *extra):
    """A real `semantic-enhance serve` process on a free loopback port (backend.spawn, as the demo and the
    benchmarks start theirs)."""
    return spawn_daemon(tmp_path, *extra, timeout=60)


def stop_daemon(daemon):
    daemon.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield running
    stop_daemon(running)
