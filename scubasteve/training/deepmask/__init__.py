"""Training DeepMask/SharpMask on COCO files or on the masks accepted in a project (PyTorch).

- `data`: samples (image window, mask, objectness) drawn from COCO annotations.
- `trainer`: `Trainer` (one process) and its options; `state`: its resumable state on disk.
- `run`: a whole run (run folder, epochs, best/last checkpoints, registering the model).
- `distributed`: the same run data-parallel over N processes (torch.distributed).
- `project`: training from a project's accepted masks (what the window's "Learn" starts).
- `quality`: held-out proposal quality (top-1 and best-of-ten IoU) of a trained model.
"""
