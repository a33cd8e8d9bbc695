"""Training of sa-adjust (Nam & Kim 2017) and of its Table 1 variants and global baseline.

    semantic-enhance train sa-adjust --style local-xpro [--data DIR] [--variant huber-mt-s] [--steps N]

What follows the paper: 2048 sparse pixels per image, augmentation by rotation in [-10, 10] degrees and
horizontal flips with replicated borders, Adam at 1e-4, Huber loss with delta 0.04 (in Lab/100 units),
the K-way semantic adjustment map with the exact expectation over K and the class reweighting
w = alpha a + (1 - alpha) (alpha 0.8, moving average 0.9), multi-task scene parsing with lambda 0.01.
What the world forces (README, model card): the backbone is EfficientNet-Lite0 (no ResNet-50 weights
here), frozen on the CPU so its features are computed once per augmented image and cached, but for its
last stage, which ``--tune-last-stage`` fine-tunes at 0.5x the learning rate as the net's own copy run on
the cached stride-16 features (the whole backbone is fine-tuned at 0.5x when a GPU is used); the
scene-parsing labels are our semantic cues, not ADE20K; the data are our style programs' pairs, not
Yan et al.'s.

Variants: ``mse``, ``huber``, ``huber-mt``, ``huber-mt-s`` (shipped: it has the adjustment map) and
``global`` (a learned global quadratic Lab transform from pooled features: the learned global model).
Data-parallel under ``torchrun --nproc_per_node N -m backend.cli train sa-adjust ...``.
"""

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from backend.models import sa_adjust as sa
from backend import styles as style_registry
from backend.imaging import color
from backend.models.backbones.efficientnet import PYRAMID_CHANNELS, load_efficientnet_lite0

VARIANTS = {
    "mse": dict(loss="mse", multitask=False, semantic_map=False),
    "huber": dict(loss="huber", multitask=False, semantic_map=False),
    "huber-mt": dict(loss="huber", multitask=True, semantic_map=False),
    "huber-mt-s": dict(loss="huber", multitask=True, semantic_map=True),
    "global": dict(loss="huber", multitask=False, semantic_map=False, global_model=True),
}
HUBER_DELTA = 0.04
ALPHA = 0.8
MOMENTUM = 0.9
PARSE_WEIGHT = 0.01
PIXELS_PER_IMAGE = 2048
BATCH = 4
LEARNING_RATE = 1e-4


def network_config(style, variant, k=None, tune_last_stage=False, colour_context=False, subject_cue=False):
    return {"style": style, "variant": variant, "k": int(k or len(style_registry.get(style).presets)),
            "tuned_last_stage": bool(tune_last_stage), "colour_context": bool(colour_context or subject_cue),
            "subject_cue": bool(subject_cue),
            "semantic_map": VARIANTS[variant]["semantic_map"], "rank": 256, "context": 512,
            "renet_hidden": 128, "renet_out": 256,
            "channels": {str(level): PYRAMID_CHANNELS[level] for level in PYRAMID_CHANNELS}}


def parse_labels(cues, cue_names):
    """Cue masks (C, H, W) -> scene-parsing pseudo-labels (H, W) over sa.PARSE_CLASSES."""
    cue = {name: cues[i] for i, name in enumerate(cue_names)}
    zero = torch.zeros_like(cues[0])
    person = torch.maximum(cue.get("faces", zero), cue.get("skin", zero))
    scores = torch.stack([torch.full_like(zero, 0.5), cue.get("sky", zero), cue.get("vegetation", zero), person,
                          cue.get("foreground", zero)])
    return scores.argmax(0)


def augment(tensors, angle, flip):
    """Rotate by ``angle`` degrees and optionally flip every (C, H, W) tensor alike; borders replicate."""
    if flip:
        tensors = [t.flip(-1) for t in tensors]
    if angle == 0:
        return tensors
    theta = math.radians(angle)
    _, h, w = tensors[0].shape
    aspect = w / h
    matrix = torch.tensor([[math.cos(theta), -math.sin(theta) / aspect, 0.0],
                           [math.sin(theta) * aspect, math.cos(theta), 0.0]]).unsqueeze(0)
    out = []
    for t in tensors:
        grid = F.affine_grid(matrix, (1,) + tuple(t.shape), align_corners=False)
        mode = "nearest" if t.dtype == torch.long else "bilinear"
        sampled = F.grid_sample(t[None].float(), grid, mode=mode, padding_mode="border", align_corners=False)[0]
        out.append(sampled.to(t.dtype))
    return out


