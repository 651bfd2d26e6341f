"""Hostile files outside annotations (issue 16): stale temporaries, a plain zip as a checkpoint,
a truncated image in a benchmark run."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scubasteve import weights
from scubasteve.bench.proposals import evaluate_proposer
from scubasteve.bench.samples import SampleImage, make_sample
from scubasteve.core.atomic import STALE_TEMPORARY_SECONDS, atomic_write_text
from scubasteve.core.errors import InputError
from scubasteve.core.paths import models_dir
from scubasteve.io.images import load_image


def test_stale_temporaries_left_by_a_kill_are_removed_on_the_next_write(tmp_path: Path) -> None:
    old = tmp_path / ".a.json.k3j_9xzq.scubasteve.tmp"
    fresh = tmp_path / ".b.json.abcdefgh.scubasteve.tmp"  # another process may be writing it now
    other = tmp_path / ".notes.tmp"
    users = tmp_path / ".notes.abcdefgh.tmp"  # the user's own: the pattern we used to delete
    for f in (old, fresh, other, users):
        f.write_text("partial")
    past = time.time() - STALE_TEMPORARY_SECONDS - 60
    for f in (old, other, users):
        os.utime(f, (past, past))
    atomic_write_text(tmp_path / "c.json", "{}")
    assert not old.exists() and fresh.exists() and other.exists() and users.exists()


def test_a_kill_while_writing_leaves_a_temporary_the_clean_up_recognises(tmp_path: Path) -> None:
    from scubasteve.core.atomic import _STALE_NAME, temp_file_beside

    for name in ("a.json", "x" * 255):
        handle, tmp = temp_file_beside(tmp_path, name)
        handle.close()
        assert _STALE_NAME.match(tmp.name) and len(os.fsencode(tmp.name)) <= 255


def test_a_plain_zip_is_not_installed_as_a_pytorch_checkpoint(tmp_path: Path) -> None:
    plain = tmp_path / "model.pth"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("readme.txt", "not weights")
    with pytest.raises(InputError, match="plain zip"):
        weights.import_file("deepmask-pth", plain)
    assert not models_dir().exists() or not any(models_dir().glob("deepmask*"))
    real = tmp_path / "real.pth"
    with zipfile.ZipFile(real, "w") as z:  # the layout torch.save writes
        z.writestr("real/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("real/version", "3\n")
    assert weights.import_file("deepmask-pth", real).exists()


class _Proposer:
    name = "fake"

    def set_image(self, image: np.ndarray) -> None:
        self.image = image

    def propose(self, box, k=10, points=(), *, cancel=None, on_proposal=None):  # type: ignore[no-untyped-def]
        return []


def test_a_truncated_image_is_skipped_and_reported_not_the_end_of_the_run(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    from scubasteve.io.images import encode_png

    png = encode_png(np.zeros((8, 8, 3), np.uint8))
    good.write_bytes(png)
    bad.write_bytes(png[: len(png) // 2])
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    sample = make_sample("s", mask, 0.05)
    assert sample is not None
    sets = [SampleImage(p.name, 8, 8, (sample,), lambda p=p: load_image(p)) for p in (bad, good)]
    report = evaluate_proposer(_Proposer(), sets)
    assert report.count == 1 and list(report.skipped_images) == ["bad.png"]
    assert "bad.png" in report.skipped_images["bad.png"]


# --- issue 21 -----------------------------------------------------------------------------------


def _labelme_folder(folder: Path, stems: tuple[str, ...] = ("0", "1")) -> Path:
    import json

    from scubasteve.io.images import encode_png

    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        (folder / f"{stem}.png").write_bytes(encode_png(np.zeros((10, 20, 3), np.uint8)))
        shape = {"label": "a", "points": [[1, 1], [8, 1], [8, 8]], "shape_type": "polygon"}
        data = {"shapes": [shape], "imagePath": f"{stem}.png", "imageData": None}
        (folder / f"{stem}.json").write_text(
            json.dumps({**data, "imageHeight": 10, "imageWidth": 20})
        )
    return folder


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_json_is_refused_not_waited_on(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = _labelme_folder(tmp_path / "in")
    os.mkfifo(folder / "pipe.json")
    done = subprocess.run(
        [sys.executable, "-m", "scubasteve", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,  # it used to wait forever
    )
    assert done.returncode == 1
    assert "pipe.json: error: is a named pipe (FIFO), not a regular file" in done.stderr
    assert "2 annotation(s)" in done.stdout


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_link_to_a_device_is_refused_not_read_until_memory_runs_out(tmp_path: Path) -> None:
    from scubasteve.io.dataset import validate_labelme_folder

    folder = _labelme_folder(tmp_path / "in")
    (folder / "zero.json").symlink_to("/dev/zero")
    (folder / "zero.png").symlink_to("/dev/zero")
    report = validate_labelme_folder(folder)
    assert report.annotations == 2
    assert [p.path.name for p in report.errors] == ["zero.json"]
    assert "a device, not a regular file" in report.errors[0].message
    with pytest.raises(InputError, match="a device"):
        load_image(folder / "zero.png")


def test_a_json_file_above_the_size_bound_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scubasteve.io import json_files

    monkeypatch.setattr(json_files, "MAX_JSON_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text("[" + "1," * 100 + "1]")
    with pytest.raises(InputError, match="at most 100 are read"):
        json_files.read_json(path)


def test_json_depth_is_exact_across_its_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import random

    from scubasteve.io import json_files

    def depth(value: object) -> int:
        if isinstance(value, (list, dict)):
            items = value.values() if isinstance(value, dict) else value
            return 1 + max((depth(v) for v in items), default=0)
        return 0

    rng = random.Random(0)
    leaves = ["a\\", '"[{', "\\\\", "x]}", 1, None, "é[", '\\"]', "\\" * 7]

    def make(level: int = 0) -> object:
        roll = rng.random()
        if level > 6 or roll < 0.3:
            return rng.choice(leaves)
        if roll < 0.65:
            return [make(level + 1) for _ in range(rng.randint(0, 4))]
        return {f"{rng.choice(leaves)}{i}": make(level + 1) for i in range(rng.randint(0, 4))}

    for block in (3, 7, 64):  # small blocks carry strings, escapes and depth across every edge
        monkeypatch.setattr(json_files, "_DEPTH_BLOCK", block)
        for _ in range(300):
            value = make()
            text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
            assert (
                json_files.json_depth(text) == json_files.json_depth(text.encode()) == depth(value)
            )


def test_json_depth_of_a_long_string_costs_no_memory_per_character() -> None:
    import tracemalloc

    from scubasteve.io.json_files import json_depth

    text = ('{"imageData": "' + "A" * 20_000_000 + '", "shapes": [[1]]}').encode()
    tracemalloc.start()
    try:
        assert json_depth(text) == 3
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20  # was about 120 bytes per character: 2.4 GB here


def test_convert_refuses_to_write_the_coco_file_over_one_of_its_inputs(tmp_path: Path) -> None:
    from scubasteve.cli import main

    folder = _labelme_folder(tmp_path / "in")
    before = (folder / "0.json").read_bytes()
    assert main(["convert", str(folder), str(folder / "0"), "--overwrite"]) == 2
    assert (folder / "0.json").read_bytes() == before


def test_coco_to_labelme_never_writes_over_the_coco_file_it_reads(tmp_path: Path) -> None:
    import json

    from scubasteve.io.dataset import coco_to_labelme

    imgs = [{"id": 1, "file_name": "c.png", "width": 20, "height": 10}]
    ann = {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 8, 1, 8, 8]]}
    coco = {"images": imgs, "annotations": [ann], "categories": [{"id": 1, "name": "a"}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(coco))
    report = coco_to_labelme(path, tmp_path, overwrite=True)
    assert json.loads(path.read_text()) == coco
    assert not report.written and "is the COCO file being converted" in report.errors[0].message


def test_a_write_that_must_not_replace_never_does_even_when_a_file_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scubasteve.core import atomic as core_atomic
    from scubasteve.core.atomic import AlreadyExists

    target = tmp_path / "a.json"
    real_temp = core_atomic.temp_file_beside

    def racing(folder: Path, name: str):  # type: ignore[no-untyped-def]
        target.write_text("the other run's file")  # appears while this one is being written
        return real_temp(folder, name)

    monkeypatch.setattr(core_atomic, "temp_file_beside", racing)
    with pytest.raises(AlreadyExists):
        atomic_write_text(target, "ours", replace=False)
    assert target.read_text() == "the other run's file"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary left behind


def test_two_conversions_into_one_folder_never_replace_each_others_files(tmp_path: Path) -> None:
    import json
    import threading

    from scubasteve.io.dataset import coco_to_labelme

    imgs = [{"id": i, "file_name": f"{i}.png", "width": 20, "height": 10} for i in range(1, 41)]
    anns = [
        {"id": i, "image_id": i, "category_id": 1, "segmentation": [[1, 1, 8, 1, 8, 8]]}
        for i in range(1, 41)
    ]
    sources = []
    for label in ("first", "second"):
        coco = {"images": imgs, "annotations": anns, "categories": [{"id": 1, "name": label}]}
        sources.append(tmp_path / f"{label}.json")
        sources[-1].write_text(json.dumps(coco))
    out = tmp_path / "out"
    reports: dict[str, object] = {}
    threads = [
        threading.Thread(target=lambda s=s: reports.update({s.stem: coco_to_labelme(s, out)}))
        for s in sources
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    written = [p for r in reports.values() for p in r.written]  # type: ignore[attr-defined]
    assert len(written) == len(set(written)) == 40  # each file written once, by one run
    for label, report in reports.items():
        for path in report.written:  # type: ignore[attr-defined]
            assert json.loads(path.read_text())["shapes"][0]["label"] == label  # not replaced
    assert sum(len(r.skipped) for r in reports.values()) == 40  # type: ignore[attr-defined]


# --- item 19: `models import --kind` checks the file against the kind ------------------------------


def _torch_zip(path: Path, pickle_bytes: bytes = b"\x80\x02}q\x00.") -> Path:
    with zipfile.ZipFile(path, "w") as z:  # the layout torch.save writes
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")
    return path


@pytest.mark.parametrize(
    ("kind", "name", "content", "reason"),
    [
        ("deepmask", "notes.pt", b"just some text\n", "not a PyTorch checkpoint"),
        ("deepmask", "page.pth", b"<!DOCTYPE html><html>404</html>", "HTML"),
        ("deepmask", "junk.pth", b"PK\x03\x04" + b"junk" * 100, "damaged zip"),
        ("deepmask", "junk.pt", "zip:junk", "not a pickle"),
        ("deepmask", "plain.pt", "zip:plain", "plain zip"),
        ("maskrcnn", "weights.pt", "zip:torch", "an .h5 file"),
        ("maskrcnn", "fake.h5", b"not hdf5 at all", "not an HDF5"),
        ("resnet", "fake.t7", b"hello", "not a Torch7"),
        ("sam2", "notes.pt", b"text", "not a PyTorch checkpoint"),
    ],
)
def test_import_with_a_kind_refuses_a_file_that_is_not_that_kind(
    tmp_path: Path, kind: str, name: str, content: object, reason: str
) -> None:
    from scubasteve.cli import main

    path = tmp_path / name
    if content == "zip:junk":
        _torch_zip(path, b"junk, not a pickle")
    elif content == "zip:plain":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "not weights")
    elif content == "zip:torch":
        _torch_zip(path)
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=reason):
        weights.import_file("mine", path, kind=kind)
    if kind != "sam2":  # `models import --kind` offers the kinds one trains elsewhere
        assert main(["models", "import", "mine", str(path), "--kind", kind]) == 2
    assert not models_dir().exists() or not any(models_dir().glob("mine*"))


def test_import_with_a_kind_installs_a_file_of_that_kind(tmp_path: Path) -> None:
    import torch

    checkpoint = tmp_path / "trained.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, checkpoint)
    assert weights.import_file("mine", checkpoint, kind="deepmask").exists()
    legacy = tmp_path / "old.pth.tar"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    assert weights.import_file("old", legacy, kind="deepmask").exists()
    t7 = tmp_path / "trunk.t7"
    t7.write_bytes((3).to_bytes(4, "little") + (1).to_bytes(4, "little") + bytes(4))  # {} table
    assert weights.import_file("trunk", t7, kind="resnet").exists()


def test_a_named_import_refuses_a_zip_with_junk_inside(tmp_path: Path) -> None:
    junk = _torch_zip(tmp_path / "DeepMask.pth.tar", b"\x00junk")
    with pytest.raises(InputError, match="not a pickle"):
        weights.import_file("deepmask-pth", junk)
    damaged = tmp_path / "damaged.pth.tar"
    damaged.write_bytes(b"PK\x03\x04" + os.urandom(4000))
    with pytest.raises(InputError, match="damaged zip"):
        weights.import_file("deepmask-pth", damaged)


def test_every_model_kind_has_a_content_check() -> None:
    # A new kind (say "isnet") needs its entry in CONTENT_CHECKS before files of it can be
    # imported: see the docstring of scubasteve.weights.install.
    from scubasteve.weights.install import CONTENT_CHECKS
    from scubasteve.weights.registry import KINDS

    assert set(KINDS) <= set(CONTENT_CHECKS)
