"""What the critic's card reports: on each held-out photo (the whole photo at the daemon's 512 px), the
clean view and nine degraded copies at strengths 0.1 .. 0.9 (one seeded recipe each):

- pairwise accuracy: the fraction of (clean, degraded copy) pairs where the clean view scores higher;
- Spearman's rank correlation of score with degradation strength (ideal -1), per photo (mean) and
  pooled over all photos' images;
- pairwise accuracy by degradation kind (pairs whose recipe includes that kind).
"""

import numpy as np
import torch
from scipy.stats import spearmanr

from backend.models.critic import mean_score

from .train import view_rows


def scores_of(head, data):
    with torch.no_grad():
        return mean_score(head.eval()(data["features"]))


def evaluate(head, data):
    scores, rows = scores_of(head, data), view_rows(data)
    strengths = data["strength"]
    grid, grid_strength = scores[rows], strengths[rows]
    wins = grid[:, :1] > grid[:, 1:]
    per_photo = [spearmanr(grid_strength[i].numpy(), grid[i].numpy())[0] for i in range(len(rows))]
    by_kind = {}
    for r, row in enumerate(rows):
        for c, index in enumerate(row[1:].tolist()):
            for kind in data["kinds"][index]:
                by_kind.setdefault(kind, []).append(bool(wins[r, c]))
    return {"photos": len(rows), "pairs": int(wins.numel()), "pairwise_accuracy": float(wins.float().mean()),
            "spearman_per_photo": float(np.nanmean(per_photo)),
            "spearman_pooled": float(spearmanr(strengths.numpy(), scores.numpy())[0]),
            "clean_mean_score": float(grid[:, 0].mean()), "degraded_mean_score": float(grid[:, 1:].mean()),
            "by_kind": {kind: (float(np.mean(w)), len(w)) for kind, w in sorted(by_kind.items())}}


def format_result(split, result):
    lines = ["%s: %d photos, %d pairs: pairwise accuracy %.3f, Spearman(score, strength) %.3f per photo, %.3f pooled; "
             "mean score clean %.2f, degraded %.2f" % (
                 split, result["photos"], result["pairs"], result["pairwise_accuracy"], result["spearman_per_photo"],
                 result["spearman_pooled"], result["clean_mean_score"], result["degraded_mean_score"])]
    lines.append("  by kind: " + ", ".join("%s %.2f (%d)" % (k, a, n) for k, (a, n) in result["by_kind"].items()))
    return "\n".join(lines)


def time_score(image, repeats=5):
    """Median seconds of one ``score`` request in process (decode, downscale, backbone, head), the feature
    cache cleared each time so every run pays the backbone pass; the model loaded and warmed first."""
    import time

    from backend import models
    from backend.models.backbones.cache import DEFAULT_CACHE

    critic = models.get("critic")
    critic.ensure_loaded("cpu")
    times = []
    for _ in range(repeats + 1):
        DEFAULT_CACHE.clear()
        started = time.perf_counter()
        outcome = critic.run(models.Request(kind="score", image=image))
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:])), outcome.scores[0]["value"]
