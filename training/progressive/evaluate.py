"""``eval progressive``: distort held-out photos, recover them with PIEA and with the classical baselines,
measure each against the clean original (metrics.py). The search runs on the daemon's <= 512 px copy and
the stack is replayed on that copy (filters are pointwise, so the full-resolution replay only adds
pixels). Returns per-case rows and the tables."""

import time

import numpy as np
import torch

from backend.imaging import upsample
from backend.models.progressive import search as piea
from training.data.cues import load_rgb

from . import baselines, metrics
from .distort import FAMILIES, distort


def clean_view(path):
    rgb = torch.from_numpy(np.asarray(load_rgb(path), dtype=np.float32) / 255).permute(2, 0, 1)
    return upsample.downscale(rgb)[0]


def score(critic, image):
    with torch.no_grad():
        return float(piea.mean_score(critic(image[None])[None])[0])


def recover(photos, methods, critic, per_photo=4, families=FAMILIES, log=print):
    """Distort and recover: ``methods`` {name: f(distorted (3, h, w)) -> (recovered, extra dict)} -> rows, one per
    (photo, family, seed), with every method's and baseline's metrics and the critic's scores. Shared by
    ``eval progressive`` and ``eval enhancegan``."""
    rows = []
    for number, (photo_id, path) in enumerate(photos):
        clean = clean_view(path)
        for family in families:
            for seed in range(per_photo):
                distorted, said = distort(clean, family, number * 1000 + seed)
                outputs = {"input": distorted}
                outputs.update({name: method(distorted) for name, method in baselines.BASELINES.items()})
                extra = {}
                for name, method in methods.items():
                    started = time.time()
                    outputs[name], extra[name] = method(distorted)
                    extra[name]["seconds"] = time.time() - started
                row = {"photo": photo_id, "family": family, "seed": seed, "distortion": said, "extra": extra,
                       "clean": clean, "outputs": outputs,
                       "psnr": {k: metrics.psnr(v, clean) for k, v in outputs.items()},
                       "de2000": {k: metrics.ciede2000(v, clean) for k, v in outputs.items()},
                       "critic": {k: score(critic, outputs[k]) for k in ("input",) + tuple(methods)}}
                row["critic"]["clean"] = score(critic, clean)
                rows.append(row)
                if log:
                    log("%-28s %-6s %-44s input %5.2f dB  stretch %5.2f  %s  critic %.2f -> %s (clean %.2f)"
                        % (photo_id[:28], family, said[:44], row["psnr"]["input"], row["psnr"]["percentile stretch"],
                           "  ".join("%s %5.2f" % (m, row["psnr"][m]) for m in methods), row["critic"]["input"],
                           " / ".join("%.2f" % row["critic"][m] for m in methods), row["critic"]["clean"]))
    return rows


def run(photos, critic, per_photo=4, families=FAMILIES, steps=piea.STEPS, lr=piea.LEARNING_RATE,
        exposure_start=piea.EXPOSURE_START, prior=piea.PRIOR, log=print):
    """photos [(id, path)] -> rows of ``recover`` with PIEA as the method (its stack in ``extra``)."""
    def piea_method(distorted):
        stacks, _ = piea.search(distorted[None], critic, steps=steps, lr=lr, exposure_start=exposure_start,
                                prior=prior)
        with torch.no_grad():
            return piea.replay(distorted[None], stacks[-1])[0], {"stack": stacks[-1].to_json()}

    return recover(photos, {"PIEA": piea_method}, critic, per_photo, families, log)


def summary(rows):
    """{family or "all": {method: {psnr, de2000, hi_luminance, hi_contrast, hi_saturation}, "_": {per learned
    method: its gap to the best baseline, the share of photos whose critic score it raised, seconds}}}."""
    learned = tuple(rows[0]["extra"]) if rows else ()
    methods = ("input",) + tuple(baselines.BASELINES) + learned
    result = {}
    for family in FAMILIES + ("all",):
        subset = [r for r in rows if family == "all" or r["family"] == family]
        if not subset:
            continue
        table = {}
        for method in methods:
            hi = metrics.histogram_intersection([r["outputs"][method] for r in subset], [r["clean"] for r in subset])
            table[method] = {"psnr": float(np.mean([r["psnr"][method] for r in subset])),
                             "de2000": float(np.mean([r["de2000"][method] for r in subset])),
                             **{"hi_" + k: v for k, v in hi.items()}}
        best = max(baselines.BASELINES, key=lambda m: table[m]["psnr"])
        table["_"] = {"cases": len(subset), "best_baseline": best, "learned": {
            name: {"minus_best_db": table[name]["psnr"] - table[best]["psnr"],
                   "critic_raised": sum(r["critic"][name] > r["critic"]["input"] for r in subset) / len(subset),
                   "seconds": float(np.mean([r["extra"][name]["seconds"] for r in subset]))} for name in learned}}
        result[family] = table
    return result


def format_summary(split, result):
    lines = []
    for family, table in result.items():
        info = table["_"]
        lines.append("\n%s split, %s distortions (%d cases)" % (split, family, info["cases"]))
        lines.append("| method | PSNR dB | CIEDE2000 | HI luminance | HI contrast | HI saturation |")
        lines.append("|---|---|---|---|---|---|")
        for method, m in table.items():
            if method != "_":
                lines.append("| %s | %.2f | %.2f | %.3f | %.3f | %.3f |" % (
                    method, m["psnr"], m["de2000"], m["hi_luminance"], m["hi_contrast"], m["hi_saturation"]))
        for name, gap in info["learned"].items():
            lines.append("%s vs the best baseline (%s): %+.2f dB; critic score raised on %.0f %% of the distorted "
                         "photos; %.2f s a photo" % (name, info["best_baseline"], gap["minus_best_db"],
                                                    100 * gap["critic_raised"], gap["seconds"]))
    return "\n".join(lines)
