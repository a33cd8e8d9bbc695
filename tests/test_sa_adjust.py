"""sa-adjust: the network's maths, the trainer, and the shipped weights served over real gRPC."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from backend.imaging import mixing
from backend.models import sa_adjust as sa
from training.sa_adjust import train as trainer


def random_features(seed=0, size=(96, 128)):
    torch.manual_seed(seed)
    h, w = size
    from backend.models.backbones.efficientnet import PYRAMID_CHANNELS
    return {s: torch.randn(1, c, -(-h // s), -(-w // s)) for s, c in PYRAMID_CHANNELS.items()}


@pytest.mark.parametrize("variant,colour_context", [("huber-mt", False), ("huber-mt-s", False), ("huber-mt-s", True)])
def test_composed_heads_equal_the_papers_squeeze_then_head(variant, colour_context):
    """head(1x1 squeeze to 512 of the concatenated, upsampled, L2-normalised parts), computed the long way."""
    net = sa.SAAdjustNet(trainer.network_config("local-xpro", variant, colour_context=colour_context)).eval()
    features = random_features()
    lab = sa.network_lab(torch.rand(1, 3, 96, 128))
    positions = torch.rand(1, 300, 2) * 2 - 1
    with torch.no_grad():
        if colour_context:
            torch.nn.init.normal_(net.squeeze["colour"].weight)
        fast = net.heads_at(net.head_maps(features, net.colour_maps(lab)), positions)
        parts = net._parts(features, net.colour_maps(lab))
        assert ("colour" in parts) == colour_context
        context = sum(sa.sample(net.squeeze[key](part), positions) for key, part in parts.items())  # (1, P, 512)
        for name, head in net._heads().items():
            slow = F.linear(context, head.weight[:, :, 0, 0], head.bias)
            assert torch.allclose(fast[name], slow, atol=1e-4), name


def test_a_colour_context_net_starts_as_the_papers_and_reads_where_a_colour_stands_out():
    """The colour part starts at zero (the paper's heads exactly), needs the photo's Lab, and once trained it
    moves the map where a colour unlike the photo's sits: the cue the subject masks are made of."""
    config = trainer.network_config("foreground-pop-out", "huber-mt-s", colour_context=True)
    net = sa.SAAdjustNet(config).eval()
    plain = sa.SAAdjustNet(dict(config, colour_context=False)).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("squeeze.colour")})
    features = random_features()
    photo = torch.full((1, 3, 96, 128), 0.4)
    photo[:, :, 30:60, 40:80] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)   # a red subject on grey
    lab = sa.network_lab(photo)
    positions = torch.rand(1, 200, 2) * 2 - 1
    with torch.no_grad():
        ours = net.heads_at(net.head_maps(features, net.colour_maps(lab)), positions)
        papers = plain.heads_at(plain.head_maps(features), positions)
        for name in ours:
            assert torch.allclose(ours[name], papers[name], atol=1e-5), name
        with pytest.raises(ValueError, match="pass its colour_maps"):
            net.head_maps(features)
        torch.manual_seed(0)
        torch.nn.init.normal_(net.squeeze["colour"].weight)
        grid = sa.pixel_grid(96, 128, "cpu")
        logits = [net.heads_at(net.head_maps(features, net.colour_maps(sa.network_lab(image))), grid)["map_logits"][0]
                  for image in (photo, torch.full_like(photo, 0.4))]
    moved = (logits[0] - logits[1]).abs().sum(-1).view(96, 128)   # the same features: only the colours differ
    assert moved[35:55, 45:75].mean() > 2 * moved[:, 116:].mean()  # the red patch, against the far margin