@dataclass
class Sample:
    lab_in: torch.Tensor      # (3, H, W) network units
    lab_target: torch.Tensor  # (3, H, W)
    labels: torch.Tensor      # (H, W) uint8 (five classes; a quarter of the memory of long)
    rgb: torch.Tensor         # (3, H, W) for on-the-fly backbone passes; None when features are cached
    features: dict            # cached pyramid (float16) or None
    colour: torch.Tensor = None  # the colour-context maps, computed on first use by a net that reads them


def prepare_samples(pairs, backbone, augmentations, cache_features=True, seed=0, log=print):
    """Load pairs, make ``augmentations`` augmented copies each (the first one plain), cache features."""
    from training.data.pairs import PairDataset

    rng = random.Random(seed)
    dataset = PairDataset(pairs, max_side=512)
    samples = []
    started = time.time()
    for index in range(len(dataset)):
        item = dataset[index]
        labels = parse_labels(item["cues"], dataset.cue_names)[None]
        for a in range(augmentations):
            angle, flip = (0.0, False) if a == 0 else (rng.uniform(-10, 10), rng.random() < 0.5)
            rgb, target, lab = augment([item["input"], item["target"], labels], angle, flip)
            features = None
            if cache_features:
                features = {k: v.half() for k, v in sa.backbone_pyramid(backbone, rgb[None]).items()}
            # memory: ~7.4 MB a sample at 512 px (10.2 with the RGB kept and long labels); 2652 samples
            # (39 photos and 16 reframes of each, x 4 augmentations) still need ~22 GB of a 24 GiB machine
            samples.append(Sample(sa.network_lab(rgb[None])[0], sa.network_lab(target[None])[0],
                                  lab[0].to(torch.uint8), None if cache_features else rgb, features))
        if log and (index + 1) % 20 == 0:
            log("  prepared %d/%d photos (%.0f s)" % (index + 1, len(dataset), time.time() - started))
    return samples


def sparse_pixels(sample, count, generator):
    """``count`` random pixel centres: normalised positions (1, P, 2) and flat indices (P,)."""
    _, h, w = sample.lab_in.shape
    index = torch.randint(0, h * w, (count,), generator=generator)
    ys, xs = index // w, index % w
    positions = torch.stack([(xs + 0.5) / w * 2 - 1, (ys + 0.5) / h * 2 - 1], dim=-1).unsqueeze(0)
    return positions, index


