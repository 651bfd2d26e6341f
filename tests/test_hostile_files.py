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
    old = tmp_path / ".a.json.k3j_9xzq.tmp"
    fresh = tmp_path / ".b.json.abcdefgh.tmp"  # another process may be writing it right now
    other = tmp_path / ".notes.tmp"
    for f in (old, fresh, other):
        f.write_text("partial")
    past = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    atomic_write_text(tmp_path / "c.json", "{}")
    assert not old.exists() and fresh.exists() and other.exists()


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
