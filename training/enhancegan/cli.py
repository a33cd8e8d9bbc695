"""EnhanceGAN's sub-commands, registered on ``semantic-enhance train`` and ``eval``.

    semantic-enhance train enhancegan [--steps 300] [--only enhance|crop --base FILE] [--out FILE]
    semantic-enhance eval enhancegan [--split val|test] [--photos DIR] [--part enhance|crop|both] [--weights FILE]

Training data is cached in ``.cache/train/enhancegan``. Heavy imports happen inside the commands: registering
must not import torch (client commands stay light).
"""

import json
import os
import time

GAN = {"steps": 200, "batch": 2, "lr": 5e-5, "w_feature": 1.0, "w_better": 1.0, "w_adversarial": 1.0, "w_recover": 0.0}
CROP = {"canvases": 40, "crop_steps": 3000, "listwise": 1.0, "inputs": "edges,geometry,lines,critic"}


def register_train(models):
    p = models.add_parser("enhancegan", help="EnhanceGAN: filter CNNs, the enhancers as a WGAN against the critic, "
                                             "the crop guide on the recomposition set")
    p.add_argument("--steps", type=int, default=GAN["steps"], help="generator steps (the paper trains far longer)")
    p.add_argument("--batch", type=int, default=GAN["batch"], help="bad views per step (each through both enhancers)")
    p.add_argument("--lr", type=float, default=GAN["lr"], help="RMSprop learning rate (authors' code: 5e-5)")
    p.add_argument("--w-feature", type=float, default=GAN["w_feature"], help="weight of the feature reconstruction")
    p.add_argument("--w-better", type=float, default=GAN["w_better"], help='weight of "the output scores better"')
    p.add_argument("--w-adversarial", type=float, default=GAN["w_adversarial"], help="weight of the WGAN term")
    p.add_argument("--w-recover", type=float, default=GAN["w_recover"],
                   help="weight of the distance to the clean view (not in the paper, which has no pairs; 0: off)")
    p.add_argument("--canvases", type=int, default=CROP["canvases"], help="recomposition canvases per training photo")
    p.add_argument("--crop-steps", type=int, default=CROP["crop_steps"])
    p.add_argument("--listwise", type=float, default=CROP["listwise"], help="weight of the crop scorer's per-image term")
    p.add_argument("--crop-inputs", default=CROP["inputs"],
                   help="the crop scorer's input groups (pooled, edges, geometry, lines, critic), comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=("enhance", "crop"), help="train one part and take the other from --base")
    p.add_argument("--base", help="weights file the other part comes from (default: the shipped one)")
    p.add_argument("--out", help="weights file (default: the shipped backend/weights/enhancegan.safetensors, recorded "
                                 "in the manifest)")
    p.set_defaults(func=run_train)


def register_eval(models):
    p = models.add_parser("enhancegan", help="distort and recover (both enhancers, next to classical baselines) and "
                                             "crops on the recomposition set (IoU, boundary displacement)")
    p.add_argument("--split", choices=("val", "test"), default="test", help="val for choices; test once per shipped model")
    p.add_argument("--photos", help="any folder of photos instead of the corpus split (enhancement only)")
    p.add_argument("--part", choices=("enhance", "crop", "both"), default="both")
    p.add_argument("--data", default=None, help="corpus folder (default data/corpus)")
    p.add_argument("--per-photo", type=int, default=3, help="distortions per photo and family; canvases per photo")
    p.add_argument("--weights", help="an unshipped weights file")
    p.add_argument("--json", help="write the tables and the per-photo rows here")
    p.set_defaults(func=run_eval)


def load_parts(path=None):
    """(generator, scorer) from a weights file (default: the shipped one, verified)."""
    from safetensors.torch import load_file

    from backend import weights
    from backend.models.enhancegan.model import WEIGHTS, parts_from

    return parts_from(load_file(path) if path else weights.load(WEIGHTS))


def save_parts(generator, scorer, path, metadata):
    from safetensors.torch import save_file

    tensors = {"generator." + k: v.contiguous() for k, v in generator.state_dict().items()}
    tensors.update({"scorer." + k: v.contiguous() for k, v in scorer.state_dict().items()})
    save_file(tensors, path, metadata={k: json.dumps(v) for k, v in metadata.items()})


def run_train(args):
    import torch

    from backend import weights
    from backend.models.critic.model import load_head
    from backend.models.enhancegan.model import WEIGHTS, EnhanceGAN
    from backend.models.enhancegan.network import CropScorer, Generator
    from training.enhancegan import crops, data, train

    started = time.time()
    critic = load_head()
    generator, scorer = (load_parts(args.base) if args.only else (Generator(), CropScorer()))
    info = {}
    if args.only != "crop":
        nets, info["filter_rmse"] = train.fit_filter_nets(seed=args.seed)
        rows = data.build("train", seed=args.seed)
        trained, info["gan"] = train.train_gan(rows, critic, nets, seed=args.seed, steps=args.steps, batch=args.batch,
                                               lr=args.lr, w_feature=args.w_feature, w_better=args.w_better,
                                               w_adversarial=args.w_adversarial, w_recover=args.w_recover)
        for name in ("piecewise", "filters", "filter_nets"):
            getattr(generator, name).load_state_dict(getattr(trained, name).state_dict())
    if args.only != "enhance":
        rows = crops.build("train", args.canvases, crops.TRAIN_KINDS, args.seed, critic)
        scorer, crop_head = crops.train(rows, steps=args.crop_steps, seed=args.seed, listwise=args.listwise,
                                        groups=tuple(args.crop_inputs.split(",")))
        generator.crop.load_state_dict(crop_head.state_dict())
    out = args.out or os.path.join(weights.WEIGHTS_DIR, WEIGHTS)
    command = ("semantic-enhance train enhancegan --steps %d --batch %d --lr %g --w-feature %g --w-better %g "
               "--w-adversarial %g --w-recover %g --canvases %d --crop-steps %d --listwise %g --crop-inputs %s --seed %d"
               % (args.steps, args.batch, args.lr, args.w_feature, args.w_better, args.w_adversarial, args.w_recover, args.canvases,
                  args.crop_steps, args.listwise, args.crop_inputs, args.seed))
    save_parts(generator, scorer, out, {"command": command})
    if args.out is None:
        weights.record(out, "enhancegan", EnhanceGAN.version, {
            "command": command, "seconds": round(time.time() - started), "device": "cpu",
            "backbone": "EfficientNet-Lite0 ImageNet, frozen; heads on stride 32 + pooled stride 16",
            "data": "package photo corpus, train split: 4 views x 4 colour/tone-spoiled copies per photo (enhancers); "
                    "%d recomposition canvases per photo, kinds %s (crop)" % (args.canvases, ", ".join(crops.TRAIN_KINDS))},
            {})
    torch.set_printoptions(precision=4)
    print(json.dumps(info, default=str)[:2000])
    print("wrote %s (%.0f s)" % (out, time.time() - started))


def enhancer(model_parts, method):
    """The daemon's own predict + apply on a (3, h, w) image, as an eval method -> (output, extra)."""
    from backend.imaging import pixels
    from backend.models import Request, View

    model = model_parts

    def run(image):
        layer = pixels.Layer(rgb=image.clone(), alpha=None, dtype=None, channels=3, transfer="perceptual")
        request = Request(kind="enhance", style=method)
        params = model.predict(View(layer), request)
        outcome = model.apply(layer, params, request)
        return outcome.result, {k: v for k, v in outcome.parameters.items() if k not in ("model", "version")}
    return run


def run_eval(args):
    from backend.models.critic.model import load_head
    from backend.models.enhancegan.model import EnhanceGAN
    from backend.models.progressive.search import Critic
    from training.enhancegan import crops
    from training.progressive import evaluate
    from training.progressive.cli import _photos

    critic_head = load_head()
    generator, scorer = load_parts(args.weights)
    model = EnhanceGAN()
    model.generator, model.scorer, model.critic_head = generator, scorer, critic_head
    split = "photos in %s" % args.photos if args.photos else args.split
    result, kept = {}, {}
    if args.part in ("enhance", "both"):
        methods = {"piecewise": enhancer(model, "piecewise"), "deep-filter": enhancer(model, "deep-filter")}
        rows = evaluate.recover(_photos(args), methods, Critic(critic_head), per_photo=args.per_photo)
        result["enhance"] = evaluate.summary(rows)
        print(evaluate.format_summary(split, result["enhance"]))
        kept["enhance"] = [{k: v for k, v in row.items() if k not in ("clean", "outputs")} for row in rows]
    if args.part in ("crop", "both") and not args.photos:
        rows = crops.evaluate(args.split, (scorer, critic_head, generator.crop), per_photo=args.per_photo)
        result["crop"] = crops.crop_summary(rows)
        print(crops.format_crop_summary(split, result["crop"]))
        kept["crop"] = rows
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"split": split, "tables": result, "rows": kept}, handle, indent=1, default=str)
        print("wrote %s" % args.json)
