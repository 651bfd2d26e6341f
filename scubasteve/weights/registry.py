"""The published models Scuba Steve knows: where each comes from, its file, licence and checks.

Sizes and checksums are filled in only where a public source states them; an unknown one is `None`
and its check is skipped (the download is then checked against the length the server announces).
No entry here was downloaded from these development machines (they have no internet), so none of the
values below was measured here: see docs/models.md.

Tests replace `KNOWN_MODELS` (monkeypatch) to point entries at a local HTTP server; every function
of the weights manager reads it at call time through `known_models()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scubasteve.core.labels import COCO80

#: Kinds of model. "resnet" is the ImageNet trunk used to start DeepMask training from scratch;
#: "sam2" a Segment Anything 2 checkpoint (the optional `sam` extra runs it); "isnet" the DIS IS-Net
#: the `isnet` engine runs (ONNX or PyTorch weights).
KINDS = ("deepmask", "sharpmask", "maskrcnn", "resnet", "sam2", "isnet")

#: File formats, so that loaders can pick their reader without guessing from the name.
#: "t7": a Torch7 serialised object (read with `torchfile`); "pth-port": the DeepMask PyTorch port's
#: checkpoint (dict with a DataParallel `state_dict`); "pt": our own torch checkpoint;
#: "h5": a Keras HDF5 weights file (PixelLib / Matterport Mask R-CNN); "onnx": an ONNX model (read
#: for its weights by the engine; nothing runs ONNX Runtime).
FORMATS = ("t7", "pth-port", "pt", "h5", "onnx")


@dataclass(frozen=True)
class ModelInfo:
    """One model the program can install.

    `filename` is the name the file gets in the models folder (unique among models; the original
    Torch7 files are all called model.t7, so they are renamed). `size` is the exact size in bytes
    and `sha256` the hex digest, each `None` where no public source gives it. `approx_size`
    (bytes) is for display only. `class_names` lists the output classes of a Mask
    R-CNN model, "BG" first, as PixelLib expects. `mirrors` are tried in order after `url`.
    """

    name: str
    kind: str
    filename: str
    url: str | None
    size: int | None
    sha256: str | None
    license: str
    description: str
    class_names: tuple[str, ...] = ()
    format: str = "pt"
    approx_size: int | None = None
    mirrors: tuple[str, ...] = ()
    homepage: str = ""
    #: A warning about where the file can be had (a dead host, say), shown by `models list`.
    availability: str = ""
    #: Other files of the same network that `models import` accepts after reading them (their
    #: size and checksum differ from the published file's); "" for none.
    other_forms: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.url)

    @property
    def display_size(self) -> int | None:
        """Exact size when known, else the approximate one, else None."""
        return self.size if self.size is not None else self.approx_size


# S3 is the old host: facebookresearch/deepmask's README links the models under
# s3.amazonaws.com/deepmask/models/ (as released in 2016). Facebook later moved its public research
# files to dl.fbaipublicfiles.com, where the same paths are tried first; S3 stays as the fallback.
# Neither host was reachable from the development machines, so neither is verified.
_DEEPMASK_HOST = "https://dl.fbaipublicfiles.com/deepmask/models"
_DEEPMASK_S3 = "https://s3.amazonaws.com/deepmask/models"
#: The file PixelLib's own code points at (`COCO_MODEL_URL` in pixellib/instance/utils.py, taken
#: over from matterport/Mask_RCNN's utils.py): Matterport's v2.0 release.
_MATTERPORT_COCO = (
    "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"
)
_DEEPMASK_HOME = "https://github.com/facebookresearch/deepmask"
_DEEPMASK_LICENSE = "BSD + PATENTS (facebookresearch/deepmask)"

# SAM 2.1 (facebookresearch/sam2, Apache-2.0): the addresses are those of upstream's
# checkpoints/download_ckpts.sh and README.md ("Download Checkpoints"); the parameter counts are the
# README's "Size (M)" column. Upstream publishes no file sizes or checksums, so none are pinned: a
# download or import is checked against the server's length and by reading the checkpoint itself
# (scubasteve.weights.sam2_checkpoint: its architecture must be the named variant).
_SAM2_HOST = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"

# IS-Net "general use" (xuebinqin/DIS, MIT): the DIS README links its .pth on Google Drive only, which
# is no stable download address; rembg (danielgatis/rembg) publishes the same network exported to
# float32 ONNX as a release asset. Size and SHA-256 as listed by independent public projects; not
# downloaded from these machines (no internet), so confirm them on the first real download.
_ISNET_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/isnet-general-use.onnx"
_SAM2_HOME = "https://github.com/facebookresearch/sam2"


def _sam2(size: str, params: str) -> ModelInfo:
    return ModelInfo(
        name=f"sam2.1-hiera-{size.replace('_', '-')}",
        kind="sam2",
        filename=f"sam2.1_hiera_{size}.pt",
        url=f"{_SAM2_HOST}/sam2.1_hiera_{size}.pt",
        size=None,
        sha256=None,
        license="Apache-2.0 (facebookresearch/sam2)",
        description=f"SAM 2.1, Hiera-{size.replace('_', '-')} image encoder ({params} M "
        "parameters), Meta's Segment Anything 2; needs the `sam` extra",
        format="pt",
        homepage=_SAM2_HOME,
    )


KNOWN_MODELS: tuple[ModelInfo, ...] = (
    ModelInfo(
        name="mask_rcnn_coco",
        kind="maskrcnn",
        filename="mask_rcnn_coco.h5",
        url="https://github.com/ayoolaolafenwa/PixelLib/releases/download/1.2/mask_rcnn_coco.h5",
        # About 258 MB: the size of Matterport's v2.0 release asset `mask_rcnn_coco.h5` (PixelLib's
        # docs give no size). Not pinned: the exact size of either release asset was not
        # confirmed from here, so the download is checked against the server's announced length.
        size=None,
        sha256=None,
        license="MIT (PixelLib)",
        description="Mask R-CNN, ResNet-101 backbone, trained on COCO (80 classes); PixelLib's "
        "whole-image pre-annotation model",
        class_names=("BG", *COCO80),
        format="h5",
        approx_size=258_000_000,
        mirrors=(_MATTERPORT_COCO,),
        homepage="https://github.com/ayoolaolafenwa/PixelLib",
    ),
    ModelInfo(
        name="deepmask-t7",
        kind="deepmask",
        filename="deepmask-model.t7",
        url=f"{_DEEPMASK_HOST}/deepmask/model.t7",
        size=None,
        sha256=None,
        license=_DEEPMASK_LICENSE,
        description="DeepMask (ResNet-50 trunk, COCO), the original Torch7 model as released with "
        "SharpMask; converted to PyTorch by the DeepMask loader",
        format="t7",
        mirrors=(f"{_DEEPMASK_S3}/deepmask/model.t7",),
        homepage=_DEEPMASK_HOME,
    ),
    ModelInfo(
        name="sharpmask-t7",
        kind="sharpmask",
        filename="sharpmask-model.t7",
        url=f"{_DEEPMASK_HOST}/sharpmask/model.t7",
        size=None,
        sha256=None,
        license=_DEEPMASK_LICENSE,
        description="SharpMask (DeepMask plus top-down refinement, COCO), the original Torch7 "
        "model",
        format="t7",
        mirrors=(f"{_DEEPMASK_S3}/sharpmask/model.t7",),
        homepage=_DEEPMASK_HOME,
    ),
    ModelInfo(
        name="resnet50-t7",
        kind="resnet",
        filename="resnet-50.t7",
        url=f"{_DEEPMASK_HOST}/resnet-50.t7",
        size=None,
        sha256=None,
        license=_DEEPMASK_LICENSE,
        description="ResNet-50 trained on ImageNet (Torch7), the trunk DeepMask training "
        "starts from",
        format="t7",
        mirrors=(f"{_DEEPMASK_S3}/resnet-50.t7",),
        homepage=_DEEPMASK_HOME,
    ),
    ModelInfo(
        name="deepmask-pth",
        kind="deepmask",
        filename="DeepMask.pth.tar",
        url="http://www.robots.ox.ac.uk/~qwang/DeepMask.pth.tar",
        size=None,
        sha256=None,
        license="MIT (foolwood/deepmask-pytorch)",
        description="DeepMask from the PyTorch port (foolwood/deepmask-pytorch), COCO",
        format="pth-port",
        homepage="https://github.com/foolwood/deepmask-pytorch",
        # The port's README gives only this personal page; downloads from the same host were
        # reported unreachable from 2019 on (foolwood/SiamMask#56, StrangerZhang/SiamFC-PyTorch#31).
        availability="the port's only address (www.robots.ox.ac.uk/~qwang) is probably dead "
        "(reported unreachable since 2019); if you have the file, `scubasteve models import "
        "deepmask-pth FILE`",
    ),
    ModelInfo(
        name="isnet-general-use",
        kind="isnet",
        filename="isnet-general-use.onnx",
        url=_ISNET_URL,
        size=178_648_008,
        sha256="60920e99c45464f2ba57bee2ad08c919a52bbf852739e96947fbb4358c0d964a",
        license="MIT (xuebinqin/DIS)",
        description="IS-Net, DIS general-use weights (Qin et al., ECCV 2022): class-agnostic "
        "masks with fine outlines, the `isnet` engine; float32 ONNX as published by rembg",
        format="onnx",
        homepage="https://github.com/xuebinqin/DIS",
        other_forms="the same network as float16 or int8 ONNX, or DIS's isnet-general-use.pth",
    ),
    _sam2("tiny", "38.9"),
    _sam2("small", "46"),
    _sam2("base_plus", "80.8"),
    _sam2("large", "224.4"),
)

#: The model `resolve_weights(None, kind)` prefers for each kind when it is installed.
DEFAULT_MODELS: dict[str, str] = {
    "deepmask": "deepmask-t7",
    "sharpmask": "sharpmask-t7",
    "maskrcnn": "mask_rcnn_coco",
    "resnet": "resnet50-t7",
    "sam2": "sam2.1-hiera-tiny",
    "isnet": "isnet-general-use",
}


def known_models() -> tuple[ModelInfo, ...]:
    """The registry as it is now (read at call time so that tests can replace it)."""
    return KNOWN_MODELS


def known_model(name: str) -> ModelInfo | None:
    for info in known_models():
        if info.name == name:
            return info
    return None


def format_from_suffix(path_name: str) -> str:
    """Guess a format from a file name: .t7, .pth.tar, .h5, .onnx, anything else our own .pt."""
    lower = path_name.lower()
    if lower.endswith(".t7"):
        return "t7"
    if lower.endswith(".pth.tar"):
        return "pth-port"
    if lower.endswith((".h5", ".hdf5")):
        return "h5"
    if lower.endswith(".onnx"):
        return "onnx"
    return "pt"


def sniff_problem(head: bytes, fmt: str) -> str | None:
    """Why the first bytes of a file cannot be a `fmt` file, or None when they can.

    A cheap guard for imports and downloads of models whose checksum is unknown: an HTML error page
    or a file of another kind is caught before it is installed.
    """
    if not head:
        return "the file is empty"
    if head.lstrip()[:1] == b"<":
        return "it is an HTML or XML page, not a weights file"
    if fmt == "h5" and not head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "it is not an HDF5 (.h5) file"
    if fmt in ("pt", "pth-port"):
        is_zip = head.startswith(b"PK\x03\x04")
        is_pickle = head[:1] == b"\x80"
        is_tar = len(head) >= 262 and head[257:262] == b"ustar"
        if not (is_zip or is_pickle or is_tar):
            return "it is not a PyTorch checkpoint (neither zip nor pickle)"
    if fmt == "onnx" and head[:1] not in (b"\x08", b"\x12", b"\x1a", b"\x22", b"\x3a"):
        return "it is not an ONNX model"
    if fmt == "t7":
        # Binary Torch7 files start with the little-endian int32 type code of the saved object
        # (3 = table, 4 = torch class); ASCII ones with that digit and a newline.
        binary_ok = len(head) >= 4 and int.from_bytes(head[:4], "little") in (3, 4)
        ascii_ok = head[:2] in (b"3\n", b"4\n")
        if not (binary_ok or ascii_ok):
            return "it is not a Torch7 (.t7) file"
    return None
