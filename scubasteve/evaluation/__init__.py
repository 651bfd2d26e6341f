"""Measuring masks: a library the commands, training and benchmarks share.

- `mask_ap`: COCO mask AP (AP, AP50, AP75, AP per IoU threshold) of predictions or assisted
  annotations against ground truth (`scubasteve eval`, Mask R-CNN training's validation).
- `proposal_quality`: a mask-proposal engine prompted with each held-out object's box: mean IoU
  of its top-ranked and best proposal (DeepMask training and learning from a project, benchmarks).

Below `training` and above `inference` in the layers (pyproject.toml); no Qt.
"""
