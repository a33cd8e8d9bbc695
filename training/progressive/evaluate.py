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


def run(photos, critic, per_photo=4, families=FAMILIES, steps=piea.STEPS, lr=piea.LEARNING_RATE,
        exposure_start=piea.EXPOSURE_START, log=print):
    """photos [(id, path)] -> rows: one per (photo, family, seed) with every method's metrics."""
    rows = []
    for number, (photo_id, path) in enumerate(photos):
        clean = clean_view(path)
        for family in families:
            for seed in range(per_photo):
                distorted, said = distort(clean, family, number * 1000 + seed)
                outputs = {"input": distorted}
                outputs.update({name: method(distorted) for name, method in baselines.BASELINES.items()})
                started = time.time()
                stacks, _ = piea.search(distorted[None], critic, steps=steps, lr=lr, exposure_start=exposure_start)
                with torch.no_grad():
                    outputs["PIEA"] = piea.replay(distorted[None], stacks[-1])[0]
                seconds = time.time() - started
                row = {"photo": photo_id, "family": family, "seed": seed, "distortion": said, "seconds": seconds,
                       "stack": stacks[-1].to_json(), "clean": clean, "outputs": outputs,
                       "psnr": {k: metrics.psnr(v, clean) for k, v in outputs.items()},
                       "de2000": {k: metrics.ciede2000(v, clean) for k, v in outputs.items()},
                       "critic_input": score(critic, distorted), "critic_clean": score(critic, clean),
                       "critic_piea": score(critic, outputs["PIEA"])}
                rows.append(row)
                if log:
                    log("%-28s %-6s %-48s input %5.2f dB  stretch %5.2f  PIEA %5.2f  critic %.2f -> %.2f (clean %.2f)  %.1f s"
                        % (photo_id[:28], family, said[:48], row["psnr"]["input"], row["psnr"]["percentile stretch"],
                           row["psnr"]["PIEA"], row["critic_input"], row["critic_piea"], row["critic_clean"], seconds))
    return rows


METHODS = ("input",) + tuple(baselines.BASELINES) + ("PIEA",)


def summary(rows):
    """{family or "all": {method: {psnr, de2000, hi_luminance, hi_contrast, hi_saturation}}, plus PIEA's
    critic-raised share}."""
    result = {}
    for family in FAMILIES + ("all",):
        subset = [r for r in rows if family == "all" or r["family"] == family]
        if not subset:
            continue
        table = {}
        for method in METHODS:
            hi = metrics.histogram_intersection([r["outputs"][method] for r in subset], [r["clean"] for r in subset])
            table[method] = {"psnr": float(np.mean([r["psnr"][method] for r in subset])),
                             "de2000": float(np.mean([r["de2000"][method] for r in subset])),
                             **{"hi_" + k: v for k, v in hi.items()}}
        raised = sum(r["critic_piea"] > r["critic_input"] for r in subset)
        best = max(baselines.BASELINES, key=lambda m: table[m]["psnr"])
        table["_"] = {"cases": len(subset), "critic_raised": raised / len(subset), "best_baseline": best,
                      "piea_minus_best_db": table["PIEA"]["psnr"] - table[best]["psnr"],
                      "piea_seconds": float(np.mean([r["seconds"] for r in subset]))}
        result[family] = table
    return result


def format_summary(split, result):
    lines = []
    for family, table in result.items():
        info = table["_"]
        lines.append("\n%s split, %s distortions (%d cases)" % (split, family, info["cases"]))
        lines.append("| method | PSNR dB | CIEDE2000 | HI luminance | HI contrast | HI saturation |")
        lines.append("|---|---|---|---|---|---|")
        for method in METHODS:
            m = table[method]
            lines.append("| %s | %.2f | %.2f | %.3f | %.3f | %.3f |" % (method, m["psnr"], m["de2000"], m["hi_luminance"],
                                                                   m["hi_contrast"], m["hi_saturation"]))
        lines.append("PIEA vs the best baseline (%s): %+.2f dB; critic score raised on %.0f %% of the distorted photos; "
                     "search %.2f s a photo" % (info["best_baseline"], info["piea_minus_best_db"],
                                                100 * info["critic_raised"], info["piea_seconds"]))
    return "\n".join(lines)
