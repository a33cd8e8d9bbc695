"""``semantic-enhance train MODEL ...`` and ``semantic-enhance eval MODEL ...``.

Registered on the main CLI by ``backend/cli.py``. Each model's room, ``training/<id>/``, registers its
own sub-commands in its ``cli.py`` (``register_train`` and ``register_eval``); this module only gathers them.
"""

import importlib
import sys

TRAINERS = ("training.sa_adjust.cli", "training.critic.cli", "training.progressive.cli", "training.fcn_stylize.cli",
            "training.enhancegan.cli")


def add_parser(subparsers):
    train = subparsers.add_parser("train", help="train a model's weights")
    train_models = train.add_subparsers(dest="model", required=True)
    evaluate = subparsers.add_parser("eval", help="evaluate a model on the test split (the paper's table)")
    eval_models = evaluate.add_subparsers(dest="model", required=True)
    for name in TRAINERS:
        module = importlib.import_module(name)
        module.register_train(train_models)
        module.register_eval(eval_models)


if __name__ == "__main__":
    sys.exit("use `semantic-enhance train|eval`")