def test_the_subject_cue_is_saliency_against_this_photos_own_average():
    """``--subject-cue``: the saliency maps standardised over the photo, so "more salient than this photo's
    average" is one fixed threshold for a 1x1 head whatever the photo's contrast; its net starts as the
    paper's too (the colour part at zero) and reads three channels more."""
    from backend.imaging.context import SUBJECT_CHANNELS, colour_context, subject_cue
    photo = torch.full((1, 3, 96, 128), 0.4)
    photo[:, :, 30:60, 40:80] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    plain, cued = (colour_context(sa.network_lab(photo), saliency=True, subject=s) for s in (False, True))
    assert cued.shape[1] == plain.shape[1] + SUBJECT_CHANNELS and torch.equal(cued[:, :plain.shape[1]], plain)
    z = cued[0, -SUBJECT_CHANNELS:]                                       # at a quarter of the photo's size
    achanta_and_combined = z[[0, 2]]  # (the spectral residual of a flat rectangle rings at its edges)
    assert (achanta_and_combined[:, 9:14, 12:18].amin((1, 2)) > 1.0).all()
    assert (achanta_and_combined[:, :, 28:].amax((1, 2)) < 0.0).all()
    assert z.mean((1, 2)).abs().max() < 0.05   # standardised (up to the clipping at +-4)
    distance, residual = cued[:, -SUBJECT_CHANNELS - 2:-SUBJECT_CHANNELS - 1], cued[:, -SUBJECT_CHANNELS - 1:-SUBJECT_CHANNELS]
    xs, ys = cued[:, 0:1], cued[:, 1:2]   # the position channels
    assert torch.allclose(subject_cue(0.3 * distance, 0.3 * residual, xs, ys), z[None], atol=1e-4)  # a fainter photo, the same cue
    config = trainer.network_config("foreground-pop-out", "huber-mt-s", subject_cue=True)
    assert config["colour_context"] and config["subject_cue"]
    net = sa.SAAdjustNet(config).eval()
    assert net.squeeze["colour"].weight.shape[1] == cued.shape[1] and not net.squeeze["colour"].weight.any()
    assert net.colour_maps(sa.network_lab(photo)).shape == cued.shape


def test_presets_equal_the_bilinear_model_of_eq_2_per_preset():
    net = sa.SAAdjustNet(trainer.network_config("local-xpro", "huber-mt-s"))
    colour = torch.randn(1, 50, net.U.in_features)
    with torch.no_grad():
        torch.nn.init.normal_(net.P.weight)
        fast = net.presets(colour)
        u = torch.tanh(net.U(colour))
        for k in range(net.k):
            slow = torch.tanh(net.P(u * torch.tanh(net.V[k] + net.c)))
            assert torch.allclose(fast[:, :, k], slow, atol=1e-5)


def test_renet_sweeps_all_four_directions():
    renet = sa.ReNet(8, hidden=4, out_channels=6).eval()
    x = torch.zeros(1, 8, 5, 7)
    base = renet(x)
    x[0, :, 2, 3] = 5.0  # one bright cell: every other cell must hear of it through the sweeps
    changed = (renet(x) - base).abs().sum(1)[0]
    assert base.shape == (1, 6, 5, 7) and (changed > 1e-6).all()


def test_user_map_from_a_selection_and_bad_presets():
    selection = torch.tensor([[[0.0, 0.25, 1.0]]])
    weights = mixing.user_map(selection, 4, selected=3, unselected=1)
    assert weights[:, 0, 1].tolist() == [0.0, 0.75, 0.0, 0.25]
    with pytest.raises(ValueError, match="preset 4 does not exist"):
        mixing.user_map(selection, 4, selected=4, unselected=0)
    with pytest.raises(ValueError, match="1 channel .* or 4 channels"):
        mixing.user_map(torch.ones(3, 1, 1), 4, 0, 0)


def test_parse_labels_from_cues():
    cues = torch.zeros(5, 1, 3)  # faces, skin, sky, vegetation, foreground
    cues[2, 0, 0] = 0.9
    cues[1, 0, 1] = 0.8
    labels = trainer.parse_labels(cues, ("faces", "skin", "sky", "vegetation", "foreground"))
    assert labels[0].tolist() == [1, 3, 0]


