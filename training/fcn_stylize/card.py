"""The model card written beside every learnt style (NAME.md), and what the style file's metadata records."""

import json
import time

import numpy as np

from backend.imaging import looks
from training.fcn_stylize import learn


def arrays(look):
    return {"quadratic": look.quadratic.numpy().astype(np.float32), "lut": look.lut.numpy().astype(np.float32),
            "spatial": look.spatial.numpy().astype(np.float32)}


def metadata(report, seconds):
    summary = {"pairs": len(report["pairs"]), "training_ratio": round(report["training"]["ratio"], 4),
               "held_out_ratio": round(report["held_out"]["ratio"], 4), "folds": report["folds"],
               "learn_seconds": round(seconds, 1), "options": report.get("options", {})}
    return {"report": json.dumps(summary), "learnt": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "fit_side": learn.SIDE, "lut_size": learn.LUT_SIZE}


def card(name, folders, report, seconds):
    """``folders``: (before, after) when learnt by `train fcn-stylize`; None when the pairs came over LearnStyle."""
    if folders:
        command = "`semantic-enhance train fcn-stylize --pairs %s %s --name %s`" % (folders[0], folders[1], name)
    else:
        command = "sent to the daemon with the LearnStyle call (GIMP's Learn Style…, or `Client.learn_style`)"
    rows = "\n".join("| %s | %.2f | %.2f | %.2f |" % (r["name"], r["input"], r["training"], r["held_out"])
                     for r in report["pairs"])
    return """# Style `{name}` (fcn-stylize, learnt)

Learnt {when} from {count} before/after pairs in {seconds:.0f} s:
{command}.

What it is: a resolution-free colour transform of CIELab (Zhu & Yu's global quadratic transform, a {lut}^3
LUT of the rest, and position terms over (lightness, chroma, hue) LUTs of {m} nodes: {terms}, for vignettes and
graduated tints, plus a learnt height profile times its own colour LUT, for sky tints), fitted by
regularised least squares on copies of the pairs at {side} px and applied at full resolution
(backend/imaging/looks.py, training/fcn_stylize/learn.py). Options: position terms {positions},
regularisation x{regularisation:g}.

## Errors (CIELab ΔE76, mean over pixels)

| | ΔE | x the input's |
|---|---|---|
| input vs your retouch | {input:.2f} | 1 |
| this style, on the pairs it learnt from | {train:.2f} | {train_ratio:.3f} |
| this style, held out ({folds}-fold: each pair measured by a fit without it) | {held:.2f} | {held_ratio:.3f} |

Per pair (ΔE):

| pair | input | learnt | held out |
|---|---|---|---|
{rows}

## Limits
- It learns what the pairs show: colours and places that none of them has get the global quadratic part.
- Local edits tied to *what* is in the photo (a face, one object) beyond colour and position are not learnt.
""".format(name=name, when=time.strftime("%Y-%m-%d"), count=len(report["pairs"]), seconds=seconds,
           command=command, lut=learn.LUT_SIZE, terms="5 hats along y, 5 along x and r⁴",
           positions="yes" if report.get("options", {}).get("position_terms", True) else "no (a colour-only look)",
           regularisation=report.get("options", {}).get("regularisation", 1.0),
           m=" x ".join(map(str, looks.LCH_NODES)), side=learn.SIDE, input=report["training"]["input_lab_distance"],
           train=report["training"]["lab_distance"], train_ratio=report["training"]["ratio"],
           held=report["held_out"]["lab_distance"], held_ratio=report["held_out"]["ratio"], folds=report["folds"],
           rows=rows)
