"""``semantic-enhance eval progressive``: distort and recover (training/progressive/evaluate.py).

    semantic-enhance eval progressive [--split val|test] [--photos DIR] [--per-photo 3] [--steps 20]
                                      [--lr 1e-3] [--exposure-start 1.0] [--prior 0] [--critic FILE] [--json OUT]

PIEA trains nothing (its critic is ``train critic``), so only ``eval`` is registered.
"""

import json
import os


def register_train(models):
    """PIEA has nothing to train: its critic is ``semantic-enhance train critic``."""


def register_eval(models):
    # the defaults are the model's (backend/models/progressive/search.py), read when the command runs:
    # registering must not import torch (client commands stay light)
    p = models.add_parser("progressive", help="PIEA: distort held-out photos and recover them, against classical "
                                              "baselines (PSNR, CIEDE2000, histogram intersection, critic)")
    p.add_argument("--split", choices=("val", "test"), default="test",
                   help="val for choices; test (the default) once per shipped critic")
    p.add_argument("--photos", help="any folder of photos instead of the corpus split (photos you never saw)")
    p.add_argument("--data", default=None, help="corpus folder (default data/corpus)")
    p.add_argument("--per-photo", type=int, default=3, help="distortions per photo and family")
    p.add_argument("--steps", type=int, help="gradient steps (default: the model's, 20)")
    p.add_argument("--lr", type=float, help="learning rate (default: the model's, 1e-4; the paper's 1e-3)")
    p.add_argument("--exposure-start", type=float, help="EV the search starts from (default: the model's, 0; the paper's 1)")
    p.add_argument("--prior", type=float, help="weight of the mean squared pixel change in the loss (default: the "
                                               "model's; 0 is the paper's search)")
    p.add_argument("--critic", help="an unshipped critic weights file to guide the search")
    p.add_argument("--json", help="write the tables and the per-photo rows here")
    p.set_defaults(func=run_eval_progressive)


def _photos(args):
    if args.photos:
        names = sorted(n for n in os.listdir(args.photos) if n.lower().endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff")))
        if not names:
            raise SystemExit("no photos (png, jpg, tif) in %s" % args.photos)
        return [(os.path.splitext(n)[0], os.path.join(args.photos, n)) for n in names]
    from training.critic.data import corpus_photos
    from training.data.corpus import DEFAULT_ROOT

    return corpus_photos(args.split, args.data or DEFAULT_ROOT)


def _critic(path):
    from backend.models.critic.model import load_head
    from backend.models.progressive.search import Critic

    return Critic(load_head(path))


def run_eval_progressive(args):
    from backend.models.progressive import search
    from training.progressive import evaluate

    args.steps = search.STEPS if args.steps is None else args.steps
    args.lr = search.LEARNING_RATE if args.lr is None else args.lr
    args.exposure_start = search.EXPOSURE_START if args.exposure_start is None else args.exposure_start
    args.prior = search.PRIOR if args.prior is None else args.prior
    photos = _photos(args)
    rows = evaluate.run(photos, _critic(args.critic), per_photo=args.per_photo, steps=args.steps, lr=args.lr,
                        exposure_start=args.exposure_start, prior=args.prior)
    result = evaluate.summary(rows)
    split = "photos in %s" % args.photos if args.photos else args.split
    print("PIEA: %d steps, lr %g, exposure start %+g EV, prior %g, critic %s"
          % (args.steps, args.lr, args.exposure_start, args.prior, args.critic or "shipped"))
    print(evaluate.format_summary(split, result))
    if args.json:
        kept = [{k: v for k, v in row.items() if k not in ("clean", "outputs")} for row in rows]
        with open(args.json, "w") as handle:
            json.dump({"split": split, "tables": result, "rows": kept}, handle, indent=1)
        print("wrote %s" % args.json)
