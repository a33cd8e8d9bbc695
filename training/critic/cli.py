"""The critic's sub-commands, registered on ``semantic-enhance train`` and ``eval``.

    semantic-enhance train critic [--steps 3000] [--seed 0] [--views 8] [--degraded 10] [--out FILE]
    semantic-enhance eval critic [--split val|test|both]

Features of the corpus views are cached in ``.cache/train/critic`` (the first run spends minutes on
backbone passes; later runs seconds). Heavy imports happen inside the commands.
"""

import os
import time

from training.critic.recipe import DEFAULTS, DEGRADED, VIEWS


def register_train(models):
    p = models.add_parser("critic", help="aesthetic critic (NIMA's head): clean corpus photos vs degraded copies")
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--rank-weight", type=float, default=DEFAULTS["rank_weight"],
                   help="weight of the clean-above-degraded hinge next to the EMD loss")
    p.add_argument("--views", type=int, default=VIEWS, help="views per training photo: the whole photo and random crops")
    p.add_argument("--degraded", type=int, default=DEGRADED, help="degraded copies per view")
    p.add_argument("--mine-rounds", type=int, default=DEFAULTS["mine_rounds"],
                   help="rounds of PIEA hard negatives (training/critic/mine.py): each runs the search on training "
                        "views with the current critic and retrains with what it found")
    p.add_argument("--nearby-views", type=int, default=DEFAULTS["nearby_views"],
                   help="views per training photo given small random filter-bank moves (training/critic/mine.py "
                        "nearby): the critic learns that PIEA's moves away from a clean photo score lower")
    p.add_argument("--nearby-copies", type=int, default=DEFAULTS["nearby_copies"], help="moves per nearby view")
    p.add_argument("--mine-views", type=int, default=DEFAULTS["mine_views"], help="views per training photo to mine")
    p.add_argument("--stationary-weight", type=float, default=DEFAULTS["stationary_weight"],
                   help="weight of |dS/d(PIEA's raw parameters)|^2 at clean training views (training/critic/stationary.py): "
                        "flattens the critic at the clean photo so PIEA's search does not walk away from it (0: off)")
    p.add_argument("--stationary-views", type=int, default=DEFAULTS["stationary_views"],
                   help="clean views per training photo for that term (each costs 47 backbone passes once, cached)")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"],
                   help="a ReLU layer of this width before the FC (0: NIMA's single FC; tried as PIEA's guide, "
                        "docs/lab-record.md)")
    p.add_argument("--data", default=None, help="corpus folder (default data/corpus)")
    p.add_argument("--out", help="weights file (default: the shipped backend/weights/aesthetic-critic.safetensors, "
                                 "recorded in the manifest)")
    p.set_defaults(func=run_train_critic)


def register_eval(models):
    p = models.add_parser("critic", help="pairwise accuracy and Spearman vs degradation strength (val and test)")
    p.add_argument("--split", choices=("val", "test", "both"), default="both",
                   help="val for choices; test for the card (recorded in the manifest)")
    p.add_argument("--data", default=None, help="corpus folder (default data/corpus)")
    p.add_argument("--weights", help="an unshipped weights file to evaluate instead of the shipped one")
    p.set_defaults(func=run_eval_critic)


def _root(args):
    from training.data.corpus import DEFAULT_ROOT
    return args.data or DEFAULT_ROOT


