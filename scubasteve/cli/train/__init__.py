"""`scubasteve train ...`: fine-tune IS-Net, train DeepMask (PyTorch) or Mask R-CNN (PixelLib).

Each model's options and handlers are in its own module (`isnet.py`, `deepmask.py`, `maskrcnn.py`); they import
PyTorch or TensorFlow inside the handlers, when the command runs.
"""

from __future__ import annotations

import argparse

from scubasteve.cli.train import deepmask, isnet, maskrcnn


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train", help="fine-tune IS-Net, train DeepMask or Mask R-CNN on annotated images"
    )
    kinds = train.add_subparsers(dest="train_command", metavar="MODEL", required=True)

    isnet.register(kinds)
    deepmask.register(kinds)
    maskrcnn.register(kinds)
