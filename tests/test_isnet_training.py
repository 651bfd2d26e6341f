"""Fine-tuning IS-Net: box crops as the engine makes them, the loop, resuming, cancelling, and a
run that measures before and after and installs only what helps (thin random networks)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from helpers.deepmask_data import shapes_docs, write_labelme_project
from helpers.isnet import thin_state, write_ours

from scubasteve import weights
from scubasteve.core.cancel import CancelToken
from scubasteve.inference.isnet.network import build_isnet
from scubasteve.training.isnet.data import BoxCrops, box_objects
from scubasteve.training.isnet.run import split_and_fine_tune, split_images
from scubasteve.training.isnet.trainer import IsnetTrainer, IsnetTrainOptions
from scubasteve.training.progress import TrainProgress

OPTIONS = IsnetTrainOptions(input_size=64, epochs=2, batch_size=4, lr=1e-3, bf16=False)


def thin_net() -> torch.nn.Module:
    net = build_isnet(16)
    net.load_state_dict(thin_state(16))
    return net


def test_a_crop_is_the_boxed_object_and_its_mask_alone():
    docs = shapes_docs(3)
    crops = BoxCrops(docs, 64, context=0.1)
    objects = box_objects(docs)
    assert len(objects) == 3
    x, y = crops.sample(objects[0])  # validation: box grown 5 %, no augmentation
    assert x.shape == (64, 64, 3) and y.shape == (64, 64)
    assert x.dtype == np.float32 and x.min() >= -0.5 and x.max() <= 0.5
    assert y.min() >= 0.0 and y.max() <= 1.0
    # box grown 5 % plus 10 % context: the object fills the middle of the crop
    rows = np.nonzero(y > 0.5)[0]
    assert 3 <= rows.min() <= 10 and 53 <= rows.max() <= 60
    again, _ = crops.sample(objects[0])
    assert np.array_equal(x, again)


def test_augmented_crops_flip_image_and_mask_together():
    docs = shapes_docs(1)
    crops = BoxCrops(docs, 64, context=0.1, grow=(0.05, 0.05))
    obj = box_objects(docs)[0]
    plain_y = crops.sample(obj)[1]
    for seed in range(12):
        y = crops.sample(obj, np.random.default_rng(seed))[1]
        if np.allclose(y, plain_y[:, ::-1]) and not np.allclose(y, plain_y):
            return  # a flipped sample: its target is the mirror of the plain one
    pytest.fail("no flipped sample in 12 draws")


def test_the_loop_learns_checkpoints_and_resumes(tmp_path):
    docs = shapes_docs(8)
    objects = box_objects(docs)
    crops = BoxCrops(docs, 64, 0.1)
    seen: list[TrainProgress] = []
    trainer = IsnetTrainer(thin_net(), crops, objects, OPTIONS, tmp_path, "cpu")
    record = trainer.train(progress=seen.append)
    assert record.epochs_done == 2 and not record.cancelled
    assert (tmp_path / "state.pt").is_file() and (tmp_path / "log.jsonl").read_text().count(
        "\n"
    ) == 2
    assert [p.step for p in seen if p.epoch == 1][:2] == [0, 1]
    assert all(np.isfinite(e.loss) for e in record.history)
    # a new trainer with more epochs continues from the saved state
    more = IsnetTrainOptions(**{**OPTIONS.__dict__, "epochs": 3})
    again = IsnetTrainer(thin_net(), crops, objects, more, tmp_path, "cpu")
    record = again.train(resume=True)
    assert record.epochs_done == 3 and [e.epoch for e in record.history] == [1, 2, 3]
    assert torch.equal(again.net.state_dict()["side1.bias"], again.net.state_dict()["side1.bias"])


def test_cancelling_stops_after_the_current_step_and_the_run_resumes(tmp_path):
    docs = shapes_docs(8)
    objects = box_objects(docs)
    crops = BoxCrops(docs, 64, 0.1)
    token = CancelToken()

    def stop_in_epoch_two(p: TrainProgress) -> None:
        if p.epoch == 2 and p.step == 1:
            token.cancel()

    trainer = IsnetTrainer(thin_net(), crops, objects, OPTIONS, tmp_path, "cpu")
    record = trainer.train(progress=stop_in_epoch_two, cancel=token)
    assert record.cancelled and record.epochs_done == 1
    record = IsnetTrainer(thin_net(), crops, objects, OPTIONS, tmp_path, "cpu").train(resume=True)
    assert record.epochs_done == 2 and not record.cancelled


def test_the_held_out_split_keeps_images_apart():
    odd = split_images(7, "odd")
    assert odd.heldout == [1, 3, 5] and odd.train == [0, 2, 4, 6]
    frac = split_images(10, "fraction", 0.2, seed=3)
    assert len(frac.heldout) == 2 and not set(frac.heldout) & set(frac.train)
    assert sorted(frac.heldout + frac.train) == list(range(10))


def _install_thin_default(tmp_path) -> None:
    path = write_ours(tmp_path / "thin.pt", thin_state(16), divisor=16)
    weights.import_file("thin-isnet", path, kind="isnet")


def test_too_few_objects_is_said_plainly_and_nothing_is_trained(tmp_path):
    _install_thin_default(tmp_path)
    report = split_and_fine_tune(
        shapes_docs(6), base=None, run_dir=tmp_path / "run", name="mine", options=OPTIONS
    )
    assert "too little to learn from" in report.verdict and report.record is None
    assert not report.installed and weights.installed_path("mine") is None


@pytest.mark.slow
def test_a_run_measures_before_and_after_and_installs_only_what_helps(tmp_path):
    _install_thin_default(tmp_path)
    docs = shapes_docs(40)
    options = IsnetTrainOptions(input_size=64, epochs=3, batch_size=8, lr=2e-3, bf16=False)
    report = split_and_fine_tune(
        docs, "odd", base=None, run_dir=tmp_path / "run", name="mine", options=options
    )
    assert report.before is not None and report.after is not None
    before, after = report.before.row(), report.after.row()
    assert before["objects"] == after["objects"] == 20
    assert report.weights is not None and report.weights.is_file()
    helped = after["top1"] >= before["top1"]
    assert bool(report.installed) == helped
    assert ("helped" in report.verdict) == helped
    if helped:
        meta = weights.model_status("mine").meta
        assert meta["heldout"]["after"]["top1"] == pytest.approx(after["top1"])


@pytest.mark.slow
def test_the_command_line_trains_and_reports(tmp_path, capsys):
    from scubasteve.cli import main

    _install_thin_default(tmp_path)
    folder = write_labelme_project(tmp_path / "photos", 30)
    code = main(
        [
            "train", "isnet", "--labelme", str(folder), "--epochs", "1", "--input-size", "64",
            "--batch-size", "8", "--out", str(tmp_path / "run"), "--name", "mine",
            "--val-fraction", "0.35",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "held out" in out and "epoch 1:" in out
    assert ("helped" in out) or ("did not help" in out)


def test_the_project_learner_is_isnet_when_installed_else_deepmask(tmp_path):
    from scubasteve.core.errors import InputError
    from scubasteve.training.project import learner_for, model_name_for

    assert learner_for() == "deepmask"  # nothing installed: DeepMask, as before IS-Net existed
    path = write_ours(tmp_path / "mine.pt", thin_state(16))
    assert learner_for("auto", str(path)) == "isnet"  # a start of IS-Net's kind decides
    _install_thin_default(tmp_path)
    assert learner_for() == "isnet"
    assert learner_for("deepmask") == "deepmask"
    with pytest.raises(InputError, match="unknown learner 'sam'"):
        learner_for("sam")
    assert model_name_for(tmp_path / "My photos (2024)", "isnet") == "isnet-My-photos-2024"


@pytest.mark.slow
def test_from_project_fine_tunes_isnet_when_installed_and_reports(tmp_path, capsys):
    from scubasteve.cli import main
    from scubasteve.core.paths import data_dir

    _install_thin_default(tmp_path)
    folder = write_labelme_project(tmp_path / "photos", 30)
    args = ["train", "from-project", str(folder), "--epochs", "1", "--holdout", "0.34"]
    code = main([*args, "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "20 objects to train on, 10 held out" in out
    assert re.search(r"^\| IS-Net before +\| +10 \|", out, re.M)
    assert re.search(r"^\| default engine after +\| +10 \|", out, re.M)
    assert len(list((data_dir() / "runs").glob("isnet-photos-*"))) == 1
    installed = weights.installed_path("isnet-photos") is not None
    assert ("installed as 'isnet-photos'" in out) == installed
    assert ("did not help" in out) == (not installed)


def test_from_project_with_isnet_refuses_deepmasks_group_options(tmp_path):
    from scubasteve.cli import main

    _install_thin_default(tmp_path)
    folder = write_labelme_project(tmp_path / "photos", 3)
    assert main(["train", "from-project", str(folder), "--workers", "2"]) == 2


def test_a_small_project_holds_out_enough_to_measure_or_is_refused_before_any_work():
    from pathlib import Path

    from scubasteve.core.errors import InputError
    from scubasteve.training.isnet.learn import _holdout_that_measures

    docs = shapes_docs(30)  # one object each: a fifth held out would measure 6 objects
    assert _holdout_that_measures(docs, 0.2, 0, Path("p")) == 0.25  # 8 measured, 22 to learn from
    assert _holdout_that_measures(shapes_docs(60), 0.2, 0, Path("p")) == 0.2
    with pytest.raises(InputError, match=r"too little to learn from: 24 accepted objects in 24"):
        _holdout_that_measures(shapes_docs(24), 0.2, 0, Path("p"))


def test_the_result_blends_tuned_and_starting_weights():
    from scubasteve.core.errors import InputError
    from scubasteve.training.isnet.run import blended

    start = {"w": torch.zeros(3), "steps": torch.tensor(0)}
    tuned = {"w": torch.full((3,), 2.0), "steps": torch.tensor(7)}
    half = blended(start, tuned, 0.5)
    assert torch.equal(half["w"], torch.ones(3)) and int(half["steps"]) == 7
    assert torch.equal(blended(start, tuned, 1.0)["w"], tuned["w"])
    assert torch.equal(blended(start, tuned, 0.0)["w"], start["w"])
    with pytest.raises(InputError, match=r"blend must lie between 0 and 1, got 1\.5"):
        blended(start, tuned, 1.5)
