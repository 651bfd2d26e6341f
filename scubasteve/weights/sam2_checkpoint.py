"""Reading SAM 2 checkpoints: which variant a file holds, and refusing files that are not SAM 2.

Upstream's checkpoints are ``torch.save({"model": state_dict})`` files. The variant is read from
the state dict itself, so that the config always matches the file: the Hiera patch embedding's
width (96 tiny/small, 112 base+, 144 large) and the number of Hiera blocks (12, 16, 24, 48) give
the size; keys that only SAM 2.1 has (``no_obj_embed_spatial``, ``obj_ptr_tpos_proj``) tell 2.1 from
2.0. Files of other models (SAM 1, DeepMask, Mask R-CNN, Torch7), damaged or truncated files get an
`InputError` that says what the file is. Needs torch, not the `sam2` package.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scubasteve.core.errors import InputError


@dataclass(frozen=True)
class Sam2Variant:
    """One SAM 2 architecture: `version` "2" or "2.1", `size` tiny, small, base_plus or large."""

    version: str
    size: str

    @property
    def config(self) -> str:
        """The upstream hydra config name for this variant (inside the `sam2` package)."""
        short = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}[self.size]
        if self.version == "2.1":
            return f"configs/sam2.1/sam2.1_hiera_{short}.yaml"
        return f"configs/sam2/sam2_hiera_{short}.yaml"

    @property
    def label(self) -> str:
        return f"SAM {self.version} hiera-{self.size.replace('_', '-')}"


#: (patch-embedding width, Hiera blocks) -> size, from upstream's configs (stages summed).
_SIZES = {(96, 12): "tiny", (96, 16): "small", (112, 24): "base_plus", (144, 48): "large"}
_PATCH_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCK_PREFIX = "image_encoder.trunk.blocks."
_SAM21_KEYS = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight")

_HDF5 = b"\x89HDF\r\n\x1a\n"


def expected_variant(model_name: str) -> Sam2Variant | None:
    """The variant a registry name such as ``sam2.1-hiera-base-plus`` stands for (None if none)."""
    for (_, _), size in _SIZES.items():
        if model_name == f"sam2.1-hiera-{size.replace('_', '-')}":
            return Sam2Variant("2.1", size)
    return None


def _foreign(head: bytes) -> str | None:
    """What a file is from its first bytes when it cannot be a torch checkpoint at all."""
    if not head:
        return "the file is empty"
    if head.startswith(_HDF5):
        return "it is a Keras HDF5 file (such as a Mask R-CNN .h5), not a SAM 2 checkpoint"
    if head.lstrip()[:1] == b"<":
        return "it is an HTML or XML page, not a SAM 2 checkpoint"
    torch7_binary = len(head) >= 4 and int.from_bytes(head[:4], "little") in (3, 4)
    if torch7_binary or head[:2] in (b"3\n", b"4\n"):
        return "it looks like a Torch7 (.t7) file such as DeepMask's, not a SAM 2 checkpoint"
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        return "it is not a PyTorch checkpoint"
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The state dict of a SAM 2 checkpoint file; `InputError` saying what is wrong otherwise."""
    import torch

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", path) from exc
    problem = _foreign(head)
    if problem:
        raise InputError(problem, path)
    try:
        # Memory-mapping needs torch's zip format; a legacy (pre-1.6) file is read whole.
        mmap = zipfile.is_zipfile(path)
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise InputError(
            "holds Python objects besides tensors (another program's checkpoint, such as the "
            "DeepMask port's), not a SAM 2 checkpoint; it was not loaded, so none of its code ran",
            path,
        ) from exc
    except Exception as exc:  # zip errors, EOF: a damaged file
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"the file is damaged or incomplete (an interrupted download?) and cannot be read as "
            f"a PyTorch checkpoint: {text}",
            path,
        ) from exc
    return _state_dict(payload, path)


def _state_dict(payload: Any, path: Path) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InputError(f"holds a {type(payload).__name__}, not a SAM 2 checkpoint", path)
    if "model" not in payload:
        keys = [str(k) for k in payload]
        if payload.get("format") == "scubasteve-deepmask" or "architecture" in payload:
            raise InputError("is a DeepMask model, not a SAM 2 checkpoint", path)
        if any(k.startswith("image_encoder.") for k in keys) and any(
            k.startswith(("prompt_encoder.", "mask_decoder.")) for k in keys
        ):
            raise InputError(
                "is a Segment Anything (SAM 1) checkpoint; SAM 2 needs a SAM 2 file such as "
                "sam2.1_hiera_tiny.pt (scubasteve models list)",
                path,
            )
        if "state_dict" in payload:
            raise InputError(
                "holds a 'state_dict' (a DeepMask or other PyTorch model), not the 'model' entry "
                "of a SAM 2 checkpoint",
                path,
            )
        raise InputError(
            f"is not a SAM 2 checkpoint (no 'model' entry; it has {', '.join(keys[:5]) or 'nothing'})",
            path,
        )
    sd = payload["model"]
    if not isinstance(sd, dict) or not sd:
        raise InputError("its 'model' entry is not a state dict", path)
    return sd


def identify(sd: dict[str, Any], path: Path) -> Sam2Variant:
    """The SAM 2 variant of a state dict; `InputError` when it is none of them."""
    patch = sd.get(_PATCH_KEY)
    if patch is None or not hasattr(patch, "shape") or len(patch.shape) != 4:
        if any(str(k).startswith("image_encoder.blocks.") for k in sd):
            raise InputError("is a Segment Anything (SAM 1) model, not SAM 2", path)
        raise InputError(f"has no Hiera image encoder ({_PATCH_KEY}): not a SAM 2 model", path)
    blocks = {
        int(k[len(_BLOCK_PREFIX) :].split(".", 1)[0])
        for k in sd
        if str(k).startswith(_BLOCK_PREFIX) and k[len(_BLOCK_PREFIX) :].split(".", 1)[0].isdigit()
    }
    width, depth = int(patch.shape[0]), len(blocks)
    size = _SIZES.get((width, depth))
    if size is None:
        raise InputError(
            f"has a Hiera encoder of width {width} with {depth} blocks, which is none of SAM 2's "
            "tiny, small, base+ or large",
            path,
        )
    version = "2.1" if all(k in sd for k in _SAM21_KEYS) else "2"
    return Sam2Variant(version, size)


def inspect_file(path: Path) -> Sam2Variant:
    """The variant of the SAM 2 checkpoint at `path` (reads it; `InputError` if not SAM 2)."""
    return identify(read_checkpoint(path), Path(path))


def checkpoint_problem(path: Path, model_name: str | None = None) -> str | None:
    """Why `path` cannot be installed as SAM 2 model `model_name` (None when it can).

    For a registry name the variant must be the named one (a small file imported as large is
    refused); for any other name any SAM 2 variant is accepted.
    """
    try:
        found = inspect_file(path)
    except InputError as exc:
        return exc.problem
    want = expected_variant(model_name) if model_name else None
    if want is not None and found != want:
        return f"it holds {found.label}, not {want.label}"
    return None
