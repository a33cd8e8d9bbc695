"""The command-line sub-commands of sa-adjust, registered on ``semantic-enhance train`` and ``eval``.

    semantic-enhance train sa-adjust --style local-xpro [--data DIR] [--steps 3000] [--variant huber-mt-s]
                                     [--lr 3e-4] [--schedule cosine] [--tune-last-stage] [--with-val]
                                     [--colour-context] [--colours-of foreground-pop-out]
    semantic-enhance eval sa-adjust [--style S ...] [--steps 1000] [--retrain] [--shipped-only]

Heavy imports happen inside the commands.
"""

import hashlib
import json
import os

from backend import styles as style_registry

TRAIN_CACHE = os.path.join(".cache", "train")
SA_STYLES = style_registry.LOCAL


def register_train(models):
    p = models.add_parser("sa-adjust", help="Deep Semantics-Aware Photo Adjustment (Nam & Kim 2017)")
    p.add_argument("--style", required=True, choices=SA_STYLES)
    p.add_argument("--data", help="pairs folder (default data/pairs/STYLE, built from the corpus if missing)")
    p.add_argument("--variant", default="huber-mt-s", choices=("mse", "huber", "huber-mt", "huber-mt-s", "global"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--k", type=int, help="presets in the adjustment map (default: the paper's 2/4/2)")
    p.add_argument("--augmentations", type=int, default=4, help="augmented copies per photo (features cached)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--reframes", type=int, default=0,
                   help="reframed crops per training photo, targets rendered afresh (made once, kept in the pairs)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep the exponential moving average of the weights with this decay (e.g. 0.999)")
    p.add_argument("--tune-last-stage", action="store_true",
                   help="fine-tune the backbone's last stage (blocks 11-15) at 0.5x the learning rate, shipped in "
                        "the style's weights (+9 MB)")
    p.add_argument("--parse-weight", type=float, default=0.01,
                   help="weight of the scene-parsing loss in the multi-task variants (paper: 0.01)")
    p.add_argument("--out", help="weights file (default: backend/weights/sa-adjust-STYLE.safetensors, the "
                                 "shipped one, recorded in the manifest)")
    p.add_argument("--colour-context", action="store_true",
                   help="the map and parsing heads also read the photo's colour context (position, neighbourhood "
                        "and photo Lab, two classical saliencies; not in the paper)")
    p.add_argument("--subject-cue", action="store_true",
                   help="with the colour context, its saliencies also standardised over the photo, so a subject is "
                        "'more salient than this photo's average' at one fixed threshold (implies --colour-context)")
    p.add_argument("--colours-of", choices=SA_STYLES, default=None, metavar="STYLE",
                   help="learn the colour mapping from this style's pairs (watercolor: foreground-pop-out, whose "
                        "colours its brush paints over); evaluated on --style's own pairs")
    p.add_argument("--schedule", default="constant", choices=("constant", "cosine"),
                   help="learning rate over the run: constant (the paper's) or half a cosine down to 0")
    p.add_argument("--with-val", action="store_true",
                   help="train on the train and validation photos: the refit once a recipe has been chosen on "
                        "validation (validation is then no longer a measure; test still is)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.set_defaults(func=run_train_sa_adjust)


def register_eval(models):
    p = models.add_parser("sa-adjust", help="Table 1 layout: Input, global ceiling, learned global, variants")
    p.add_argument("--style", action="append", choices=SA_STYLES, help="repeatable; default all three")
    p.add_argument("--steps", type=int, default=1000, help="training steps of each variant trained for the table")
    p.add_argument("--augmentations", type=int, default=2, help="augmented copies per photo for the variants")
    p.add_argument("--retrain", action="store_true", help="retrain variants even when cached")
    p.add_argument("--json", default=os.path.join("training", "reports", "sa-adjust-table.json"))
    p.add_argument("--shipped-only", action="store_true",
                   help="only the Input, ceiling and shipped rows (minutes, not the variants' 45): updates the json")
    p.set_defaults(func=run_eval_sa_adjust)


def run_train_sa_adjust(args):
    from backend import weights
    from backend.models.sa_adjust import SAAdjust, weights_name
    from training.data.pairs import ensure_pairs, load_split
    from training.sa_adjust import evaluate, train

    root = ensure_pairs(args.style, args.data)
    # the pairs learnt from: the style's own, or (--colours-of) another style's whose colours this one shares
    learn_from = ensure_pairs(args.colours_of, None) if args.colours_of else root
    if args.reframes:
        from training.data.pairs import add_reframes
        add_reframes(learn_from, args.reframes)
    shipped = args.out is None
    out = args.out or os.path.join(weights.WEIGHTS_DIR, weights_name(args.style))
    checkpoint = os.path.join(TRAIN_CACHE, "sa-adjust", args.style, args.variant + ".checkpoint.pt")
    photos = training_photos(learn_from, args.reframes, args.with_val)
    net, info = train.train(args.style, photos, out, variant=args.variant, steps=args.steps,
                            k=args.k, seed=args.seed, augmentations=args.augmentations, checkpoint=checkpoint,
                            resume=args.resume, learning_rate=args.lr, ema=args.ema,
                            parse_weight=args.parse_weight, tune_last_stage=args.tune_last_stage,
                            schedule=args.schedule, colour_context=args.colour_context, subject_cue=args.subject_cue)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    from backend.models.backbones.efficientnet import load_efficientnet_lite0
    backbone = load_efficientnet_lite0()
    # the validation split is where recipes are compared; the test split is read once, for the record
    tables = {}
    for split in ("test",) if args.with_val else ("val", "test"):
        photos = load_split(root, split)
        tables[split] = evaluate.evaluate_style(args.style, photos, {args.variant: net}, backbone)
        print("%s split (%d photos): input %.2f -> %s %.2f Lab L2" % (
            split, len(photos), tables[split]["input"], args.variant, tables[split][args.variant]))
    test, table = load_split(root, "test"), tables["test"]
    if shipped:
        command = "semantic-enhance train sa-adjust --style %s --variant %s --steps %d --seed %d --augmentations %d --lr %g%s" % (
            args.style, args.variant, args.steps, args.seed, args.augmentations, args.lr,
            (" --reframes %d" % args.reframes if args.reframes else "") + (" --ema %g" % args.ema if args.ema else "")
            + (" --parse-weight %g" % args.parse_weight if args.parse_weight != train.PARSE_WEIGHT else "")
            + (" --tune-last-stage" if args.tune_last_stage else "")
            + (" --schedule %s" % args.schedule if args.schedule != "constant" else "")
            + (" --colour-context" if args.colour_context else "") + (" --subject-cue" if args.subject_cue else "")
            + (" --with-val" if args.with_val else "")
            + (" --colours-of %s" % args.colours_of if args.colours_of else ""))
        weights.record(out, "sa-adjust", SAAdjust.version, {
            "command": command, "data": "%sstyle-program pairs of the package photo corpus (%s%s)"
            % ("%s's " % args.colours_of if args.colours_of else "", data_words(learn_from, args.with_val), ", %d reframed crops each" % args.reframes if args.reframes else ""), "seconds": round(info["seconds"]), "device": info["device"],
            "backbone": "EfficientNet-Lite0 ImageNet, " + (
                "fine-tuned at 0.5x lr" if info["finetune"] else
                "frozen but for its last stage (blocks 11-15), fine-tuned at 0.5x lr" if args.tune_last_stage else "frozen")},
            {"test_photos": len(test), "input_lab_l2": round(table["input"], 3),
             "lab_l2": round(table[args.variant], 3), "val_photos": len(load_split(root, "val"))}
            | ({"val_in_training": True} if args.with_val else
               {"val_input_lab_l2": round(tables["val"]["input"], 3), "val_lab_l2": round(tables["val"][args.variant], 3)}))
    print("wrote %s" % out)


def training_photos(root, reframes=0, with_val=False):
    """The pairs a style trains on: the train split (with its reframed crops), and the validation split
    too for the refit once the recipe has been chosen on validation."""
    from training.data.pairs import load_split

    return load_split(root, "train", reframes=reframes) + (load_split(root, "val") if with_val else [])


def data_words(root, with_val):
    from training.data.pairs import load_split

    train = len(load_split(root, "train"))
    if not with_val:
        return "%d train photos" % train
    return "%d train + %d validation photos" % (train, len(load_split(root, "val")))


def net_from(metadata, tensors):
    """A trained network (any variant) from a weights file's metadata and tensors, in eval mode."""
    import json

    from training.sa_adjust import train

    net = train.build_net(json.loads(metadata["config"]))
    net.load_state_dict(tensors, strict=True)
    return net.eval()


def _evaluate_shipped(style, root, backbone, table):
    """The shipped weights' row (when a style has them), also recorded in the manifest."""
    from backend import weights
    from backend.models.sa_adjust import weights_name
    from training.data.pairs import load_split
    from training.sa_adjust import evaluate

    shipped = weights_name(style)
    if weights.entry(shipped) is None:
        return
    tensors, metadata = weights.load_with_metadata(shipped)
    net = net_from(metadata, tensors)
    table["shipped"] = evaluate.distances(
        load_split(root, "test"), lambda image, target: evaluate.run_network(net, backbone, image))
    weights.update_metrics(shipped, {"lab_l2": round(table["shipped"], 3), "input_lab_l2": round(table["input"], 3)})


def run_eval_sa_adjust(args):
    from backend.models.backbones.efficientnet import load_efficientnet_lite0
    from training.data.pairs import ensure_pairs, load_split
    from training.sa_adjust import evaluate, train

    styles = args.style or list(SA_STYLES)
    backbone = load_efficientnet_lite0()
    results = {}
    for style in styles:
        root = ensure_pairs(style)
        nets, samples = {}, None
        if args.shipped_only:
            results[style] = evaluate.evaluate_style(style, load_split(root, "test"), {}, backbone)
            _evaluate_shipped(style, root, backbone, results[style])
            continue
        # the cache is keyed by the training photos too: a grown corpus retrains the variants
        photos = hashlib.sha256("\n".join(sorted(os.path.basename(str(pair.input)) for pair in load_split(root, "train"))).encode())
        for variant in ("global", "mse", "huber", "huber-mt", "huber-mt-s"):
            path = os.path.join(TRAIN_CACHE, "sa-adjust", style, "%s-%d-%d-%s.safetensors"
                                % (variant, args.steps, args.augmentations, photos.hexdigest()[:8]))
            if args.retrain or not os.path.exists(path):
                if samples is None:  # one preparation (backbone passes) shared by the variants
                    samples = train.prepare_samples(load_split(root, "train"), backbone, args.augmentations)
                nets[variant], _ = train.train(style, load_split(root, "train"), path, variant=variant,
                                               steps=args.steps, samples=samples)
            else:  # our own cache, not shipped: no manifest entry to verify against
                from safetensors import safe_open
                with safe_open(path, framework="pt") as handle:
                    nets[variant] = net_from(handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()})
        print("%s:" % style)
        results[style] = evaluate.evaluate_style(style, load_split(root, "test"), nets, backbone)
        _evaluate_shipped(style, root, backbone, results[style])
    if args.shipped_only and os.path.exists(args.json):  # keep the variants' rows of the last full run
        with open(args.json) as handle:
            earlier = json.load(handle)
        results = {style: dict(earlier.get(style, {}), **rows) for style, rows in results.items()}
        results = dict(earlier, **results)
    evaluate.save(results, args.json)
    print(evaluate.format_table(results, styles))
    print("wrote %s" % args.json)
