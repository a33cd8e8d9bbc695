"""Learn each invented look (``invented.py``) from the training photos, measure it on the held-out photos.

Numbers: pooled CIELab distance of the output to the look over that of the input (the issue's "x the
input-to-look Lab distance"), for the learnt style and for the least-squares global quadratic fit.
"""

import time

from training.fcn_stylize import invented, learn


def invented_looks(side=learn.SIDE, names=None, folds=0):
    """[{look, ratio, baseline_ratio, per_photo, training_ratio}], seconds to learn each (one fit)."""
    train = invented.photos(invented.TRAIN, side=side)
    held = invented.photos(invented.HELD_OUT, side=side)
    rows, seconds = [], {}
    for name, program in invented.LOOKS.items():
        if names and name not in names:
            continue
        pairs = [(n, b, program(b)) for n, b in train.items()]
        test = [(n, b, program(b)) for n, b in held.items()]
        started = time.perf_counter()
        look = learn.solve([learn.normal_equations(b, a, learn.LUT_SIZE) for _, b, a in pairs], learn.LUT_SIZE)
        seconds[name] = time.perf_counter() - started
        measured = learn.ratios(look, test)
        baseline = learn.quadratic_baseline(pairs)
        base_rows = [(n, learn.lab_distance(baseline(b), a), learn.lab_distance(b, a)) for n, b, a in test]
        rows.append({"look": name, "ratio": learn.summary(measured)["ratio"],
                     "baseline_ratio": learn.summary(base_rows)["ratio"],
                     "training_ratio": learn.summary(learn.ratios(look, pairs))["ratio"],
                     "per_photo": {n: round(out / max(inp, 1e-9), 3) for n, out, inp in measured},
                     "input_distance": {n: round(inp, 2) for n, _, inp in measured}})
    return rows, seconds


def table(rows, seconds):
    lines = ["| look | learnt (held out) | global quadratic fit | learnt (training) | per held-out photo | fit s |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append("| %s | %.3f | %.3f | %.3f | %s | %.0f |" % (
            row["look"], row["ratio"], row["baseline_ratio"], row["training_ratio"],
            ", ".join("%s %.2f" % item for item in row["per_photo"].items()), seconds[row["look"]]))
    return "\n".join(lines)
