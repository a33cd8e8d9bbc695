"""The critic's training loop: NIMA's EMD (r = 2) loss on target score distributions, plus a ranking
hinge that keeps each clean view above its own degraded copies.

Works on cached pooled features (data.build), so a few thousand steps take seconds on a CPU.
"""

import json
import time

import torch

from backend.models.critic import CRITIC_SIDE, CriticHead, emd_loss, mean_score
from backend.models.critic.network import STRIDES

from . import stationary as flat
from .degrade import DEGRADE_VERSION, target_distribution
from .recipe import DEFAULTS


def view_rows(data):
    """(views, 1 + degraded) row indices, the clean row first (data.build stores each view contiguously)."""
    group = data["group"]
    size = int((group == group[0]).sum())
    rows = torch.arange(len(group)).view(-1, size)
    if not bool((data["strength"][rows[:, 0]] == 0).all()):
        raise ValueError("each view's first row must be its clean image")
    return rows


def ranking_loss(scores, strengths, margin):
    """Hinge on mean scores (views, 1 + degraded): clean above each copy by ``margin`` x its strength."""
    gap = scores[:, :1] - scores[:, 1:]
    return torch.relu(margin * strengths[:, 1:] - gap).mean()


def train(data, seed=0, log=print, mined=None, stationary=None, **options):
    """A CriticHead trained on ``data`` (data.build of the train split) -> (head in eval mode, info).
    ``mined`` (mine.mine, or a list of them): PIEA's results as further groups, one batch of them beside
    every batch of ``data`` (same losses). ``stationary`` (stationary.jacobians) with the option
    ``stationary_weight`` > 0: that weight x |dS/d(raw)|^2 at a batch of its clean views joins the loss."""
    config = dict(DEFAULTS, **{k: v for k, v in options.items() if v is not None})
    torch.manual_seed(seed)
    features, strengths = data["features"], data["strength"]
    head = CriticHead(features=features.shape[1], dropout=config["dropout"], hidden=config["hidden"])
    head.feature_mean.copy_(features.mean(0))
    head.feature_std.copy_(features.std(0).clamp_min(1e-4))
    targets = target_distribution(strengths.numpy())
    rows = view_rows(data)
    tables = [(rows, features, strengths, targets)]
    for extra in ([mined] if isinstance(mined, dict) else list(mined or [])):
        tables.append((view_rows(extra), extra["features"], extra["strength"], target_distribution(extra["strength"].numpy())))
    optimiser = torch.optim.AdamW(head.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config["steps"])
    generator = torch.Generator().manual_seed(seed)
    started = time.time()
    for step in range(config["steps"]):
        emd = rank = 0.0
        for table_rows, table_features, table_strengths, table_targets in tables:
            batch = table_rows[torch.randint(len(table_rows), (config["batch_views"],), generator=generator)]
            predicted = head(table_features[batch.flatten()])
            emd = emd + emd_loss(predicted, table_targets[batch.flatten()])
            rank = rank + ranking_loss(mean_score(predicted).view(batch.shape), table_strengths[batch], config["margin"])
        loss = emd + config["rank_weight"] * rank
        if stationary is not None and config.get("stationary_weight"):
            rows = torch.randint(len(stationary["features"]), (config["batch_views"],), generator=generator)
            loss = loss + config["stationary_weight"] * flat.penalty(head, stationary, rows)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if log and (step + 1) % max(1, config["steps"] // 5) == 0:
            log("  step %d/%d  emd %.4f  rank %.4f" % (step + 1, config["steps"], float(emd), float(rank)))
    info = {"seconds": time.time() - started, "config": config}
    return head.eval(), info


def metadata(head, config, seed):
    """The weights file's string metadata: enough to rebuild the head and to know what trained it."""
    return {"config": json.dumps({"features": head.features, "dropout": head.dropout.p, "strides": STRIDES,
                                  "pooling": "mean+std", "critic_side": CRITIC_SIDE,
                                  "degrade_version": DEGRADE_VERSION, "seed": seed, **config}, sort_keys=True)}


def save(head, path, config, seed):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, path, metadata=metadata(head, config, seed))
