"""Model registry: every model is a module here, registered by id and loaded lazily.

A model declares its id, the tasks it serves (adjust, enhance, crop, progressive, filters, score),
its styles/methods, options and weights files; the transport never names a model. Each model has a
room of its own, ``backend/models/<id>/`` (network, product entry); adding a model is adding its
package and one line in ``_MODULES``.
"""

import importlib

from .base import Model, ModelNotInstalled, Outcome, OutputImage, View  # noqa: F401  (the models' API)
from .request import CropOptions, Request, RequestError  # noqa: F401

_MODULES = ["backend.models.filters", "backend.models.sa_adjust", "backend.models.critic",
            "backend.models.progressive", "backend.models.fcn_stylize", "backend.models.enhancegan"]
_REGISTRY = {}


def register(model_class):
    """Class decorator: make a model known by its id."""
    _REGISTRY[model_class.id] = model_class()
    return model_class


def _import_all():
    for name in _MODULES:
        importlib.import_module(name)


def all_models():
    _import_all()
    return dict(_REGISTRY)


def get(model_id):
    models = all_models()
    if model_id not in models:
        raise KeyError("unknown model %r; this daemon knows: %s" % (model_id, ", ".join(sorted(models))))
    return models[model_id]


def for_task(task, style=""):
    """Models serving a task, installed ones first (the first is the task's default); with a ``style``, the
    installed models that serve it come first (a learnt style names fcn-stylize without ``--model``)."""
    models = [m for m in all_models().values() if task in m.tasks]
    return sorted(models, key=lambda m: (not (style and m.installed() and style in m.styles), not m.installed(),
                                         m.default_rank))
