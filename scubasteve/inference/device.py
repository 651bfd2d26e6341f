"""Compute-device choice for the PyTorch engines, resolved in one place.

`resolve_device("auto" | "cpu" | "cuda" | "mps")` returns the device to use and, when it differs from
what was asked, the reason (logged once). torch is imported only inside the function.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    requested: str
    device: str  # a torch device string: "cpu", "cuda", "cuda:1", "mps"
    reason: str = ""  # why `device` differs from `requested` (empty when it does not)

    def describe(self) -> str:
        return f"{self.device} ({self.reason})" if self.reason else self.device


def resolve_device(requested: str = "auto") -> DeviceChoice:
    """The torch device for a user setting, falling back to the CPU with a logged reason."""
    req = (requested or "auto").strip().lower()
    base = req.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if base == "cpu":
        return DeviceChoice(req, "cpu")
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        return _fallback(req, f"PyTorch is not available ({exc})")

    cuda_ok = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps_backend and mps_backend.is_available())
    if base == "auto":
        if cuda_ok:
            return DeviceChoice(req, "cuda")
        if mps_ok:
            return DeviceChoice(req, "mps")
        return DeviceChoice(req, "cpu", "no CUDA or MPS device found")
    if base == "cuda":
        if not cuda_ok:
            return _fallback(req, "CUDA was requested but torch sees no CUDA device")
        if ":" in req:
            index = int(req.split(":", 1)[1])
            if index >= torch.cuda.device_count():
                return _fallback(req, f"there is no CUDA device {index}")
        return DeviceChoice(req, req)
    if not mps_ok:
        return _fallback(req, "MPS was requested but this machine has no Metal device")
    return DeviceChoice(req, "mps")


def _fallback(requested: str, reason: str) -> DeviceChoice:
    log.warning("using the CPU: %s", reason)
    return DeviceChoice(requested, "cpu", reason)


def bf16_is_fast(device: str) -> bool:
    """Whether bfloat16 autocast speeds this device up (CPUs with native bf16, recent GPUs)."""
    import torch

    kind = str(device).split(":", 1)[0]
    try:
        if kind == "cpu":
            return bool(
                torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
            )
        if kind == "cuda":
            return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
    return False


def autocast(device: str, enabled: bool) -> Any:
    """A bfloat16 autocast context for `device` (a no-op context when not `enabled`)."""
    import torch

    return torch.autocast(
        device_type=str(device).split(":", 1)[0], dtype=torch.bfloat16, enabled=enabled
    )


@contextlib.contextmanager
def denormals_flushed(device: str) -> Iterator[None]:
    """Denormal floats read and written as 0 while a network runs on the CPU, then back.

    Fine-tuned weights, their gradients and Adam's moments drift into denormals, which x86 CPUs
    handle about 10x slower (an IS-Net training step: 30 s against 3.3 s). The setting is the
    thread's floating-point mode, so it is restored at once: other code (geometry with extreme
    coordinates) must keep IEEE semantics.
    """
    if not str(device).startswith("cpu"):
        yield
        return
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
