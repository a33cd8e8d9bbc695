"""Learn Style… in a real GIMP 3 against a real daemon: learn a style from small generated pairs (two folders,
and the open images), then Auto Adjust with it; bad input is the daemon's or the plug-in's sentence.

One GIMP start for all the cases (they run in order in one batch). The daemon has a styles folder of its own.
"""

import os
import shutil

import cv2
import numpy as np
import pytest

import harness
from training.fcn_stylize import invented

pytestmark = [pytest.mark.gimp, pytest.mark.skipif(harness.missing_reason() is not None,
                                                   reason=harness.missing_reason() or "")]

P = "plug-in-semantic-enhance-"
HERE = "/data/learn-%d" % os.getpid()  # inside the root; other sessions may share it
TOKEN = HERE + "/token"


def _write(folder, name, rgb):
    os.makedirs(folder, exist_ok=True)
    cv2.imwrite(os.path.join(folder, name), (rgb[:, :, ::-1] * 255 + 0.5).astype(np.uint8))


@pytest.fixture(scope="module")
def learnt(tmp_path_factory):
    """The daemon, its styles folder, the photo adjusted afterwards, and the records of the GIMP batch."""
    from tests.conftest import start_daemon_with_styles, stop_daemon

    daemon, styles = start_daemon_with_styles(tmp_path_factory)
    here = os.path.join(harness.ROOT, HERE.lstrip("/"))
    shutil.rmtree(here, ignore_errors=True)
    photos = invented.photos(("astronaut", "coffee", "china", "grace-hopper", "hubble", "retina", "rocket"), side=96)
    for name in ("astronaut", "coffee", "china"):  # folders: the after-images as .jpg-free PNGs of another name case
        _write(here + "/before", name + ".png", photos[name])
        _write(here + "/after", name + ".png", invented.split_toning(photos[name]))
    for name in ("astronaut", "coffee"):  # too few
        _write(here + "/before2", name + ".png", photos[name])
        _write(here + "/after2", name + ".png", invented.split_toning(photos[name]))
    for name in ("grace-hopper", "hubble", "retina"):  # open images: X.png and X-edited.png
        _write(here + "/open", name + ".png", photos[name])
        _write(here + "/open", name + "-edited.png", invented.vignette(photos[name]))
    _write(here, "photo.png", invented.photos(["rocket"], side=160)["rocket"])
    shutil.copy(daemon.token_file, os.path.join(here, "token"))
    harness.install_plugin()
    folders = {"before-folder": HERE + "/before", "after-folder": HERE + "/after"}
    opened = [HERE + "/open/%s%s.png" % (name, suffix) for name in ("grace-hopper", "hubble", "retina")
              for suffix in ("", "-edited")]
    cases = [
        {"id": "learn", "file": HERE + "/photo.png", "procedure": P + "learn-style",
         "args": dict(folders, name="gimp-look")},
        # the style goes to the model that serves it, whichever model the dialog had
        {"id": "adjust", "file": HERE + "/photo.png", "procedure": P + "adjust",
         "args": {"model": "sa-adjust", "style": "gimp-look", "use-selection": False}},
        {"id": "open_images", "file": HERE + "/photo.png", "procedure": P + "learn-style", "open": opened,
         "args": {"name": "from-open", "source": "open-images"}},
        {"id": "taken", "file": HERE + "/photo.png", "procedure": P + "learn-style",
         "args": dict(folders, name="gimp-look")},
        {"id": "built_in", "file": HERE + "/photo.png", "procedure": P + "learn-style",
         "args": dict(folders, name="cold")},
        {"id": "too_few", "file": HERE + "/photo.png", "procedure": P + "learn-style",
         "args": {"before-folder": HERE + "/before2", "after-folder": HERE + "/after2", "name": "few"}},
        {"id": "no_name", "file": HERE + "/photo.png", "procedure": P + "learn-style", "args": folders},
        # the dialog's options reach the daemon: a colour-only look, kept smoother
        {"id": "options", "file": HERE + "/photo.png", "procedure": P + "learn-style",
         "args": dict(folders, name="colour-only", **{"position-terms": False, "regularisation": 2.0})},
    ]
    try:
        records = harness.run_cases(cases, harness.daemon_env(daemon.address, TOKEN))
        yield daemon, styles, records
    finally:
        stop_daemon(daemon)
        shutil.rmtree(here, ignore_errors=True)
        harness.cleanup_runs()


def test_learn_style_from_folders_then_auto_adjust_with_it(learnt):
    daemon, styles, records = learnt
    record = records["learn"]
    assert record["status"] == "success", record["message"]
    report = record["report"]
    assert report["style"] == "gimp-look" and report["pairs"] == ["astronaut", "china", "coffee"]
    assert report["daemon"]["held_out_ratio"] < 0.5 and "Auto Adjust" in report["text"]
    assert len(record["layers"]) == 1  # nothing in the image changed
    assert (styles / "gimp-look.safetensors").exists()

    adjusted = records["adjust"]
    assert adjusted["status"] == "success", adjusted["message"]
    assert adjusted["report"]["model"] == "fcn-stylize"
    layer = adjusted["layers"][0]
    assert layer["name"] == "Auto Adjust: gimp-look (fcn-stylize)"
    before = np.load(os.path.join(adjusted["folder"], "before.npy"))[..., :3]
    result = np.load(os.path.join(adjusted["folder"], layer["npy"]))[..., :3]
    with daemon.client() as client:
        assert "gimp-look" in {m.id: list(m.styles) for m in client.models().models}["fcn-stylize"]
        expected = client.adjust(np.ascontiguousarray(before), style="gimp-look").image
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(result.astype(int) - before.astype(int)).mean() > 3  # the look did something


def test_learn_styles_options_reach_the_daemon(learnt):
    _, styles, records = learnt
    record = records["options"]
    assert record["status"] == "success", record["message"]
    assert record["report"]["daemon"]["options"] == {"position_terms": False, "regularisation": 2.0}
    card = (styles / "colour-only.md").read_text()
    assert "a colour-only look" in card


def test_learn_style_from_the_open_images(learnt):
    _, styles, records = learnt
    record = records["open_images"]
    assert record["status"] == "success", record["message"]
    assert record["report"]["pairs"] == ["grace-hopper", "hubble", "retina"]
    assert (styles / "from-open.safetensors").exists()


@pytest.mark.parametrize("case, words", [("taken", "already exists"), ("built_in", "built-in style"),
                                         ("too_few", "at least 3 before/after pairs"),
                                         ("no_name", "Give the new style a name")])
def test_bad_learn_style_runs_say_why_and_write_nothing(learnt, case, words):
    _, styles, records = learnt
    record = records[case]
    assert record["status"] == "execution-error", record
    assert words in record["message"] and "Traceback" not in record["message"]
    assert sorted(os.listdir(styles)) == ["colour-only.md", "colour-only.safetensors", "from-open.md",
                                          "from-open.safetensors", "gimp-look.md", "gimp-look.safetensors"]