class GlobalQuadratic(sa.LastStageOwner):
    """The learned global baseline: pooled backbone features -> one 3x10 quadratic Lab transform per image,
    starting at the identity (the same transform family as the per-image ceiling)."""

    def __init__(self, config):
        super().__init__(config)
        self.config = dict(config)
        channels = {int(k): v for k, v in config["channels"].items()}
        self.mlp = torch.nn.Sequential(torch.nn.Linear(channels[16] + channels[32], 256), torch.nn.ReLU(),
                                       torch.nn.Linear(256, 30))
        torch.nn.init.zeros_(self.mlp[-1].weight)
        torch.nn.init.zeros_(self.mlp[-1].bias)

    def matrix(self, features):
        pooled = torch.cat([F.adaptive_avg_pool2d(features[16].float(), 1).flatten(1),
                            F.adaptive_avg_pool2d(self.level32(features), 1).flatten(1)], dim=1)
        identity = torch.zeros(3, 10)
        identity[0, 6], identity[1, 7], identity[2, 8] = 1.0, 1.0, 1.0
        return identity + 0.1 * self.mlp(pooled).reshape(-1, 3, 10)

    def transform(self, features, lab):
        """lab (N, P, 3) network units -> (N, P, 3)."""
        basis = color.quadratic_lab_basis(lab.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # (N, 10, P)
        return torch.einsum("nij,njp->npi", self.matrix(features), basis)


def build_net(config):
    return GlobalQuadratic(config) if config["variant"] == "global" else sa.SAAdjustNet(config)


def sample_loss(net, sample, features, variant, moving_average, generator, parse_weight=PARSE_WEIGHT):
    """The loss of one image's sparse pixels; returns (loss, mean adjustment-map probabilities or None)."""
    spec = VARIANTS[variant]
    positions, index = sparse_pixels(sample, PIXELS_PER_IMAGE, generator)
    lab_at = sample.lab_in.flatten(1)[:, index].T.unsqueeze(0)
    target = sample.lab_target.flatten(1)[:, index].T.unsqueeze(0)
    if spec.get("global_model"):
        return F.huber_loss(net.transform(features, lab_at), target, delta=HUBER_DELTA, reduction="none").sum(-1).mean(), None
    if sample.colour is None and getattr(net, "colour_context", False):
        sample.colour = net.colour_maps(sample.lab_in[None])   # ~40 ms a photo: once, not at every step
    result = sa.forward_pixels(net, features, lab_at, positions, sample.colour)
    if spec["semantic_map"]:
        errors = F.huber_loss(result["presets"], target.unsqueeze(-2).expand_as(result["presets"]),
                              delta=HUBER_DELTA, reduction="none").sum(-1)             # (1, P, K)
        weights = ALPHA * moving_average + (1 - ALPHA)
        loss = (result["map"] * weights * errors).sum(-1).mean()
        frequencies = result["map"].detach().mean(dim=(0, 1))
    else:
        if spec["loss"] == "mse":
            loss = ((result["output"] - target) ** 2).sum(-1).mean() * 0.5
        else:
            loss = F.huber_loss(result["output"], target, delta=HUBER_DELTA, reduction="none").sum(-1).mean()
        frequencies = None
    if spec["multitask"]:
        labels = sample.labels.flatten()[index].long().unsqueeze(0)
        loss = loss + parse_weight * F.cross_entropy(result["parse"].transpose(1, 2), labels)
    return loss, frequencies


def _update_average(average, net, decay):
    """average <- decay average + (1 - decay) weights, in place; integer buffers are copied."""
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if value.is_floating_point():
                average[name].mul_(decay).add_(value.detach(), alpha=1.0 - decay)
            else:
                average[name].copy_(value)


def _distributed():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return world, rank


SCHEDULES = ("constant", "cosine")


def rate_factor(schedule, step, steps):
    """The learning rate's multiplier at ``step`` of ``steps`` (0-based)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    raise ValueError("unknown schedule %r (known: %s)" % (schedule, ", ".join(SCHEDULES)))


def train(style, pairs_train, out_path, variant="huber-mt-s", steps=3000, k=None, seed=0, augmentations=4,
          checkpoint=None, resume=False, device=None, log=print, finetune_backbone=None, samples=None,
          learning_rate=LEARNING_RATE, ema=0.0, parse_weight=PARSE_WEIGHT,
          tune_last_stage=False, name_presets=True, schedule="constant", colour_context=False, subject_cue=False):
    """Train one network; write its weights (.safetensors with the config as metadata) to ``out_path``.

    ``ema`` > 0 ships the exponential moving average of the weights (decay ``ema``, warmed up as
    min(ema, (1 + t) / (10 + t))) instead of the last step's: batches of four images are noisy.

    ``tune_last_stage`` fine-tunes the backbone's last stage (blocks 11-15) at 0.5x the learning rate as
    part of the net (the paper fine-tunes its whole backbone at 0.5x; on the CPU only this stage is
    affordable, and the cached level-16 features stay valid).

    ``colour_context`` gives the heads the photo's colour context (network.py; not in the paper);
    ``subject_cue`` adds its saliency maps standardised over the photo (context.subject_cue; implies it).

    ``schedule`` "cosine" lowers every group's rate along half a cosine to 0 at the last step (the paper:
    constant), so the weights shipped are not one noisy late iterate.

    ``samples`` (from ``prepare_samples``) lets several variants share one preparation of the data.
    ``name_presets``: the map's channels are put in the order of the style's preset names (presets.py)."""
    from safetensors.torch import save_file

    world, rank = _distributed()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    finetune = (device == "cuda") if finetune_backbone is None else finetune_backbone
    torch.manual_seed(seed)  # the same initial weights in every process
    generator = torch.Generator().manual_seed(seed + 1000 * rank)
    config = network_config(style, variant, k, tune_last_stage, colour_context, subject_cue)
    net = build_net(config).to(device)
    backbone = load_efficientnet_lite0(device=device)
    top = getattr(net, "top", None)
    if top is not None:
        net.start_from(backbone)
    backbone.requires_grad_(finetune)
    quiet = log if rank == 0 else None
    if quiet:
        quiet("sa-adjust %s/%s: %d photos, %s (%s, backbone %s)" % (
            style, variant, len(pairs_train), "%d augmentations each" % augmentations if samples is None
            else "%d prepared samples" % len(samples), device, "fine-tuned" if finetune else "frozen"))
    finished = resume and checkpoint and os.path.exists(checkpoint) and int(
        torch.load(checkpoint, map_location="cpu", weights_only=True)["step"]) >= steps
    if samples is None and not finished:  # a run stopped at a checkpoint and finished there needs no data
        samples = prepare_samples(pairs_train, backbone, augmentations, cache_features=not finetune, seed=seed,
                                  log=quiet)
    tuned = set(id(p) for p in top.parameters()) if top is not None else set()
    groups = [{"params": [p for p in net.parameters() if id(p) not in tuned], "lr": learning_rate}]
    if tuned:
        groups.append({"params": list(top.parameters()), "lr": learning_rate * 0.5})
    if finetune:
        groups.append({"params": backbone.parameters(), "lr": learning_rate * 0.5})
    optimiser = torch.optim.Adam(groups)
    base_rates = [group["lr"] for group in groups]   # before a resume loads a checkpoint's (scheduled) rates
    moving_average = torch.full((config["k"],), 1.0 / config["k"])
    average = {name: value.detach().clone() for name, value in net.state_dict().items()} if ema else None
    start_step = 0
    if resume and checkpoint and os.path.exists(checkpoint):
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        optimiser.load_state_dict(state["optimiser"])
        moving_average = state["moving_average"]
        average = state.get("average", average)
        start_step = int(state["step"])
        if quiet:
            quiet("resumed from %s at step %d" % (checkpoint, start_step))
    net.train()
    started, running = time.time(), None
    for step in range(start_step, steps):
        batch = [samples[int(i)] for i in torch.randint(0, len(samples), (BATCH,), generator=generator)]
        for group, rate in zip(optimiser.param_groups, base_rates):
            group["lr"] = rate * rate_factor(schedule, step, steps)
        optimiser.zero_grad()
        total, frequencies = 0.0, []
        for sample in batch:
            if sample.features is not None:
                features = {k: v.to(device) for k, v in sample.features.items()}
            else:
                from backend.models.backbones.efficientnet import preprocess
                features = backbone.pyramid(preprocess(sample.rgb[None].to(device)))
            loss, freq = sample_loss(net, sample, features, variant, moving_average.to(device), generator,
                                    parse_weight)
            (loss / BATCH).backward()
            total += loss.item() / BATCH
            if freq is not None:
                frequencies.append(freq.cpu())
        if world > 1:  # data parallel: every process a different batch, gradients averaged
            for parameter in net.parameters():
                if parameter.grad is not None:
                    torch.distributed.all_reduce(parameter.grad)
                    parameter.grad /= world
        optimiser.step()
        if average is not None:
            _update_average(average, net, min(ema, (1.0 + step) / (10.0 + step)))
        if frequencies:
            moving_average = MOMENTUM * moving_average + (1 - MOMENTUM) * torch.stack(frequencies).mean(0)
        running = total if running is None else 0.98 * running + 0.02 * total
        if quiet and (step % 25 == 0 or step == steps - 1):
            rate = (step + 1 - start_step) / max(time.time() - started, 1e-9)
            bar = "#" * int(30 * (step + 1) / steps)
            sys.stderr.write("\r[%-30s] step %d/%d loss %.5f  %.1f it/s  ETA %.0f s " % (
                bar, step + 1, steps, running, rate, (steps - step - 1) / max(rate, 1e-9)))
            sys.stderr.flush()
        if checkpoint and rank == 0 and ((step + 1) % 250 == 0 or step == steps - 1):
            os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
            torch.save({"net": net.state_dict(), "optimiser": optimiser.state_dict(),
                        "moving_average": moving_average, "average": average, "step": step + 1}, checkpoint)
    if quiet:
        sys.stderr.write("\n")
    if average is not None:
        net.load_state_dict(average)
    net.eval()
    if rank == 0:
        if name_presets:
            from .presets import name_presets as put_in_order
            order = put_in_order(net.cpu(), style)
            if quiet and order is not None:
                quiet("map channels put in the order of the preset names (trained channels %s)" % (order,))
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        tensors = {name: value.detach().cpu().contiguous() for name, value in net.state_dict().items()}
        save_file(tensors, out_path, metadata={"config": json.dumps(config), "steps": str(steps),
                                               "seconds": "%.0f" % (time.time() - started)})
    return net.cpu(), {"seconds": time.time() - started, "steps": steps, "final_loss": running, "device": device,
                       "finetune": finetune}