@pytest.mark.slow
def test_a_short_training_run_learns_a_local_colour_change(tmp_path):
    """Real trainer, real backbone, two synthetic pairs: the right half warmed, the left half untouched."""
    from PIL import Image
    from training.data.pairs import Pair

    rng = np.random.default_rng(0)
    pairs = []
    for i in range(2):
        base = (rng.random((6, 8, 3)) * 200 + 30).astype(np.uint8)
        image = np.asarray(Image.fromarray(base).resize((128, 96), Image.BICUBIC))
        target = image.astype(np.float32)
        target[:, 64:, 0] = np.minimum(target[:, 64:, 0] * 1.25 + 10, 255)
        paths = [str(tmp_path / ("%s%d.png" % (kind, i))) for kind in ("in", "out")]
        Image.fromarray(image).save(paths[0])
        Image.fromarray(target.astype(np.uint8)).save(paths[1])
        pairs.append(Pair("p%d" % i, paths[0], paths[1], {}))
    net, info = trainer.train("local-xpro", pairs, str(tmp_path / "w.safetensors"), variant="huber", steps=120,
                              augmentations=1, log=None)
    assert info["final_loss"] < 0.6 * first_loss(pairs)
    assert (tmp_path / "w.safetensors").stat().st_size > 0


@pytest.mark.slow
def test_ema_ships_the_moving_average_of_the_weights(tmp_path):
    """--ema: the written weights are the warmed-up moving average kept in the checkpoint, not the last step's."""
    from safetensors.torch import load_file
    from training.data.pairs import Pair
    from PIL import Image

    rng = np.random.default_rng(2)
    image = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(255 - image).save(tmp_path / "out.png")
    pairs = [Pair("p", str(tmp_path / "in.png"), str(tmp_path / "out.png"), {})]
    checkpoint = str(tmp_path / "c.pt")
    net, _ = trainer.train("local-xpro", pairs, str(tmp_path / "w.safetensors"), variant="huber-mt-s", steps=12,
                           augmentations=1, checkpoint=checkpoint, ema=0.9, learning_rate=1e-2, log=None,
                           name_presets=False)
    state = torch.load(checkpoint, weights_only=True)
    written = load_file(str(tmp_path / "w.safetensors"))
    for name, value in net.state_dict().items():
        assert torch.equal(written[name], value) and torch.equal(state["average"][name], value)
    assert not torch.allclose(state["net"]["P.weight"], written["P.weight"])  # not the last step's weights

    norm = torch.nn.BatchNorm1d(2)  # float weights and an integer buffer (num_batches_tracked)
    norm.num_batches_tracked.fill_(5)
    average = {name: torch.zeros_like(value) for name, value in norm.state_dict().items()}
    trainer._update_average(average, norm, 0.75)
    assert torch.allclose(average["weight"], torch.full((2,), 0.25)) and average["num_batches_tracked"].item() == 5


