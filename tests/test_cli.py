"""The command-line client, as a user runs it: real processes, real files, real daemon."""

import json
import subprocess
import sys

import numpy as np
import pytest

from backend.imaging.files import read_image, write_image
from conftest import REPO


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


def test_filters_command_writes_a_16bit_png_that_stays_16bit(daemon, tmp_path, photo):
    source = tmp_path / "in.png"
    write_image(str(source), photo.astype(np.uint16) * 257)
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"filters": [{"name": "exposure", "values": [-0.5]}]}))
    out = tmp_path / "out.png"
    run = cli("filters", str(source), str(out), "--stack", str(stack), env=daemon.env())
    assert run.returncode == 0, run.stderr
    result = read_image(str(out))
    assert result.dtype == np.uint16 and result.shape == photo.shape
    assert result.mean() < photo.astype(np.float64).mean() * 257 * 0.85


def test_embedded_mode_needs_no_daemon(tmp_path, photo):
    source, out, stack = tmp_path / "in.jpg", tmp_path / "out.jpg", tmp_path / "s.json"
    write_image(str(source), photo)
    stack.write_text(json.dumps({"filters": [{"name": "bw", "values": [1.0]}]}))
    run = cli("filters", str(source), str(out), "--stack", str(stack), "--embedded")
    assert run.returncode == 0, run.stderr
    grey = read_image(str(out)).astype(int)
    assert np.abs(grey[:, :, 0] - grey[:, :, 2]).max() <= 3


def test_errors_are_one_sentence_and_a_nonzero_exit(daemon, tmp_path, photo):
    source = tmp_path / "in.png"
    write_image(str(source), photo)
    run = cli("adjust", str(source), str(tmp_path / "o.png"), "--style", "local-xpro", "--model", "sa-adjust",
              env=daemon.env())
    from backend import models
    if not models.get("sa-adjust").installed():
        assert run.returncode == 2 and "FAILED_PRECONDITION: model 'sa-adjust' is not installed" in run.stderr
        assert "Traceback" not in run.stderr
    run = cli("filters", str(tmp_path / "missing.png"), str(tmp_path / "o.png"), "--stack", "x", env=daemon.env())
    assert run.returncode == 2 and "no such image file" in run.stderr
    run = cli("models", "--addr", "127.0.0.1:1")
    assert run.returncode == 2 and "start it with `semantic-enhance serve`" in run.stderr


def test_models_command_lists_the_daemons_models(daemon):
    run = cli("models", env=daemon.env())
    assert run.returncode == 0 and "filters" in run.stdout and "sa-adjust" in run.stdout
