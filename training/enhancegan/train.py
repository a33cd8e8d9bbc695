"""EnhanceGAN's training (Deng, Loy & Tang 2018, with the authors' schedule where this CPU allows).

1. ``fit_filter_nets``: each of the three colour filters' small CNN is fitted to our reference filter
   (enhancers.photo_filter) on random colours and corpus pixels (MSE).
2. ``train_gan``: the generator's piecewise and deep-filter heads against a discriminator that starts as
   the aesthetic critic (pre-trained on clean versus degraded photos: the paper's "good/bad" classifier)
   and is then trained as a WGAN critic on its score S = sum_i i p_i: real = clean views, fake = enhanced
   bad views; RMSprop at 5e-5 for both, discriminator weights clamped to +-2 (authors' code), 50
   discriminator steps first, then one per generator step. Generator loss:
       -D(G(x))  +  w_feature * ||phi(G(x)) - phi(x)||^2  +  w_better * relu(S0(x) - S0(G(x)))
   phi = the backbone's pooled features (standardised by the critic's statistics): feature reconstruction,
   the paper's content term; S0 = the frozen pre-trained critic: "the output scores better than the input".
   The backbone stays frozen: the heads read cached maps of the bad views, and the enhanced 256 px copy
   goes forward and back through the backbone to reach D.
   ``w_recover`` > 0 adds a term the paper does not have (it has no pairs): the mean CIELab distance
   (/100) of G(x) to the clean view x was spoiled from ("distort and recover", as PIEA is evaluated).
"""

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from backend.imaging import color, enhancers
from backend.models.critic.network import mean_score, pooled_features
from backend.models.enhancegan.network import FilterNet, Generator
from training.critic.data import corpus_photos
from training.data.cues import load_rgb

DEFAULTS = {"steps": 200, "batch": 2, "lr": 5e-5, "critic_steps_first": 20, "clamp": 2.0,
            "w_feature": 1.0, "w_better": 1.0, "w_adversarial": 1.0, "w_recover": 0.0}


def fit_filter_nets(steps=1500, seed=0, log=print):
    """Three FilterNets fitted to the reference filters -> (nets, {filter: RMSE on held-out colours})."""
    torch.manual_seed(seed)
    photos = corpus_photos("train")
    rng = np.random.default_rng(seed)
    pixels = []
    for _, path in photos[::4]:
        rgb = np.asarray(load_rgb(path), dtype=np.float32)[::16, ::16].reshape(-1, 3) / 255
        pixels.append(rgb[rng.choice(len(rgb), min(len(rgb), 4000), replace=False)])
    corpus = torch.from_numpy(np.concatenate(pixels))
    nets, errors = [], {}
    for name in enhancers.PHOTO_FILTERS:
        net = FilterNet()
        optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
        for step in range(steps):
            colours = torch.cat((torch.rand(2048, 3), corpus[torch.randint(len(corpus), (2048,))]))
            x = colours.T.reshape(1, 3, -1, 1)
            loss = F.mse_loss(net(x), enhancers.photo_filter(x, name))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        held = torch.rand(1, 3, 20000, 1, generator=torch.Generator().manual_seed(99))
        with torch.no_grad():
            errors[name] = float((net(held) - enhancers.photo_filter(held, name)).pow(2).mean().sqrt())
        if log:
            log("  filter %-10s RMSE %.4f (sRGB units, 20000 random colours)" % (name, errors[name]))
        nets.append(net.eval())
    return nets, errors


def start_near_identity(generator):
    """Output biases that start both enhancers close to doing nothing (the paper's generator starts from
    random heads; ours would first make every photo worse and the adversarial term would have to undo it):
    piecewise a, b, p, alpha, beta near the low end of their ranges and q near the high end (a short
    identity-like curve, the least stretch); filter weights sigmoid(-3) = 0.05. Inside hardtanh's linear
    part (+-0.95), so gradients flow."""
    with torch.no_grad():
        bias = generator.piecewise.out.bias
        bias[:6] = torch.tensor([-0.95, -0.95, -0.95, 0.95, -0.95, -0.95])
        generator.piecewise.out.weight[:6] *= 0.1
        generator.filters.out.bias[:3] = -3.0
        generator.filters.out.weight[:3] *= 0.1


class Judge:
    """The backbone (frozen, differentiable in its input) and the critic heads: pooled features of an image."""

    def __init__(self, critic_head):
        from backend.models.backbones.cache import BACKBONES, DEFAULT_BACKBONE, DEFAULT_CACHE

        self.backbone = DEFAULT_CACHE.model(DEFAULT_BACKBONE, "cpu")
        self.preprocess = BACKBONES[DEFAULT_BACKBONE][1]
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.fixed = copy.deepcopy(critic_head).eval()
        for parameter in self.fixed.parameters():
            parameter.requires_grad_(False)

    def pooled(self, rgb):
        return pooled_features(self.backbone.pyramid(self.preprocess(rgb)))

    def standardised(self, pooled):
        return (pooled - self.fixed.feature_mean) / self.fixed.feature_std


