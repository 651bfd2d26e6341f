"""SAM 2 checkpoints: the variant is read from the file; other models and damaged files are refused.

Fast: the state dicts here are small stand-ins with the keys and shapes that identify a variant
(no `sam2` package needed, only torch). The real-architecture tests are in test_sam2_engine.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scubasteve import weights  # noqa: E402
from scubasteve.core.errors import InputError  # noqa: E402
from scubasteve.inference.sam2.prompts import region_logits  # noqa: E402
from scubasteve.weights import sam2_checkpoint as ck  # noqa: E402
from scubasteve.weights.registry import known_model  # noqa: E402


def fake_state(width: int = 96, blocks: int = 12, sam21: bool = True) -> dict:
    """Just the keys `identify` reads, with the shapes of a real variant."""
    sd = {ck._PATCH_KEY: torch.zeros(width, 3, 7, 7)}
    for i in range(blocks):
        sd[f"image_encoder.trunk.blocks.{i}.norm1.weight"] = torch.zeros(1)
    if sam21:
        sd["no_obj_embed_spatial"] = torch.zeros(1, 64)
        sd["obj_ptr_tpos_proj.weight"] = torch.zeros(64, 256)
    return sd


class Opts:
    """A plain object, as training scripts pickle their options into checkpoints."""

    lr = 0.1


def save(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    ("width", "blocks", "sam21", "config"),
    [
        (96, 12, True, "configs/sam2.1/sam2.1_hiera_t.yaml"),
        (96, 16, True, "configs/sam2.1/sam2.1_hiera_s.yaml"),
        (112, 24, True, "configs/sam2.1/sam2.1_hiera_b+.yaml"),
        (144, 48, True, "configs/sam2.1/sam2.1_hiera_l.yaml"),
        (96, 12, False, "configs/sam2/sam2_hiera_t.yaml"),
    ],
)
def test_config_is_chosen_from_the_checkpoint(
    tmp_path: Path, width: int, blocks: int, sam21: bool, config: str
) -> None:
    path = save(tmp_path / "c.pt", {"model": fake_state(width, blocks, sam21)})
    assert ck.inspect_file(path).config == config


def test_every_registry_entry_names_its_variant() -> None:
    for name in ("sam2.1-hiera-tiny", "sam2.1-hiera-small", "sam2.1-hiera-base-plus",
                 "sam2.1-hiera-large"):  # fmt: skip
        info = known_model(name)
        assert info is not None and info.kind == "sam2"
        assert info.url and info.url.endswith("/092824/" + info.filename)
        variant = ck.expected_variant(name)
        assert variant is not None and variant.version == "2.1"


def test_wrong_size_variant_is_refused(tmp_path: Path) -> None:
    path = save(tmp_path / "tiny.pt", {"model": fake_state(96, 12)})
    problem = ck.checkpoint_problem(path, "sam2.1-hiera-large")
    assert problem == "it holds SAM 2.1 hiera-tiny, not SAM 2.1 hiera-large"
    assert ck.checkpoint_problem(path, "sam2.1-hiera-tiny") is None
    with pytest.raises(InputError, match=r"hiera-tiny, not SAM 2\.1 hiera-large"):
        weights.import_file("sam2.1-hiera-large", path)
    assert weights.installed_path("sam2.1-hiera-large") is None


def test_sam_2_0_file_is_not_the_sam_2_1_model(tmp_path: Path) -> None:
    path = save(tmp_path / "old.pt", {"model": fake_state(96, 12, sam21=False)})
    assert ck.checkpoint_problem(path, "sam2.1-hiera-tiny") == (
        "it holds SAM 2 hiera-tiny, not SAM 2.1 hiera-tiny"
    )


def _other_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    sam1 = {
        "image_encoder.patch_embed.proj.weight": torch.zeros(8, 3, 16, 16),
        "image_encoder.blocks.0.norm1.weight": torch.zeros(8),
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": torch.zeros(2, 8),
        "mask_decoder.iou_token.weight": torch.zeros(1, 8),
    }
    deepmask = {"format": "scubasteve-deepmask", "architecture": "deepmask", "state_dict": {}}
    good = save(tmp_path / "good.pt", {"model": fake_state()})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    h5 = tmp_path / "mask_rcnn_coco.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    t7 = tmp_path / "model.t7"
    t7.write_bytes((3).to_bytes(4, "little") + bytes(60))
    html = tmp_path / "page.pt"
    html.write_bytes(b"<!DOCTYPE html><html>Access denied</html>")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    return {
        "sam1": (save(tmp_path / "sam_vit_b.pth", sam1), "SAM 1"),
        "sam1-wrapped": (save(tmp_path / "sam1w.pt", {"model": sam1}), "SAM 1"),
        "deepmask": (save(tmp_path / "dm.pt", deepmask), "DeepMask"),
        "truncated": (truncated, "damaged or incomplete"),
        "h5": (h5, "HDF5"),
        "t7": (t7, "Torch7"),
        "html": (html, "HTML"),
        "empty": (empty, "empty"),
        "tensor": (save(tmp_path / "t.pt", torch.zeros(3)), "not a SAM 2 checkpoint"),
        "objects": (save(tmp_path / "o.pth.tar", {"args": Opts(), "state_dict": {}}), "objects"),
    }


def test_other_models_and_damaged_files_are_refused_with_what_they_are(tmp_path: Path) -> None:
    for label, (path, words) in _other_files(tmp_path).items():
        problem = ck.checkpoint_problem(path, "sam2.1-hiera-tiny")
        assert problem is not None and words in problem, (label, problem)
        with pytest.raises(InputError, match=words) as info:
            weights.import_file("sam2.1-hiera-tiny", path)
        assert str(path) in str(info.value)  # the message names the file
    assert weights.installed_path("sam2.1-hiera-tiny") is None


def test_own_name_import_also_reads_the_checkpoint(tmp_path: Path) -> None:
    files = _other_files(tmp_path)
    with pytest.raises(InputError, match="SAM 1"):
        weights.import_file("my-sam", files["sam1"][0], kind="sam2")
    good = save(tmp_path / "mine.pt", {"model": fake_state(112, 24)})
    installed = weights.import_file("my-sam", good, kind="sam2")
    assert installed.is_file()
    assert weights.resolve_weights("my-sam") == installed


def test_region_logits_equal_upsampling_then_cropping() -> None:
    rng = np.random.default_rng(3)
    low = rng.normal(size=(256, 256)).astype(np.float32)
    height, width = 300, 500
    full = torch.nn.functional.interpolate(
        torch.from_numpy(low)[None, None], (height, width), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    from scubasteve.core.geometry import Box

    region = Box(37, 11, 290, 240)
    part = region_logits(low, (height, width), region)
    expect = full[11:240, 37:290]
    assert part.shape == expect.shape
    assert np.abs(part - expect).max() < 1e-3


def test_large_images_are_shrunk_before_the_encoder_and_small_ones_kept() -> None:
    from scubasteve.inference.sam2.proposer import _bounded

    big = np.zeros((3000, 5000, 3), np.uint8)
    assert _bounded(big, 2048).shape == (1229, 2048, 3)
    small = np.zeros((1, 1, 3), np.uint8)
    assert _bounded(small, 2048) is small


def test_a_mask_given_as_previous_becomes_low_resolution_logits() -> None:
    from scubasteve.core.annotation import MaskPatch
    from scubasteve.inference.sam2.prompts import mask_logits

    height, width = 300, 500
    full = np.zeros((height, width), bool)
    full[:, :250] = True  # the left half
    logits = mask_logits(MaskPatch.from_full(full), (height, width))
    assert logits.shape == (1, 256, 256)
    assert (logits[0, :, :127] > 0).all() and (logits[0, :, 129:] < 0).all()


def test_a_checkpoint_in_torchs_legacy_format_is_read_too(tmp_path: Path) -> None:
    # torch can memory-map only its zip format; the legacy one is read whole (chosen by the
    # file's format, not by the text of the error a memory-mapped load would raise).
    legacy = tmp_path / "legacy.pt"
    torch.save({"model": fake_state()}, legacy, _use_new_zipfile_serialization=False)
    zipped = save(tmp_path / "zipped.pt", {"model": fake_state()})
    for path in (legacy, zipped):
        assert ck.read_checkpoint(path).keys() == fake_state().keys()
