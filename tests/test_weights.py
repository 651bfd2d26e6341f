"""The weights manager without a network: registry, offline import, trained models, resolve, CLI."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scubasteve import weights
from scubasteve.cli import main
from scubasteve.core.errors import InputError
from scubasteve.core.paths import models_dir
from scubasteve.weights import registry as weights_registry
from scubasteve.weights import store as weights_store
from scubasteve.weights.registry import FORMATS, KINDS, ModelInfo

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PAYLOAD = HDF5_MAGIC + bytes(range(256)) * 40
SHA = hashlib.sha256(PAYLOAD).hexdigest()
T7_PAYLOAD = (4).to_bytes(4, "little") + b"torch7 object" * 10


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> tuple[ModelInfo, ...]:
    """Two fake published models; their address is never contacted by these tests."""
    models = (
        ModelInfo("tiny", "maskrcnn", "tiny.h5", "http://127.0.0.1:9/tiny.h5", len(PAYLOAD), SHA,
                  "test", "a test Mask R-CNN", ("BG", "cat"), "h5"),
        ModelInfo("loose", "deepmask", "loose.t7", "http://127.0.0.1:9/loose.t7", None, None,
                  "test", "a test DeepMask", (), "t7"),
    )  # fmt: skip
    monkeypatch.setattr(weights_registry, "KNOWN_MODELS", models)
    monkeypatch.setitem(weights_registry.DEFAULT_MODELS, "maskrcnn", "tiny")
    monkeypatch.setitem(weights_registry.DEFAULT_MODELS, "deepmask", "loose")
    return models


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "downloaded elsewhere.h5"
    path.write_bytes(PAYLOAD)
    return path


def _models_folder_files() -> list[str]:
    folder = models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- the real registry ---------------------------------------------------------------------


def test_published_registry_entries_are_consistent() -> None:
    models = weights_registry.KNOWN_MODELS
    assert len({m.name for m in models}) == len(models)
    assert len({m.filename for m in models}) == len(models)
    for m in models:
        assert m.kind in KINDS and m.format in FORMATS
        assert m.url and m.url.startswith(("https://", "http://"))
        assert m.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", m.sha256)
        assert m.license and m.description
    for kind, name in weights_registry.DEFAULT_MODELS.items():
        assert weights_registry.known_model(name).kind == kind
    coco = weights_registry.known_model("mask_rcnn_coco")
    assert coco.class_names[0] == "BG" and len(coco.class_names) == 81
    assert coco.url.endswith("/releases/download/1.2/mask_rcnn_coco.h5")


def test_nothing_is_installed_in_a_fresh_models_folder() -> None:
    statuses = weights.list_models()
    assert {s.name for s in statuses} >= {"mask_rcnn_coco", "deepmask-t7", "deepmask-pth"}
    assert not any(s.installed for s in statuses)
    assert not models_dir().exists()  # listing creates nothing


# --- import (the offline path) --------------------------------------------------------------


def test_import_of_the_right_file_installs_it(registry: object, tiny_file: Path) -> None:
    path = weights.import_file("tiny", tiny_file)
    assert path == models_dir() / "tiny.h5" and path.read_bytes() == PAYLOAD
    assert tiny_file.exists()  # the user's file stays
    assert weights.installed_path("tiny") == path
    status = weights.model_status("tiny")
    assert status.installed and status.info.class_names == ("BG", "cat")
    record = json.loads((models_dir() / "tiny.json").read_text())
    assert record["sha256"] == SHA and "imported from" in record["source"]


def test_import_of_a_file_with_the_wrong_size_is_refused(registry: object, tmp_path: Path) -> None:
    short = tmp_path / "short.h5"
    short.write_bytes(PAYLOAD[:-10])
    with pytest.raises(InputError, match="nothing was installed") as err:
        weights.import_file("tiny", short)
    assert f"is {len(PAYLOAD) - 10:,} bytes but tiny is {len(PAYLOAD):,} bytes" in str(err.value)
    assert weights.installed_path("tiny") is None
    assert _models_folder_files() == []  # no temporary file left


def test_import_of_a_file_with_the_wrong_checksum_is_refused(
    registry: object, tmp_path: Path
) -> None:
    other = tmp_path / "other.h5"
    other.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(InputError, match="SHA-256"):
        weights.import_file("tiny", other)
    assert _models_folder_files() == []


def test_import_of_a_foreign_file_is_refused_when_no_checksum_is_known(
    registry: object, tmp_path: Path
) -> None:
    text = tmp_path / "notes.t7"
    text.write_text("these are not weights\n")
    with pytest.raises(InputError, match="not a Torch7"):
        weights.import_file("loose", text)
    good = tmp_path / "model.t7"
    good.write_bytes(T7_PAYLOAD)
    assert weights.import_file("loose", good).read_bytes() == T7_PAYLOAD


def test_import_refuses_to_overwrite_without_force(registry: object, tiny_file: Path) -> None:
    weights.import_file("tiny", tiny_file)
    with pytest.raises(InputError, match="--force"):
        weights.import_file("tiny", tiny_file)
    assert weights.import_file("tiny", tiny_file, force=True).read_bytes() == PAYLOAD


def test_import_on_a_full_disk_installs_nothing(
    registry: object, tiny_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fh: object, block: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(weights_store, "_write", full)
    with pytest.raises(InputError, match="disk is full"):
        weights.import_file("tiny", tiny_file)
    assert _models_folder_files() == []


def test_import_of_a_missing_file_names_it(registry: object, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as err:
        weights.import_file("tiny", tmp_path / "nope.h5")
    assert err.value.path == tmp_path / "nope.h5"


def test_import_under_a_new_name_needs_a_kind(registry: object, tmp_path: Path) -> None:
    src = tmp_path / "from-laptop.pt"
    with zipfile.ZipFile(src, "w") as archive:  # the layout torch.save writes
        archive.writestr("from-laptop/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(InputError, match="--kind"):
        weights.import_file("laptop-deepmask", src)
    path = weights.import_file("laptop-deepmask", src, kind="deepmask")
    assert weights.resolve_weights("laptop-deepmask", kind="deepmask") == path


# --- remove ----------------------------------------------------------------------------------


def test_remove_deletes_file_sidecar_and_partial_download(
    registry: object, tiny_file: Path
) -> None:
    weights.import_file("tiny", tiny_file)
    (models_dir() / "tiny.h5.part").write_bytes(b"partial")
    removed = weights.remove("tiny")
    assert {p.name for p in removed} == {"tiny.h5", "tiny.json", "tiny.h5.part"}
    assert _models_folder_files() == []
    with pytest.raises(InputError, match="not installed"):
        weights.remove("tiny")


# --- resolve ---------------------------------------------------------------------------------


def test_resolve_accepts_an_existing_path_as_is(tmp_path: Path) -> None:
    f = tmp_path / "any.weights"
    f.write_bytes(b"x")
    assert weights.resolve_weights(f) == f
    assert weights.resolve_weights(str(f)) == f
    with pytest.raises(InputError, match="not found"):
        weights.resolve_weights(tmp_path / "missing.pt")
    with pytest.raises(InputError, match="folder"):
        weights.resolve_weights(tmp_path)


def test_resolve_by_name_and_by_default(registry: object, tiny_file: Path) -> None:
    path = weights.import_file("tiny", tiny_file)
    assert weights.resolve_weights("tiny") == path
    assert weights.resolve_weights("tiny", kind="maskrcnn") == path
    assert weights.resolve_weights(None, kind="maskrcnn") == path
    with pytest.raises(InputError, match="is a maskrcnn model, not a deepmask model"):
        weights.resolve_weights("tiny", kind="deepmask")


def test_missing_model_message_says_how_to_get_it(registry: object) -> None:
    with pytest.raises(weights.WeightsNotInstalled) as err:
        weights.resolve_weights("tiny")
    message = str(err.value)
    assert "scubasteve models download tiny" in message
    assert "scubasteve models import tiny FILE" in message
    assert "http://127.0.0.1:9/tiny.h5" in message  # where to fetch it on another machine
    assert err.value.model_name == "tiny" and isinstance(err.value, InputError)
    with pytest.raises(weights.WeightsNotInstalled, match="models download loose"):
        weights.resolve_weights(None, kind="deepmask")


def test_unknown_name_lists_the_known_ones(registry: object) -> None:
    with pytest.raises(InputError, match=r"unknown model 'nosuch'.*tiny, loose"):
        weights.resolve_weights("nosuch")


def test_damaged_install_counts_as_missing(registry: object, tiny_file: Path) -> None:
    weights.import_file("tiny", tiny_file)
    (models_dir() / "tiny.h5").write_bytes(PAYLOAD[:100])
    assert weights.installed_path("tiny") is None
    with pytest.raises(weights.WeightsNotInstalled, match="expected"):
        weights.resolve_weights("tiny")
    # A damaged file may be replaced by a good import without --force.
    assert weights.import_file("tiny", tiny_file).read_bytes() == PAYLOAD


# --- models trained here ----------------------------------------------------------------------


def test_registered_trained_model_is_listed_and_resolves(registry: object, tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "final.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"PK\x03\x04 trained weights")
    meta = {"source_data": "/data/coco.json", "metrics": {"val_miou": np.float32(0.5), "x": np.nan}}
    path = weights.register_trained("deepmask-custom", "deepmask", ckpt, meta)
    assert path == models_dir() / "deepmask-custom.pt" and path.read_bytes() == ckpt.read_bytes()
    record = json.loads((models_dir() / "deepmask-custom.json").read_text())
    assert record["kind"] == "deepmask" and record["trained"] is True and record["created"]
    assert record["meta"]["metrics"] == {"val_miou": 0.5, "x": None}
    status = next(s for s in weights.list_models() if s.name == "deepmask-custom")
    assert status.trained and status.installed and status.meta["source_data"] == "/data/coco.json"
    assert weights.resolve_weights("deepmask-custom") == path
    # The published default is not installed, so the trained one is the default of its kind.
    assert weights.resolve_weights(None, kind="deepmask") == path


def test_a_sharpmask_serves_where_a_deepmask_is_asked_for(registry: object, tmp_path: Path) -> None:
    # Issue 23, item 8: the rule lived in inference/deepmask/weights.py, one of three spellings of
    # the lookup; the weights manager now answers it for every caller.
    ckpt = tmp_path / "final.pt"
    ckpt.write_bytes(b"PK\x03\x04 sharpmask weights")
    path = weights.register_trained("sharp-here", "sharpmask", ckpt, {})
    assert weights.resolve_weights(None, kind="deepmask") == path  # no DeepMask: the SharpMask
    assert weights.resolve_weights("sharp-here", kind="deepmask") == path
    with pytest.raises(InputError, match="is a sharpmask model, not a maskrcnn model"):
        weights.resolve_weights("sharp-here", kind="maskrcnn")


def test_trained_maskrcnn_keeps_its_class_names(registry: object, tmp_path: Path) -> None:
    h5 = tmp_path / "fish.h5"
    h5.write_bytes(HDF5_MAGIC + b"weights")
    weights.register_trained("fish", "maskrcnn", h5, {"class_names": ["BG", "cod", "eel"]})
    assert weights.model_status("fish").info.class_names == ("BG", "cod", "eel")


def test_register_trained_replaces_and_refuses_bad_names(registry: object, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    weights.register_trained("mine", "deepmask", a, {})
    assert weights.register_trained("mine", "deepmask", b, {}).read_bytes() == b"second"
    with pytest.raises(InputError, match="already exists"):
        weights.register_trained("mine", "deepmask", a, {}, replace=False)
    with pytest.raises(InputError, match="published model"):
        weights.register_trained("tiny", "maskrcnn", a, {})
    with pytest.raises(InputError, match="not a valid model name"):
        weights.register_trained("../escape", "deepmask", a, {})
    with pytest.raises(InputError, match="unknown model kind"):
        weights.register_trained("other", "yolo", a, {})


def test_trained_model_whose_file_vanished_says_how_to_restore_it(
    registry: object, tmp_path: Path
) -> None:
    src = tmp_path / "m.pt"
    src.write_bytes(b"weights")
    weights.register_trained("mine", "deepmask", src, {}).unlink()
    with pytest.raises(
        weights.WeightsNotInstalled, match="models import mine FILE --kind deepmask"
    ):
        weights.resolve_weights("mine")


def test_damaged_sidecar_is_ignored(registry: object) -> None:
    models_dir().mkdir(parents=True)
    (models_dir() / "broken.json").write_text("{not json")
    assert [s.name for s in weights.list_models()] == ["tiny", "loose"]


# --- through the real CLI ---------------------------------------------------------------------


def test_cli_list_path_import_remove(
    registry: object, tiny_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^tiny\s+maskrcnn\s+.*not installed", out, re.M)
    assert str(models_dir()) in out

    assert main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(models_dir())

    assert main(["models", "path", "tiny"]) == 2
    assert "scubasteve models import tiny FILE" in capsys.readouterr().err

    assert main(["models", "import", "tiny", str(tiny_file)]) == 0
    assert "installed tiny" in capsys.readouterr().out
    assert main(["models", "path", "tiny"]) == 0
    assert capsys.readouterr().out.strip() == str(models_dir() / "tiny.h5")
    assert main(["models", "list", "--long"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^tiny\s+maskrcnn\s+.*installed", out, re.M) and SHA in out

    assert main(["models", "remove", "tiny"]) == 0
    assert "deleted" in capsys.readouterr().out
    assert weights.installed_path("tiny") is None


def test_cli_import_of_a_wrong_file_fails_cleanly(
    registry: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    assert main(["models", "import", "tiny", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.h5" in err and "nothing was installed" in err and "Traceback" not in err
