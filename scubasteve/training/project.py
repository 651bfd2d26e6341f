"""Learning from a project folder: which learned engine to fine-tune, and its model's name.

`train from-project FOLDER` and the window's "Improve from this folder" fine-tune IS-Net when its
weights are installed (it starts from a real pretrained network), DeepMask otherwise (as before
IS-Net existed). A model to start from (`init`, e.g. the learned model the engines use now) decides
by its kind. Both learners measure on held-out images before and after and install only a model
that is not worse than what the user has.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError

#: The learners `learner_for` chooses from.
LEARNERS = ("isnet", "deepmask")


def learner_for(engine: str = "auto", init: str | Path | None = None) -> str:
    """ "isnet" or "deepmask": `engine` when given, else the kind of `init`, else IS-Net when its
    weights are installed."""
    if engine in LEARNERS:
        return engine
    if engine != "auto":
        raise InputError(f"unknown learner {engine!r} (auto, {', '.join(LEARNERS)})")
    from scubasteve.inference.engines import isnet_problem, learned_kind

    if init:
        kind = learned_kind(init)
        if kind in LEARNERS:
            return kind
    return "isnet" if not isnet_problem(None) else "deepmask"


def model_name_for(folder: Path, learner: str) -> str:
    """A valid model name for what was learned from `folder`: ``<learner>-<folder name>``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).name).strip("-._")
    return f"{learner}-{stem or 'project'}"[:64]


def learn_from_project(
    folder: Path,
    *,
    engine: str = "auto",
    init: str | Path | None = None,
    name: str | None = None,
    **options: Any,
) -> Any:
    """Fine-tune the learner `learner_for(engine, init)` on `folder`; its report (`installed`,
    `name`, `verdict()`, `table()`). `init` of the other kind is not a start: that learner starts
    from its own installed default. `options`: the learner's (epochs, holdout, device, progress,
    cancel, seed; DeepMask also batch_size, lr, limit)."""
    from scubasteve.inference.engines import learned_kind

    learner = learner_for(engine, init)
    if init and learned_kind(init) not in ("", learner):
        init = None
    name = name or model_name_for(folder, learner)
    if learner == "isnet":
        from scubasteve.training.isnet.learn import learn_from_project as learn_isnet

        allowed = {"epochs", "holdout", "device", "progress", "cancel", "seed"}
        return learn_isnet(
            folder, init=init, name=name, **{k: v for k, v in options.items() if k in allowed}
        )
    from scubasteve.training.deepmask.learn import learn_from_project as learn_deepmask

    return learn_deepmask(folder, init=init, name=name, **options)