def enhance(generator, method, fmap, image):
    """One enhancer on one image: fmap (1, 432, h, w), image (1, 3, H, W) -> (output, parameter values)."""
    if method == "piecewise":
        values = generator.curves(fmap)
        return enhancers.piecewise(image, values), values
    weights = generator.filter_weights(fmap)
    return generator.filtered(image, weights), weights


def train_gan(rows, critic_head, filter_nets, methods=("piecewise", "deep-filter"), seed=0, log=print, **options):
    """The generator's enhancer heads trained adversarially on ``rows`` (data.build of the train split).
    Returns (generator, info)."""
    config = dict(DEFAULTS, **{k: v for k, v in options.items() if v is not None})
    torch.manual_seed(seed)
    generator = Generator()
    start_near_identity(generator)
    for net, fitted in zip(generator.filter_nets, filter_nets):
        net.load_state_dict(fitted.state_dict())
        for parameter in net.parameters():
            parameter.requires_grad_(False)
    judge = Judge(critic_head)
    discriminator = copy.deepcopy(critic_head).train()
    discriminator.dropout.p = 0.0
    heads = [p for name, p in generator.named_parameters() if not name.startswith(("filter_nets", "crop"))]
    g_optimiser = torch.optim.RMSprop(heads, lr=config["lr"])
    d_optimiser = torch.optim.RMSprop(discriminator.parameters(), lr=config["lr"])
    rng = np.random.default_rng(seed)
    real = torch.stack([row["clean_pooled"] for row in rows])
    pairs = [(i, j) for i, row in enumerate(rows) for j in range(len(row["bad"]))]
    history, started = [], time.time()
    judged = {}   # (row, copy) -> the bad copy's pooled features and fixed-critic score: computed once

    def judge_input(i, j):
        if (i, j) not in judged:
            with torch.no_grad():
                pooled = judge.pooled(rows[i]["bad"][j][None])
                judged[(i, j)] = (pooled, mean_score(judge.fixed(pooled)))
        return judged[(i, j)]

    def d_score(pooled):
        return mean_score(discriminator(pooled))

    def d_step(fake_pooled):
        batch = real[torch.from_numpy(rng.integers(len(real), size=len(fake_pooled)))]
        loss = d_score(fake_pooled).mean() - d_score(batch).mean()
        d_optimiser.zero_grad()
        loss.backward()
        d_optimiser.step()
        with torch.no_grad():
            for parameter in discriminator.parameters():
                parameter.clamp_(-config["clamp"], config["clamp"])
        return -float(loss.detach())

    def fakes(batch, grad):
        out = []
        for i, j in batch:
            fmap, image = rows[i]["bad_maps"][j][None].float(), rows[i]["bad"][j][None]
            for method in methods:
                with torch.set_grad_enabled(grad):
                    output, _ = enhance(generator, method, fmap, image)
                    out.append(((i, j), output))
        return out

    # the discriminator first learns what the generator's first outputs look like
    for step in range(config["critic_steps_first"]):
        batch = [pairs[k] for k in rng.integers(len(pairs), size=config["batch"])]
        with torch.no_grad():
            pooled = torch.cat([judge.pooled(output) for _, output in fakes(batch, False)])
        d_step(pooled)
    for step in range(config["steps"]):
        batch = [pairs[k] for k in rng.integers(len(pairs), size=config["batch"])]
        adversarial = feature = better = 0.0
        fake_pooled = []
        made = fakes(batch, True)
        recover = 0.0
        for key, output in made:
            if config["w_recover"]:
                clean = rows[key[0]]["clean"][None]
                recover = recover + (color.rgb_to_lab(output) - color.rgb_to_lab(clean)).pow(2).sum(1).add(1e-6).sqrt().mean() / 100
            pooled_out = judge.pooled(output)
            pooled_in, s_in = judge_input(*key)
            fake_pooled.append(pooled_out.detach())
            adversarial = adversarial - d_score(pooled_out).mean()
            feature = feature + (judge.standardised(pooled_out) - judge.standardised(pooled_in)).pow(2).mean()
            better = better + torch.relu(s_in - mean_score(judge.fixed(pooled_out))).mean()
        n = len(made)
        loss = (config["w_adversarial"] * adversarial + config["w_feature"] * feature + config["w_better"] * better
                + config["w_recover"] * recover) / n
        g_optimiser.zero_grad()
        loss.backward()
        g_optimiser.step()
        wasserstein = d_step(torch.cat(fake_pooled))
        history.append((float(adversarial.detach()) / n, float(feature.detach()) / n, float(better.detach()) / n,
                        wasserstein))
        if log and (step % 10 == 0 or step == config["steps"] - 1):
            recent = np.mean(history[-10:], 0)
            log("  step %4d  -D(G) %.3f  feature %.4f  better %.4f  W %.3f  %.0f s"
                % (step, *recent, time.time() - started))
    info = {"config": config, "seconds": round(time.time() - started), "last": np.mean(history[-50:], 0).tolist()}
    return generator.eval(), info