@pytest.mark.slow
def test_the_tuned_last_stage_starts_as_the_backbone_and_is_fine_tuned_at_half_the_rate(tmp_path):
    """--tune-last-stage: the net owns blocks 11-15, starting at ImageNet's (so level 32 is the backbone's),
    keeps their batch statistics, trains them at 0.5x lr, and ships them in weights the product path loads."""
    import json

    from PIL import Image
    from safetensors import safe_open
    from backend.models.backbones.efficientnet import load_efficientnet_lite0
    from training.data.pairs import Pair

    backbone = load_efficientnet_lite0()
    imagenet = backbone.blocks_after(16).state_dict()
    net = sa.SAAdjustNet(trainer.network_config("foreground-pop-out", "huber-mt-s", tune_last_stage=True))
    net.start_from(backbone)
    net.train()
    assert net.renet.training and not any(m.training for m in net.top.modules())
    rgb = torch.rand(1, 3, 96, 128)
    features = sa.backbone_pyramid(backbone, rgb)
    with torch.no_grad():
        assert torch.allclose(net.level32(features), features[32], atol=1e-5)

    rng = np.random.default_rng(3)
    image = (rng.random((64, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(255 - image).save(tmp_path / "out.png")
    pairs = [Pair("p", str(tmp_path / "in.png"), str(tmp_path / "out.png"), {})]
    checkpoint, out = str(tmp_path / "c.pt"), str(tmp_path / "w.safetensors")
    net, _ = trainer.train("foreground-pop-out", pairs, out, variant="huber-mt-s", steps=4, augmentations=1,
                           checkpoint=checkpoint, learning_rate=1e-3, tune_last_stage=True, log=None,
                           name_presets=False)
    rates = sorted(group["lr"] for group in torch.load(checkpoint, weights_only=True)["optimiser"]["param_groups"])
    assert rates == [5e-4, 1e-3]
    tuned = net.top.state_dict()
    assert not torch.equal(tuned["0._expand_conv.weight"], imagenet["0._expand_conv.weight"])
    assert torch.equal(tuned["0._bn0.running_mean"], imagenet["0._bn0.running_mean"])  # statistics kept

    with safe_open(out, "pt") as f:  # what the daemon loads: strict, config from the metadata
        served = sa.SAAdjustNet(json.loads(f.metadata()["config"]))
        served.load_state_dict({name: f.get_tensor(name) for name in f.keys()}, strict=True)
    layer = torch.rand(3, 70, 90)
    result, probabilities = sa.adjust(served.eval(), layer)
    assert result.shape == layer.shape and probabilities.shape[0] == 2


def first_loss(pairs):
    from training.data.pairs import read_image
    return float(np.mean([F.huber_loss(sa.network_lab(read_image(p.input)[None]), sa.network_lab(read_image(p.target)[None]),
                                       delta=trainer.HUBER_DELTA, reduction="none").sum(1).mean() for p in pairs]))


@pytest.mark.slow
def test_data_parallel_training_under_torchrun(tmp_path):
    """Two processes, gloo, each its own batches with gradients averaged; rank 0 writes the weights."""
    import json
    import subprocess
    import sys

    from PIL import Image

    rng = np.random.default_rng(1)
    records = []
    for i, split in enumerate(["train", "train", "test"]):
        image = np.asarray(Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).resize((96, 72)))
        Image.fromarray(image).save(tmp_path / ("in%d.png" % i))
        Image.fromarray(255 - image).save(tmp_path / ("out%d.png" % i))
        records.append({"id": "p%d" % i, "split": split, "input": "in%d.png" % i, "target": "out%d.png" % i, "cues": {}})
    (tmp_path / "pairs.json").write_text(json.dumps({"style": "local-xpro", "size": 96, "cue_names": [], "pairs": records}))
    out = tmp_path / "ddp.safetensors"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "backend.cli",
                          "train", "sa-adjust", "--style", "local-xpro", "--data", str(tmp_path), "--steps", "4",
                          "--augmentations", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.exists() and "test split (1 photos)" in run.stdout


def _brushed(full, styled_of):
    """The watercolor brush as the model paints it: strokes found on the view, carried by colour maps."""
    from backend.imaging import brush, transforms, upsample

    view = upsample.downscale(full)
    styled = styled_of(view)
    maps = transforms.ColourTransformMaps(brush.brush_coefficients(view, styled, brush.superpixel_labels(styled)))
    return transforms.apply_colour_transforms(full, maps), view, styled


def test_brush_strokes_follow_the_photos_edges_at_24_megapixels():
    """A red disk on a blue ground, 6000x4000, with fine grain: the brushed result's edges lie on the
    photo's edge (nearest-neighbour labels put them up to half a 12 px view pixel off, in steps), the grain
    inside the strokes is flattened, and the strokes' colours are the styled view's."""
    import cv2

    height, width = 4000, 6000
    ys, xs = np.ogrid[:height, :width]
    distance = np.sqrt((ys - 2000.0) ** 2 + (xs - 3000.0) ** 2) - 1300.0          # signed, px
    inside = np.clip(0.5 - distance, 0.0, 1.0).astype(np.float32)               # anti-aliased disk
    grain = np.random.default_rng(0).normal(0.0, 0.03, (height, width)).astype(np.float32)
    full = torch.from_numpy(np.stack([0.15 + 0.7 * inside, 0.25 + grain, 0.8 - 0.6 * inside]))
    full = full.clamp(0, 1)
    result, view, styled = _brushed(full, lambda view: (view * 1.1).clamp(0, 1))
    assert result.shape == full.shape
    red = result[0].numpy()
    # where the red channel jumps, the photo's edge is (within 2 px); where the photo's edge is, it jumps
    gradient = np.hypot(cv2.Sobel(red, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(red, cv2.CV_32F, 0, 1, ksize=3)) / 8
    strong = gradient > 0.1
    assert strong.sum() > 0.5 * 2 * np.pi * 1300  # one edge's worth of pixels around the disk
    assert np.abs(distance[strong]).max() <= 2.5
    ring_in, ring_out = (distance > -6) & (distance < -3), (distance > 3) & (distance < 6)
    assert red[ring_in].mean() - red[ring_out].mean() > 0.7 * (0.7 * 1.1)
    # fine grain within a stroke is flattened: the green channel's spread inside the disk, far from edges
    core = distance < -60
    assert result[1].numpy()[core].std() < 0.3 * full[1].numpy()[core].std()


def test_brush_at_the_views_size_is_the_style_programs_flattening():
    """At 512 px the carried strokes reproduce the exact superpixel means closely (the targets' brush)."""
    from backend.imaging import brush
    from backend.imaging.color import rgb_to_lab
    from skimage import data

    photo = torch.from_numpy(data.coffee()[:, :512].copy()).permute(2, 0, 1).float() / 255.0  # the view itself
    result, view, styled = _brushed(photo, lambda view: view)
    exact = brush.flatten(styled, brush.superpixel_labels(styled))[0]
    error = torch.linalg.vector_norm(rgb_to_lab(result[None]) - rgb_to_lab(exact[None]), dim=1).mean()
    assert result.shape == photo.shape and float(error) < 2.0  # Lab units; the styles' errors are 4-8


def test_eval_shipped_only_measures_the_shipped_weights_and_keeps_the_variants_rows(tmp_path, monkeypatch, photo):
    """`semantic-enhance eval sa-adjust --shipped-only`: Input, ceiling and shipped rows on the test split,
    the earlier full run's variant rows kept, the manifest's metrics refreshed (captured here)."""
    import argparse
    import json

    from PIL import Image

    from backend import weights
    from training.data import pairs as pairs_module
    from training.sa_adjust import cli as training_cli
    from training.data import pairs as pairs_module

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.ascontiguousarray(photo)).save(folder / "astronaut.png")
    root = tmp_path / "pairs"
    pairs_module.build_pairs("foreground-pop-out", str(root), photos=str(folder), size=128,
                             cache_dir=str(tmp_path / "cues"), log=lambda *_: None)
    listing = json.loads((root / "pairs.json").read_text())
    for record in listing["pairs"]:
        record["split"] = "test"
    (root / "pairs.json").write_text(json.dumps(listing))
    recorded = {}
    monkeypatch.setattr(pairs_module, "ensure_pairs", lambda style, data=None, log=print: str(root))
    monkeypatch.setattr(weights, "update_metrics", lambda name, metrics, **_: recorded.update({name: metrics}))
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"foreground-pop-out": {"global": 9.0, "mse": 8.0}, "watercolor": {"mse": 7.0}}))
    training_cli.run_eval_sa_adjust(argparse.Namespace(style=["foreground-pop-out"], shipped_only=True,
                                                       json=str(table), steps=1, augmentations=1, retrain=False))
    rows = json.loads(table.read_text())
    assert rows["watercolor"] == {"mse": 7.0}
    pop = rows["foreground-pop-out"]
    assert pop["global"] == 9.0 and pop["mse"] == 8.0
    assert pop["global-ceiling"] < pop["input"] and pop["shipped"] < pop["input"]
    assert recorded == {"sa-adjust-foreground-pop-out.safetensors": {"lab_l2": round(pop["shipped"], 3),
                                                                    "input_lab_l2": round(pop["input"], 3)}}


