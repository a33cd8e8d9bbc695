"""The aesthetic critic: its loss, its degradations, its training, its shipped weights, and its serving
(the daemon's Score reply, with BRISQUE beside it, and `semantic-enhance score --json`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend import models
from backend.client import BackendError
from backend.imaging import upsample
from backend.imaging.files import write_image
from backend.models.critic import CriticHead, emd_loss, mean_score, score_distribution
from training.critic import data as critic_data, evaluate, train
from training.critic.degrade import KINDS, degrade, draw_recipe, target_distribution

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
installed = pytest.mark.skipif(not models.get("critic").installed(),
                               reason="critic weights are not installed (semantic-enhance train critic)")


def as_view(rgb_u8, side=512):
    return upsample.downscale(torch.from_numpy(rgb_u8.astype(np.float32) / 255).permute(2, 0, 1), side)[0]


def one_hot(index):
    return torch.nn.functional.one_hot(torch.tensor([index]), 10).float()


def test_emd_loss_known_values():
    assert float(emd_loss(one_hot(4), one_hot(4))) == 0.0
    # one bin apart: the CDFs differ by 1 in one of ten bins -> sqrt(1/10)
    assert float(emd_loss(one_hot(4), one_hot(5))) == pytest.approx(0.1 ** 0.5, abs=1e-6)
    # score 1 against score 10: nine of ten bins differ by 1 -> sqrt(9/10)
    assert float(emd_loss(one_hot(0), one_hot(9))) == pytest.approx(0.9 ** 0.5, abs=1e-6)
    # half the mass moved one bin: |0.5| in one bin -> sqrt(0.25/10); batch mean of that and 0
    half = torch.tensor([[0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0]])
    pair = emd_loss(torch.cat([half, one_hot(4)]), torch.cat([one_hot(5), one_hot(4)]))
    assert float(pair) == pytest.approx(0.5 * (0.025 ** 0.5), abs=1e-6)


def test_target_distribution_falls_with_strength():
    targets = target_distribution([0.0, 0.3, 0.6, 1.0])
    assert torch.allclose(targets.sum(-1), torch.ones(4), atol=1e-6)
    means = mean_score(targets)
    assert means[0] == pytest.approx(7.5, abs=0.02) and means[-1] == pytest.approx(2.07, abs=0.01)  # the tail below 1 folds into 1
    assert bool((means[1:] < means[:-1]).all())


def test_degradations_are_deterministic_per_seed_and_grow_with_strength(coffee):
    view = as_view(coffee, 128)
    seen = set()
    for seed in range(24):
        seen.update(kind for kind, _, _ in draw_recipe(seed, tuple(view.shape)))
        first, applied = degrade(view, 0.6, seed)
        again, _ = degrade(view, 0.6, seed)
        assert torch.equal(first, again)
        assert torch.allclose(degrade(view, 0.0, seed)[0], view, atol=1e-5)
        distances = [float((degrade(view, s, seed)[0] - view).abs().mean()) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert all(b >= a - 1e-4 for a, b in zip(distances, distances[1:])), (seed, applied, distances)
        assert distances[-1] > 0.004, (seed, applied, distances)
    assert seen == set(KINDS)
    assert not torch.equal(degrade(view, 0.6, 1)[0], degrade(view, 0.6, 2)[0])


def test_a_short_training_run_learns_clean_above_degraded(photo, coffee):
    from skimage import data

    photos = [("astronaut", photo), ("coffee", coffee), ("chelsea", data.chelsea())]
    features = critic_data.views_features(
        [(name, lambda rng, rgb=rgb: [as_view(rgb, 160), as_view(rgb[::-1, ::-1].copy(), 160)]) for name, rgb in photos],
        degraded=4, seed=0)
    head, _ = train.train(features, seed=0, steps=300, log=None)
    trained = evaluate.evaluate(head, features)
    assert trained["pairwise_accuracy"] >= 0.9 and trained["spearman_per_photo"] < -0.5, trained
    # degradations it has not seen (another seed, the evaluation grid 0.1 .. 0.9) of a photo it has
    fresh = critic_data.views_features([("chelsea", lambda rng: [as_view(photos[2][1], 160)])], seed=7, evaluation=True)
    assert evaluate.evaluate(head, fresh)["pairwise_accuracy"] >= 0.7


@installed
def test_shipped_weights_score_clean_test_photos_above_their_degraded_versions():
    """On the corpus's test split (never trained on): each photo against two degraded copies."""
    photos = critic_data.corpus_photos("test") if os.path.exists(os.path.join("data", "corpus")) else []
    if not photos:
        pytest.skip("the photo corpus is not built (semantic-enhance data corpus)")
    critic = models.get("critic")
    critic.ensure_loaded("cpu")
    from PIL import Image

    def load_rgb(path, max_side):
        with Image.open(path) as image:
            image.draft("RGB", (max_side, max_side))   # JPEGs decode at a fraction of full size: fast
            image = image.convert("RGB")
            image.thumbnail((max_side, max_side), Image.LANCZOS)
            return np.asarray(image)

    wins, pairs = 0, 0
    for index, (_, path) in enumerate(photos[:8]):
        view = as_view(load_rgb(path, max_side=1024))
        clean = mean_score(score_distribution(critic.head, view[None])[None])
        for strength, seed in ((0.4, 100 + index), (0.8, 200 + index)):
            degraded = mean_score(score_distribution(critic.head, degrade(view, strength, seed)[0][None])[None])
            wins, pairs = wins + int(clean > degraded), pairs + 1
    assert wins / pairs >= 0.8, (wins, pairs)


