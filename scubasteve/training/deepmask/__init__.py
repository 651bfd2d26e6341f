"""Training DeepMask/SharpMask on COCO files or on the masks accepted in a project (PyTorch).

- `data`: samples (image window, mask, objectness) drawn from COCO annotations.
- `trainer`: `Trainer` (one process) and its options; `state`: its resumable state on disk.
- `run`: a whole run (the split, the starting network, run folder, registering the model).
- `jobs`: the training commands as typed jobs; `group`: where a job runs (one process,
  `--workers N` through `distributed`, or `--ray` through `ray_train`).
- `learn`: learning from the user's accepted masks (`train from-project`, the window's "Learn").
Held-out proposal quality is measured by `scubasteve.evaluation.proposal_quality`.
"""