def test_the_trained_map_channels_are_put_in_the_order_of_the_preset_names_without_changing_a_prediction():
    """presets.order gives each name the channel that follows its cue (subject first, the rest in trained
    order); presets.permute moves the map head's rows and the presets' V rows together, so the adjusted
    image is the same and the map's channels are reordered."""
    from training.sa_adjust import presets

    table = {"foreground": [0.1, -0.2, 0.7, 0.0], "sky": [0.05, 0.6, 0.65, -0.1], "vegetation": [0.3, 0.0, -0.1, 0.2]}
    assert presets.order("local-xpro", table) == [2, 1, 0, 3]   # sky cannot take the subject's channel
    assert presets.order("foreground-pop-out", {"foreground": [-0.4, 0.6]}) == [1, 0]
    torch.manual_seed(0)
    net = sa.SAAdjustNet(trainer.network_config("local-xpro", "huber-mt-s")).eval()
    with torch.no_grad():
        net.P.weight.normal_(0, 0.3)
        net.map_logits.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    layer = torch.rand(3, 40, 56)
    before, map_before = sa.adjust(net, layer)
    presets.permute(net, [2, 1, 0, 3])
    after, map_after = sa.adjust(net, layer)
    assert torch.allclose(before, after, atol=1e-5)
    assert torch.allclose(map_after, map_before[[2, 1, 0, 3]], atol=1e-5)


