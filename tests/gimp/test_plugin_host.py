"""The plug-in's GIMP-free parts on the host (fast, no GIMP): settings, installer, naming, both transports.

The plug-in's ``se_plugin`` package is what GIMP imports; here it is imported from the checkout
(it then uses the backend's schema/wire instead of its vendored copies).
"""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from backend.transport import schema, wire

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "plugin_gimp", "semantic_enhance"))
sys.path.insert(0, REPO)

from plugin_gimp import install as installer  # noqa: E402
from se_plugin import bridge  # noqa: E402
from se_plugin import gegl_filters  # noqa: E402
from se_plugin import requests as rq  # noqa: E402
from se_plugin import settings as se_settings  # noqa: E402
from se_plugin.transport import BackendError, Client  # noqa: E402

STACK = {"filters": [{"name": "exposure", "values": [0.5]}, {"name": "contrast", "values": [0.3]}]}


# ---- settings -------------------------------------------------------------------------------

def test_settings_order_environment_then_saved_then_defaults(tmp_path):
    home = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    plain = se_settings.resolve(str(tmp_path / "gimp"), environ=home, install_record="/nonexistent")
    assert plain.address == "127.0.0.1:50551" and plain.source == "default"
    assert plain.token_file == str(tmp_path / "cfg" / "semantic-enhance" / "token")

    environ = dict(home, SEMANTIC_ENHANCE_ADDR="unix:/run/se.sock", SEMANTIC_ENHANCE_TOKEN_FILE="/tmp/t")
    from_env = se_settings.resolve(str(tmp_path / "gimp"), environ=environ, install_record="/nonexistent")
    assert (from_env.address, from_env.token_file) == ("unix:/run/se.sock", "/tmp/t")

    path = se_settings.save(str(tmp_path / "gimp"), address="10.0.0.2:6000", token_file="/srv/token",
                            token="secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it may hold a token
    saved = se_settings.resolve(str(tmp_path / "gimp"), environ=home, install_record="/nonexistent")
    assert saved.address == "10.0.0.2:6000" and saved.source == "Backend… settings"
    assert saved.read_token() == "secret" and saved.token_file == "/srv/token"
    overridden = se_settings.resolve(str(tmp_path / "gimp"), environ=environ, install_record="/nonexistent")
    assert (overridden.address, overridden.token_file) == ("unix:/run/se.sock", "/tmp/t")


def test_grpc_target_accepts_socket_paths():
    assert se_settings.grpc_target("/run/se.sock") == "unix:/run/se.sock"
    assert se_settings.grpc_target("unix:/run/se.sock") == "unix:/run/se.sock"
    assert se_settings.grpc_target("127.0.0.1:50551") == "127.0.0.1:50551"


# ---- installer ------------------------------------------------------------------------------

def test_plugins_folder_per_platform(tmp_path):
    home = str(tmp_path)
    linux = installer.find_plugins_dir("linux", {}, home)
    assert linux == os.path.join(home, ".config", "GIMP", "3.0", "plug-ins")
    flatpak = tmp_path / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"
    flatpak.mkdir(parents=True)
    assert installer.find_plugins_dir("linux", {}, home) == str(flatpak / "plug-ins")  # the one that exists
    assert installer.find_plugins_dir("darwin", {}, home) == os.path.join(
        home, "Library", "Application Support", "GIMP", "3.0", "plug-ins")
    assert installer.find_plugins_dir("win32", {"APPDATA": r"C:\Users\u\AppData\Roaming"}, home) == os.path.join(
        r"C:\Users\u\AppData\Roaming", "GIMP", "3.0", "plug-ins")


def test_install_vendors_the_contract_and_records_the_backend_python(tmp_path):
    target = installer.install(str(tmp_path / "plug-ins"))
    assert target == str(tmp_path / "plug-ins" / "semantic_enhance")
    entry = os.path.join(target, "semantic_enhance.py")
    assert os.stat(entry).st_mode & stat.S_IXUSR
    vendor = os.path.join(target, "se_plugin", "vendor")
    for name in installer.VENDORED:
        with open(os.path.join(vendor, name), "rb") as copy, \
                open(os.path.join(REPO, "backend", "transport", name), "rb") as original:
            assert copy.read() == original.read(), name
    with open(os.path.join(target, "install.json")) as handle:
        assert json.load(handle)["backend_python"] == sys.executable
    # The installed copy imports its vendored modules, not the backend package.
    probe = subprocess.run([sys.executable, "-c", "import se_plugin; print(se_plugin.schema.__file__)"],
                           cwd=target, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": target},
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(vendor)
    # Re-installing replaces the copy cleanly.
    assert installer.install(str(tmp_path / "plug-ins")) == target


# ---- request building and naming ------------------------------------------------------------

def test_stack_json_is_checked_with_words():
    stack = rq.parse_stack_json(json.dumps(STACK))
    assert [f.name for f in stack.filters] == ["exposure", "contrast"] and list(stack.filters[0].values) == [0.5]
    for bad in ("{", "{}", '{"filters": [{"values": [1]}]}'):
        with pytest.raises(ValueError):
            rq.parse_stack_json(bad)


def test_step_and_map_names():
    summary = schema.Summary(parameters_json=json.dumps({"filter_stack": {"filters": [
        {"name": "exposure", "values": [0.42], "label": "Exposure +0.42 EV"},
        {"name": "gamma", "values": [1.1], "label": "Gamma 1.10"}]}}), map_names=["sky", "person"])
    images = {"step/2": 0, "step/1": 0, "result": 0, "step/10 Contrast +0.20": 0,
              "adjustment_map/1": 0, "adjustment_map/0": 0}
    assert rq.step_names(images, summary) == [("step/1", "Exposure +0.42 EV"), ("step/2", "Gamma 1.10"),
                                              ("step/10 Contrast +0.20", "Contrast +0.20")]
    assert rq.map_names(images, summary) == [("adjustment_map/0", "Adjustment map 0: sky"),
                                             ("adjustment_map/1", "Adjustment map 1: person")]
    assert rq.map_index("Adjustment map 3: road") == 3 and rq.map_index("Background") is None
    bare = schema.Summary(map_names=["adjustment_map/0"])  # the daemon's names may just repeat the role
    assert rq.map_names({"adjustment_map/0": 0}, bare) == [("adjustment_map/0", "Adjustment map 0")]


def test_steps_are_named_by_the_labels_of_the_final_stack():
    """The progressive daemon's roles name the filter ("step/1 exposure"); the layers take its label."""
    names = ["exposure", "gamma", "white_balance", "saturation", "tone", "contrast", "bw", "color"]
    stack = {"filters": [{"name": name, "values": [0.1 * k], "label": "%s label %d" % (name, k)}
                         for k, name in enumerate(names, start=1)]}
    summary = schema.Summary(parameters_json=json.dumps({"filter_stack": stack}))
    images = {"step/%d %s" % (k, name): 0 for k, name in enumerate(names, start=1)}
    images["result"] = 0
    assert rq.step_names(images, summary) == [("step/%d %s" % (k, name), "%s label %d" % (name, k))
                                              for k, name in enumerate(names, start=1)]
    # Without labels in the parameters: the stack message, with the plug-in's fallback labels.
    bare = schema.Summary()
    bare.filter_stack.filters.add(name="exposure", values=[0.42])
    bare.filter_stack.filters.add(name="gamma", values=[1.1])
    assert rq.step_names({"step/2 gamma": 0, "step/1 exposure": 0}, bare) == [
        ("step/1 exposure", "Exposure 0.42"), ("step/2 gamma", "Gamma 1.10")]
    # A role whose text is not a filter name of the stack keeps its text.
    assert rq.step_names({"step/1 Sharpen 2": 0}, summary) == [("step/1 Sharpen 2", "Sharpen 2")]


def test_scores_in_words():
    distribution = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.2, 0.05, 0.02]  # most likely 7
    assert rq.score_words("critic", 6.8123, distribution) == (
        "Aesthetic score 6.8 of 10 (critic: higher is better; most likely 7)")
    assert rq.score_words("critic", 5.0) == "Aesthetic score 5.0 of 10 (critic: higher is better)"
    assert rq.score_words("brisque", 23.43) == "BRISQUE 23.4 (naturalness: lower is better, 0–100)"
    assert rq.score_words("sharpness", 0.53127) == "sharpness 0.531"  # a name not known yet: by name
    summary = schema.Summary()
    summary.scores.add(name="critic", value=6.8123, distribution=distribution)
    summary.scores.add(name="brisque", value=23.43)
    summary.scores.add(name="sharpness", value=0.53127)
    scores = rq.scores_of(summary)
    assert [(s["name"], s["value"]) for s in scores] == [("critic", 6.8123), ("brisque", pytest.approx(23.43)),
                                                         ("sharpness", pytest.approx(0.5313))]
    assert scores[0]["distribution"] == pytest.approx(distribution)
    assert rq.scores_text(scores, "photo.png") == (
        'Scores of the layer "photo.png":\n'
        "Aesthetic score 6.8 of 10 (critic: higher is better; most likely 7)\n"
        "BRISQUE 23.4 (naturalness: lower is better, 0–100)\n"
        "sharpness 0.531")
    assert rq.scores_text([]) == ""
    name, setup = rq.score_setup(np.zeros((40, 50, 3), np.uint8), schema.PERCEPTUAL)
    assert name == "Score" and (setup.image.width, setup.image.height) == (50, 40)


def test_gegl_plan_maps_what_it_can_and_names_what_it_leaves_out():
    steps, skipped = gegl_filters.plan({"filters": [
        {"name": "exposure", "values": [0.5], "label": "Exposure +0.50 EV"},
        {"name": "tone", "values": [1] * 8, "label": "Tone curve"},
        {"name": "white_balance", "values": [1.2, 1.0, 0.8], "label": "White balance"},
        {"name": "bw", "values": [1.0]}]})
    assert [(label, op) for label, op, _ in steps] == [
        ("Exposure +0.50 EV", "gegl:exposure"), ("White balance", "gegl:channel-mixer"), ("bw", "gegl:saturation")]
    assert steps[0][2]["exposure"] == pytest.approx(1.1) and steps[2][2]["scale"] == 0.0
    gains = steps[1][2]
    assert gains["rr-gain"] > 1 > gains["bb-gain"] and gains["rg-gain"] == 0
    assert skipped == ["Tone curve"]


def test_crop_boxes_follow_the_layer_offsets():
    crops = [schema.CropBox(x=0.25, y=0.5, width=0.5, height=0.25, score=0.8)]
    assert rq.crop_boxes_in_image(crops, 30, 20, 400, 200) == [(130, 120, 200, 50, pytest.approx(0.8))]


# ---- both transports against the real daemon ------------------------------------------------

def _settings(daemon, **changes):
    values = dict(address=daemon.address, token_file=daemon.token_file, backend_python=sys.executable)
    values.update(changes)
    return se_settings.Settings(**values)


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_both_transports_give_the_daemons_pixels(daemon, photo, transport):
    client = Client(_settings(daemon), prefer=transport)
    assert client.transport.name == transport
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[100:300, 50:400] = 255
    stages = []
    reader = client.run(*rq.filters_setup(photo, schema.PERCEPTUAL, rq.parse_stack_json(json.dumps(STACK)), mask),
                        photo, mask, on_progress=lambda fraction, stage: stages.append(stage))
    with daemon.client() as reference:
        expected = reference.filters(photo, STACK, mask=mask).image
    assert np.array_equal(reader.images["result"], expected)
    assert reader.transfers["result"] == schema.PERCEPTUAL and "applying" in stages
    assert rq.stack_labels(rq.parameters(reader.summary)["filter_stack"]) == ["Exposure +0.50 EV", "Contrast +0.30"]
    assert any(model.id == "filters" and model.installed for model in client.list_models().models)


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_errors_are_sentences(daemon, photo, transport):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = "127.0.0.1:%d" % probe.getsockname()[1]
    with pytest.raises(BackendError) as down:
        Client(_settings(daemon, address=free), prefer=transport).list_models()
    assert down.value.code == "UNAVAILABLE" and "semantic-enhance serve" in str(down.value)

    with pytest.raises(BackendError) as refused:
        Client(_settings(daemon, token="wrong"), prefer=transport).list_models()
    assert refused.value.code == "UNAUTHENTICATED" and "token does not match" in str(refused.value)

    small = np.ascontiguousarray(photo[:64, :64])
    with pytest.raises(BackendError) as unknown:
        Client(_settings(daemon), prefer=transport).run(*rq.adjust_setup(small, schema.PERCEPTUAL, "sa-adjust",
                                                                         "sepia"), small)
    assert unknown.value.code == "INVALID_ARGUMENT" and "has no style 'sepia'" in str(unknown.value)


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_score_through_the_plugins_client(daemon, photo, transport):
    client = Client(_settings(daemon), prefer=transport)
    reader = client.run(*rq.score_setup(photo, schema.PERCEPTUAL), photo)
    scores = rq.scores_of(reader.summary)
    with daemon.client() as reference:
        expected = {score.name: score.value for score in reference.score(photo).summary.scores}
    critic = next(score for score in scores if score["name"] == "critic")
    assert critic["value"] == pytest.approx(expected["critic"], abs=1e-4) and 1 <= critic["value"] <= 10
    assert critic["text"].startswith("Aesthetic score %.1f of 10 (critic: higher is better; most likely "
                                     % critic["value"])
    tiny = np.ascontiguousarray(photo[:20, :24])
    with pytest.raises(BackendError) as small:
        client.run(*rq.score_setup(tiny, schema.PERCEPTUAL), tiny)
    assert small.value.code == "INVALID_ARGUMENT"
    assert str(small.value) == ("The daemon said: the layer is 24 x 20 pixels: the critic needs at least 32 pixels "
                                "on each side to score it")


def test_relay_without_a_backend_python_says_how_to_fix_it(daemon):
    with pytest.raises(BackendError) as error:
        Client(_settings(daemon, backend_python=""), prefer="bridge").list_models()
    assert "install-gimp-plugin" in str(error.value)


def test_relay_cancels_the_job_when_the_plugin_dies():
    """GIMP kills a plug-in whose progress the user cancels; the relay must then cancel the daemon's job."""
    from backend.client import embedded

    server, client = embedded()
    try:
        big = np.zeros((3000, 4000, 3), np.uint8)
        setup = schema.FiltersSetup(image=wire.header_for(big))
        setup.stack.filters.add(name="tone", values=[1, 2, 1, 1, 1, 1, 1, 0.5])
        relay = subprocess.Popen([sys.executable, bridge.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        spec = {"target": server.address, "method": schema.method_path("ApplyFilters"), "unary": False,
                "metadata": [list(client.metadata[0])], "timeout": 60}
        bridge.write_frame(relay.stdin, b"C", json.dumps(spec).encode())
        for frame in wire.request_frames(schema.FiltersRequest, setup, big):
            bridge.write_frame(relay.stdin, b"M", frame)
        bridge.write_frame(relay.stdin, b"E", b"")
        relay.stdin.flush()
        while True:
            kind, payload = bridge.read_frame(relay.stdout)
            assert kind == b"M", (kind, payload)
            reply = schema.Reply.FromString(payload)
            if reply.WhichOneof("event") == "progress" and reply.progress.stage == "applying":
                break
        queue = server.service.queue
        assert queue.current is not None
        relay.stdin.close()  # what the plug-in's death looks like from the relay
        relay.stdout.close()
        assert relay.wait(20) is not None
        deadline = time.time() + 20
        while queue.current is not None and time.time() < deadline:
            time.sleep(0.05)
        assert queue.current is None, "the daemon kept working for a client that is gone"
    finally:
        server.stop(1)


@pytest.mark.parametrize("transport", ["grpc", "bridge"])
def test_unix_socket_addresses(tmp_path, transport):
    from conftest import start_daemon, stop_daemon

    sock = str(tmp_path / "se.sock")
    running = start_daemon(tmp_path, "--unix", sock)
    try:
        for address in ("unix:" + sock, sock):  # the Backend… field takes either
            client = Client(se_settings.Settings(address, running.token_file, backend_python=sys.executable),
                            prefer=transport)
            assert any(model.id == "filters" for model in client.list_models().models)
    finally:
        stop_daemon(running)


def test_a_relay_that_dies_says_why(daemon, tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'relay: grpc is not installed here' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(BackendError) as error:
        Client(_settings(daemon, backend_python=str(broken)), prefer="bridge").list_models()
    assert "stopped unexpectedly" in str(error.value) and "grpc is not installed here" in str(error.value)


# ---- Learn Style: which images make the pairs, and Auto Adjust's style list ---------------------

def test_learn_style_pairs_folders_by_name_and_open_images_by_suffix():
    assert rq.folder_pairs(["b.tif", "a.png", ".hidden.png", "notes.txt", "c.jpg"], ["a.jpg", "b.png", "c.png"]) == [
        ("a", "a.png", "a.jpg"), ("b", "b.tif", "b.png"), ("c", "c.jpg", "c.png")]
    with pytest.raises(ValueError, match="unmatched: c"):
        rq.folder_pairs(["a.png", "b.png", "c.png"], ["a.png", "b.png"])
    with pytest.raises(ValueError, match="at least 3 before/after pairs; the folders hold 2"):
        rq.folder_pairs(["a.png", "b.png"], ["a.png", "b.png"])
    opened = {1: "sea.xcf", 2: "sea-after.png", 3: "dog.jpg", 4: "dog_edited.jpg", 5: "tree.png", 6: "tree edited.tif",
              7: "lonely-after.png"}
    assert rq.open_image_pairs(opened) == [("dog", 3, 4), ("sea", 1, 2), ("tree", 5, 6)]
    with pytest.raises(ValueError, match=r"open images \(a-after.png, a.png, b.png\) 1 pair"):
        rq.open_image_pairs({1: "a.png", 2: "a-after.png", 3: "b.png"})


def test_auto_adjusts_style_list_is_what_the_daemon_lists():
    reply = schema.ListModelsReply()
    sa = reply.models.add(id="sa-adjust", installed=True, styles=["local-xpro"])
    sa.style_info.add(name="local-xpro", title="Local Xpro")
    fcn = reply.models.add(id="fcn-stylize", installed=True, styles=["local-xpro", "cold", "mine"])
    fcn.style_info.add(name="local-xpro", title="Local Xpro")
    fcn.style_info.add(name="cold", title="Cold")
    fcn.style_info.add(name="mine", title="mine")
    reply.models.add(id="enhancegan", installed=False, styles=["piecewise"])
    assert rq.style_choices(reply) == [("local-xpro", "Local Xpro: local-xpro (sa-adjust)"),
                                       ("cold", "Cold: cold (fcn-stylize)"), ("mine", "mine (fcn-stylize)")]
