"""Learn a style from prepared pairs and store it: what `train fcn-stylize` and the daemon's LearnStyle call
both run, so the two can never learn or record a style differently.

Nothing is written until the learning is done, and then the file goes in whole (``store.save``: a temporary
name, then a rename); an existing style of the name is only replaced when asked (``replace``).
"""

import time

from backend.models.fcn_stylize import store
from training.fcn_stylize import card, learn


def teach(name, pairs, folders=None, replace=False, on_progress=None, before_saving=None, options=None):
    """Fit a look on ``pairs`` ([(pair name, before, after)] from ``learn.prepare``) and save it as ``name``;
    ``options`` {name: text} as ``learn.parse_options`` reads them (a StyleError before anything is fitted).

    ``on_progress(fraction, stage)`` may raise to stop (nothing is written then); ``before_saving()`` is
    called last, just before the file is written (the daemon's last cancel check). Returns (path, report,
    seconds)."""
    store.check_new_name(name, replace)
    settings = learn.parse_options(options)
    started = time.perf_counter()
    look, report = learn.learn(pairs, on_progress=on_progress, **settings)
    seconds = time.perf_counter() - started
    if before_saving:
        before_saving()
    path = store.save(name, card.arrays(look), card.metadata(report, seconds), card.card(name, folders, report, seconds),
                      replace=replace, format=store.FORMAT_OF[look.spatial_space])
    return path, report, seconds