def run_train_critic(args):
    from backend import weights
    from backend.models.critic import WEIGHTS, Critic
    from training.critic import data, evaluate, train

    started = time.time()
    train_data = data.build("train", views=args.views, degraded=args.degraded, seed=args.seed, root=_root(args))
    options = dict(seed=args.seed, steps=args.steps, lr=args.lr, rank_weight=args.rank_weight,
                   stationary_weight=args.stationary_weight, hidden=args.hidden)
    if args.stationary_weight:
        from training.critic import stationary

        options["stationary"] = stationary.jacobians("train", args.stationary_views, _root(args), seed=args.seed)
    mined = []
    if args.nearby_views:
        from training.critic import mine

        mined.append(mine.nearby(_root(args), views=args.nearby_views, copies=args.nearby_copies, seed=args.seed))
        print("nearby: %d groups, Delta E unit %.2f" % (int(mined[-1]["group"][-1]) + 1, mined[-1]["unit"]))
    head, info = train.train(train_data, mined=mined, **options)
    for round_ in range(args.mine_rounds):
        from training.critic import mine

        print("mining round %d/%d" % (round_ + 1, args.mine_rounds))
        mined.append(mine.mine(head, _root(args), views=args.mine_views, seed=args.seed + round_))
        print("  %d groups, Delta E unit %.2f" % (len(mined[-1]["photo"]) // 4, mined[-1]["unit"]))
        head, info = train.train(train_data, mined=mined, **options)
    info["config"].update(mine_rounds=args.mine_rounds, mine_views=args.mine_views, nearby_views=args.nearby_views,
                          nearby_copies=args.nearby_copies)
    results = {}
    for split in ("val", "test"):
        results[split] = evaluate.evaluate(head, data.build(split, evaluation=True, root=_root(args)))
        print(evaluate.format_result(split, results[split]))
    out = args.out or os.path.join(weights.WEIGHTS_DIR, WEIGHTS)
    train.save(head, out, info["config"], args.seed)
    if args.out is None:
        command = ("semantic-enhance train critic --steps %d --seed %d --lr %g --rank-weight %g --views %d --degraded %d "
                   "--nearby-views %d --nearby-copies %d --mine-rounds %d" % (
                       args.steps, args.seed, args.lr, args.rank_weight, args.views, args.degraded, args.nearby_views,
                       args.nearby_copies, args.mine_rounds))
        if args.stationary_weight:
            command += " --stationary-weight %g --stationary-views %d" % (args.stationary_weight, args.stationary_views)
        if args.hidden:
            command += " --hidden %d" % args.hidden
        weights.record(out, "critic", Critic.version, {
            "command": command, "seconds": round(time.time() - started), "device": "cpu",
            "backbone": "EfficientNet-Lite0 ImageNet, frozen; mean+std pooled stride-16 and stride-32 maps at 256 px",
            "data": "package photo corpus, train split (%d photos x %d views, each clean + %d seeded degradations; "
                    "%d views x %d small filter-bank moves)" % (len(set(train_data["photo"])), args.views, args.degraded,
                                                                args.nearby_views, args.nearby_copies)}, _metrics(results))
    print("wrote %s" % out)


def _metrics(results):
    metrics = {}
    for split, result in results.items():
        metrics.update({"%s_pairwise_accuracy" % split: round(result["pairwise_accuracy"], 4),
                        "%s_spearman_per_photo" % split: round(result["spearman_per_photo"], 4),
                        "%s_spearman_pooled" % split: round(result["spearman_pooled"], 4),
                        "%s_photos" % split: result["photos"]})
    return metrics


def run_eval_critic(args):
    from backend import weights
    from backend.models.critic import WEIGHTS
    from backend.models.critic.model import load_head
    from training.critic import data, evaluate

    head = load_head(args.weights)
    splits = ("val", "test") if args.split == "both" else (args.split,)
    results = {}
    for split in splits:
        results[split] = evaluate.evaluate(head, data.build(split, evaluation=True, root=_root(args)))
        print(evaluate.format_result(split, results[split]))
    if not args.weights:
        import numpy as np
        from training.data.cues import load_rgb

        metrics = _metrics(results)
        photo_id, path = data.corpus_photos("test", _root(args))[0]
        image = np.ascontiguousarray(load_rgb(path))
        seconds, value = evaluate.time_score(image)
        print("score time: %.3f s for one %d x %d photo (%s, score %.2f), median of 5, on %s"
              % (seconds, image.shape[1], image.shape[0], photo_id, value, "cpu"))
        metrics["score_seconds_%dmp" % round(image.shape[0] * image.shape[1] / 1e6)] = round(seconds, 3)
        weights.update_metrics(WEIGHTS, metrics)