@installed
def test_daemon_score_reply_carries_the_critic_distribution(daemon, photo):
    result = daemon.client().score(photo)
    assert result.summary.model == "critic"
    (score,) = [s for s in result.summary.scores if s.name == "critic"]
    distribution = np.array(score.distribution)
    assert distribution.shape == (10,) and abs(distribution.sum() - 1) < 1e-4 and (distribution >= 0).all()
    assert score.value == pytest.approx(float(distribution @ np.arange(1, 11)), abs=1e-3)
    assert 1.0 <= score.value <= 10.0
    # a clearly spoiled copy of the same photo scores lower over the wire too
    spoiled = (np.clip(photo.astype(np.float32) * 3.0, 0, 255)).astype(np.uint8)
    assert daemon.client().score(spoiled).summary.scores[0].value < score.value


@installed
def test_daemon_score_reply_also_carries_brisque(daemon, photo):
    """BRISQUE, the independent scorer, on the same 512 px view: no distribution, lower is better."""
    from backend.models.critic import brisque

    scores = daemon.client().score(photo).summary.scores
    assert [s.name for s in scores] == ["critic", "brisque"]
    value = scores[1].value
    assert list(scores[1].distribution) == [] and 0 <= value <= 100
    assert value == pytest.approx(brisque.load().score(as_view(photo)), abs=1e-3)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    assert daemon.client().score(noisy).summary.scores[1].value > value + 10
    # a flat layer: BRISQUE is undefined there and left out; the critic still answers
    assert [s.name for s in daemon.client().score(np.full((64, 64, 3), 128, np.uint8)).summary.scores] == ["critic"]


@installed
def test_daemon_refuses_a_layer_too_small_to_score(daemon):
    with pytest.raises(BackendError, match="at least 32 pixels on each side") as caught:
        daemon.client().score(np.zeros((16, 200, 3), np.uint8))
    assert caught.value.code == "INVALID_ARGUMENT"


@installed
def test_score_command_prints_and_writes_json(daemon, tmp_path, coffee):
    source, out = tmp_path / "in.png", tmp_path / "scores.json"
    write_image(str(source), coffee)
    run = subprocess.run([sys.executable, "-m", "backend.cli", "score", str(source), "--json", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=daemon.env())
    assert run.returncode == 0, run.stderr
    written = json.loads(out.read_text())
    assert written == json.loads(run.stdout)
    critic, brisque = written["scores"]
    assert critic["name"] == "critic" and len(critic["distribution"]) == 10
    assert critic["value"] == pytest.approx(sum((i + 1) * p for i, p in enumerate(critic["distribution"])), abs=1e-3)
    assert brisque["name"] == "brisque" and brisque["distribution"] == [] and 0 <= brisque["value"] <= 100


def test_score_is_the_critics_and_progressive_uses_the_same_weights():
    assert models.get("progressive").weights[0] == models.get("critic").weights[0] == "aesthetic-critic.safetensors"
    assert "score" not in models.get("progressive").tasks
    assert models.for_task("score")[0].id == "critic"
    head = CriticHead()
    assert sum(p.numel() for p in head.parameters()) * 4 < 5 << 20


def test_stationary_term_is_the_score_slope_along_the_jacobian_and_training_flattens_it():
    """stationary.slope is dS/d(raw) = dS/df . J (checked against a finite difference of the head along J),
    and the training term drives it toward zero at the table's clean views."""
    from training.critic import stationary

    torch.manual_seed(0)
    head = CriticHead(features=6, dropout=0.0).eval()
    table = {"features": torch.randn(5, 6, dtype=torch.float64), "jacobian": torch.randn(5, 6, 3, dtype=torch.float64)}
    head = head.double()
    slope = stationary.slope(head, table)
    step = 1e-6
    with torch.no_grad():
        for k in range(3):
            moved = mean_score(head(table["features"] + step * table["jacobian"][:, :, k]))
            assert torch.allclose((moved - mean_score(head(table["features"]))) / step, slope[:, k], atol=1e-4)
    before = float(slope.norm())
    head.train()
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(200):
        loss = stationary.penalty(head, table, torch.arange(5))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(stationary.slope(head.eval(), table).norm()) < 0.05 * before


def test_a_head_with_a_hidden_layer_round_trips_through_its_weights_file(tmp_path):
    """``train critic --hidden N`` (tried as PIEA's guide): the file alone says its shape, and the plain
    NIMA head still loads as before (no hidden tensors)."""
    from safetensors.torch import load_file

    from backend.models.critic.model import load_head
    from training.critic import train as critic_train

    for hidden in (0, 16):
        torch.manual_seed(hidden)
        head = CriticHead(features=6, dropout=0.0, hidden=hidden).eval()
        path = str(tmp_path / ("head-%d.safetensors" % hidden))
        critic_train.save(head, path, {"hidden": hidden}, seed=0)
        assert ("hidden.weight" in load_file(path)) == bool(hidden)
        loaded = load_head(path)
        pooled = torch.randn(3, 6)
        assert torch.allclose(loaded(pooled), head(pooled)) and loaded.features == 6