def test_the_refit_with_val_trains_on_train_and_validation_and_reads_only_test(tmp_path, monkeypatch, photo, capsys):
    """`train sa-adjust --with-val` (the refit after a recipe is chosen on validation): the trainer gets the
    train and validation pairs, and only the test split is evaluated, since validation is no longer held out."""
    import argparse
    import json

    from PIL import Image
    from skimage import data

    from training.data import pairs as pairs_module
    from training.sa_adjust import cli as training_cli

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, rgb in (("astronaut", photo), ("chelsea", data.chelsea()), ("rocket", data.rocket())):
        Image.fromarray(np.ascontiguousarray(rgb)).save(folder / ("%s.png" % name))
    root = tmp_path / "pairs"
    pairs_module.build_pairs("foreground-pop-out", str(root), photos=str(folder), size=96,
                             cache_dir=str(tmp_path / "cues"), log=lambda *_: None)
    listing = json.loads((root / "pairs.json").read_text())
    for record, split in zip(sorted(listing["pairs"], key=lambda r: r["id"]), ("train", "val", "test")):
        record["split"] = split
    (root / "pairs.json").write_text(json.dumps(listing))
    monkeypatch.setattr(pairs_module, "ensure_pairs", lambda style, data=None, log=print: str(root))
    given = []
    real_train = trainer.train
    monkeypatch.setattr(trainer, "train", lambda style, photos, *a, **k: given.append(
        sorted(p.split for p in photos)) or real_train(style, photos, *a, **dict(k, log=None)))
    args = argparse.Namespace(style="foreground-pop-out", data=None, variant="huber-mt-s", steps=2, k=None,
                              augmentations=1, seed=0, lr=3e-4, reframes=0, ema=0.0, tune_last_stage=False,
                              parse_weight=0.01, out=str(tmp_path / "w.safetensors"), resume=False, with_val=True,
                              schedule="cosine", colour_context=False, subject_cue=False, colours_of=None)
    training_cli.run_train_sa_adjust(args)
    said = capsys.readouterr().out
    assert given == [["train", "val"]]
    assert "test split (1 photos)" in said and "val split" not in said
    assert training_cli.data_words(str(root), True) == "1 train + 1 validation photos"


def test_the_cosine_schedule_runs_the_rate_from_full_down_to_zero_and_constant_keeps_it():
    factors = [trainer.rate_factor("cosine", step, 100) for step in range(100)]
    assert factors[0] == 1.0 and factors[50] == pytest.approx(0.5) and 0 < factors[-1] < 1e-3
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert {trainer.rate_factor("constant", step, 100) for step in range(100)} == {1.0}
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        trainer.rate_factor("step", 0, 100)


def test_colours_of_learns_from_another_styles_pairs_and_is_judged_on_its_own(tmp_path, monkeypatch, photo, capsys):
    """`train sa-adjust --style watercolor --colours-of foreground-pop-out`: the network learns Pop-Out's
    colours (whose strokes the brush paints over), is saved as a watercolor network (so the brush follows
    it), and both splits are read on watercolor's own pairs."""
    import argparse
    import json

    from PIL import Image
    from safetensors import safe_open
    from skimage import data

    from training.data import pairs as pairs_module
    from training.sa_adjust import cli as training_cli

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, rgb in (("astronaut", photo), ("chelsea", data.chelsea()), ("rocket", data.rocket())):
        Image.fromarray(np.ascontiguousarray(rgb)).save(folder / ("%s.png" % name))
    roots = {}
    for style in ("foreground-pop-out", "watercolor"):
        roots[style] = root = tmp_path / style
        pairs_module.build_pairs(style, str(root), photos=str(folder), size=96, cache_dir=str(tmp_path / "cues"),
                                 log=lambda *_: None)
        listing = json.loads((root / "pairs.json").read_text())
        for record, split in zip(sorted(listing["pairs"], key=lambda r: r["id"]), ("train", "val", "test")):
            record["split"] = split
        (root / "pairs.json").write_text(json.dumps(listing))
    monkeypatch.setattr(pairs_module, "ensure_pairs", lambda style, data=None, log=print: str(roots[style]))
    given = []
    real_train = trainer.train
    monkeypatch.setattr(trainer, "train", lambda style, photos, *a, **k: given.append(
        (style, [str(p.target) for p in photos])) or real_train(style, photos, *a, **dict(k, log=None)))
    out = tmp_path / "w.safetensors"
    args = argparse.Namespace(style="watercolor", data=None, variant="huber-mt-s", steps=2, k=None,
                              augmentations=1, seed=0, lr=3e-4, reframes=0, ema=0.0, tune_last_stage=False,
                              parse_weight=0.01, out=str(out), resume=False, with_val=False,
                              schedule="constant", colour_context=False, subject_cue=True, colours_of="foreground-pop-out")
    training_cli.run_train_sa_adjust(args)
    said = capsys.readouterr().out
    (style, targets), = given
    assert style == "watercolor" and len(targets) == 1
    assert targets[0].startswith(str(roots["foreground-pop-out"]))
    assert "val split (1 photos)" in said and "test split (1 photos)" in said
    with safe_open(str(out), "pt") as handle:
        config = json.loads(handle.metadata()["config"])
    assert config["style"] == "watercolor" and config["colour_context"] is True and config["subject_cue"] is True
    assert sa.has_brush(config["style"])


def test_the_trainer_computes_a_samples_colour_context_once_not_at_every_step(monkeypatch):
    """The colour maps are fixed maths of the photo (~40 ms each on this CPU, against ~100 ms for a whole
    step's four photos without them): the sample keeps them after its first step."""
    net = sa.SAAdjustNet(trainer.network_config("foreground-pop-out", "huber-mt-s", colour_context=True))
    lab = sa.network_lab(torch.rand(1, 3, 96, 128))[0]
    sample = trainer.Sample(lab, lab.clone(), torch.zeros(96, 128, dtype=torch.uint8), None, random_features())
    calls = []
    real = net.colour_maps
    monkeypatch.setattr(net, "colour_maps", lambda lab: calls.append(1) or real(lab))
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        trainer.sample_loss(net, sample, sample.features, "huber-mt-s", torch.full((2,), 0.5), generator)
    assert len(calls) == 1 and torch.equal(sample.colour, real(lab[None]))
