"""DeepMask training: sampling, overfitting three images, checkpoints, resume, registration, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.deepmask_data import shapes_docs, shapes_image, write_labelme_project

from scubasteve.core.cancel import Cancelled, CancelToken
from scubasteve.core.errors import InputError
from scubasteve.evaluation.proposal_quality import ProposalQuality
from scubasteve.inference.deepmask import load_proposer
from scubasteve.inference.deepmask import network as N
from scubasteve.inference.deepmask.checkpoint import save_weights
from scubasteve.inference.deepmask.config import tiny_config
from scubasteve.training.deepmask.data import (
    MIN_AREA,
    SampleSource,
    check_dataset,
    collect_instances,
    split_by_image,
)
from scubasteve.training.deepmask.trainer import Trainer, TrainOptions
from scubasteve.training.progress import TrainProgress
from scubasteve.weights import WeightsNotInstalled

REPO = Path(__file__).resolve().parents[1]
MICRO = dict(trunk_width=8)


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads crawl when the shared CPU is busy
    yield
    torch.set_num_threads(old)


def test_positive_sample_centres_the_object_at_the_published_size():
    docs = shapes_docs(3)
    insts, _ = collect_instances(docs)
    cfg = tiny_config()
    src = SampleSource(docs, insts, cfg)
    crop, label = src.positive(insts[0], None)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert label.shape == (56, 56) and label.dtype == bool
    ys, xs = np.nonzero(label)
    # Longest side = object_fraction of the window (in label pixels), centred.
    side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert side == pytest.approx(56 * cfg.object_fraction, abs=2)
    assert (xs.min() + xs.max() + 1) / 2 == pytest.approx(28, abs=1.5)
    assert (ys.min() + ys.max() + 1) / 2 == pytest.approx(28, abs=1.5)
    # The label sits on the object's colour in the crop (context of 16 px, window 80 -> label 56).
    k = 56 / 80
    colour = np.array([220, 60, 60])
    on = crop[16 + (ys / k).astype(int), 16 + (xs / k).astype(int)]
    assert np.mean(np.all(np.abs(on.astype(int) - colour) < 40, axis=1)) > 0.9


def test_negative_samples_have_no_object_centred_at_their_scale():
    docs = shapes_docs(4)
    insts, _ = collect_instances(docs)
    cfg = tiny_config()
    src = SampleSource(docs, insts, cfg)
    rng = np.random.default_rng(0)
    inputs, labels = src.score_batch(rng, 16)
    assert inputs.shape == (16, 112, 112, 3) and sorted(labels.tolist()) == [0.0] * 8 + [1.0] * 8
    # The object's colour does not fill the middle of any negative crop.
    for crop, lab in zip(inputs, labels, strict=True):
        if lab == 0:
            centre = crop[48:64, 48:64].reshape(-1, 3).astype(int)
            assert not (np.abs(centre - centre.mean(0)).max() < 5 and centre.mean() > 100)


def _train_until(trainer: Trainer, target: float, max_epochs: int) -> list:
    history = []
    for _ in range(max_epochs):
        history.append(trainer.run_epoch())
        if history[-1].val_iou > target:
            break
    return history


@pytest.mark.slow
def test_training_overfits_three_images(tmp_path):
    docs = shapes_docs(3)
    insts, _ = collect_instances(docs)
    cfg = tiny_config(**MICRO)
    torch.manual_seed(0)
    # Published sampling, with the jitter narrowed (+-4 px, +-1/16 octave) so that a few hundred
    # samples suffice; the full jitter is exercised by the other tests.
    src = SampleSource(docs, insts, cfg, shift_px=4, scale_jitter=1 / 16)
    opts = TrainOptions(
        epochs=30, batch_size=8, batches_per_epoch=8, lr=1e-2, lr_drops=(), score_every=4
    )
    trainer = Trainer(
        N.build_network(cfg), cfg, src, src, opts, tmp_path
    )  # validate on the train set
    history = _train_until(trainer, 0.85, 30)
    assert history[-1].mask_loss < 0.5 * history[0].mask_loss
    assert history[-1].val_iou > 0.8, [round(h.val_iou, 3) for h in history]


def _make_trainer(tmp_path: Path, epochs: int = 3, seed: int = 0) -> Trainer:
    docs = shapes_docs(4)
    insts, _ = collect_instances(docs)
    cfg = tiny_config(**MICRO)
    torch.manual_seed(seed)
    net = N.build_network(cfg)
    src = SampleSource(docs, insts, cfg)
    opts = TrainOptions(epochs=epochs, batch_size=4, batches_per_epoch=3, lr=5e-3, seed=seed)
    return Trainer(net, cfg, src, SampleSource(docs, insts[:2], cfg), opts, tmp_path)


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    straight = _make_trainer(tmp_path / "a")
    straight.fit()

    cancel = CancelToken()
    first = _make_trainer(tmp_path / "b")
    first.progress = lambda p: cancel.cancel() if (p.epoch, p.step) == (2, 1) else None
    with pytest.raises(Cancelled):
        first.fit(cancel=cancel)  # epoch 1 has 3 steps; stopped after the 1st step of epoch 2
    assert first.epoch == 1
    resumed = _make_trainer(tmp_path / "b", seed=99)  # a different seed must not matter
    resumed.load_state()
    assert resumed.epoch == 1
    resumed.fit()
    assert [h.epoch for h in resumed.history] == [1, 2, 3]
    for key, value in straight.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def test_cancel_mid_epoch_stops_before_the_next_batch_and_leaves_whole_checkpoints(tmp_path):
    cancel, seen = CancelToken(), []

    def progress(p: TrainProgress) -> None:
        seen.append((p.epoch, p.step, p.steps))
        if (p.epoch, p.step) == (2, 2):
            cancel.cancel()

    trainer = _make_trainer(tmp_path, epochs=3)
    trainer.progress = progress
    with pytest.raises(Cancelled):
        trainer.fit(cancel=cancel)
    # Every step was reported, from the start of each epoch; not one batch ran after the cancel.
    assert seen == [(1, 0, 3), (1, 1, 3), (1, 2, 3), (1, 3, 3), (2, 0, 3), (2, 1, 3), (2, 2, 3)]
    assert trainer.epoch == 1 and len(trainer.history) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.pt",
        "last.pt",
        "log.jsonl",
        "state.pt",
    ]
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1
    resumed = _make_trainer(tmp_path, epochs=3)
    resumed.load_state()  # what the cancelled run left is whole and loadable
    assert resumed.epoch == 1


def test_half_written_or_damaged_state_is_never_loaded(tmp_path):
    trainer = _make_trainer(tmp_path, epochs=1)
    trainer.fit()
    state = tmp_path / "state.pt"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or damaged"):
        _make_trainer(tmp_path).load_state()
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    payload["state_dict"]["neck.0.weight"].mul_(2.0)
    payload["format"] = "scubasteve-deepmask-training"
    payload["format_version"] = 1
    torch.save(payload, state)
    with pytest.raises(InputError, match="checksum"):
        _make_trainer(tmp_path).load_state()


def test_sharpmask_training_changes_only_the_refinement(tmp_path):
    docs = shapes_docs(3)
    insts, _ = collect_instances(docs)
    cfg = tiny_config(sharpmask=True, **MICRO)
    net = N.build_network(cfg)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    src = SampleSource(docs, insts, cfg, label_size=cfg.window)
    opts = TrainOptions(epochs=2, batch_size=4, batches_per_epoch=3, lr=5e-3, refine=True)
    Trainer(net, cfg, src, src, opts, tmp_path).fit()
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("refine.") for k in changed)


# --- bad input ----------------------------------------------------------------------------------


def test_empty_dataset_is_refused_clearly():
    docs = shapes_docs(2)
    for d in docs:
        d.annotations.clear()
    insts, summary = collect_instances(docs)
    with pytest.raises(InputError, match="no annotations"):
        check_dataset(insts, summary, "project", need_images=2)


def test_one_image_dataset_is_refused_clearly():
    docs = shapes_docs(1)
    insts, summary = collect_instances(docs)
    with pytest.raises(InputError, match="at least 2"):
        check_dataset(insts, summary, "project", need_images=2)
    with pytest.raises(InputError, match="at least 2 images"):
        split_by_image(1, 0.2)


def test_masks_below_the_minimum_area_are_refused_clearly():
    from scubasteve.core.annotation import Annotation

    docs = shapes_docs(3)
    for d in docs:
        tiny = np.zeros((d.height, d.width), bool)
        tiny[5:10, 5:10] = True  # 25 px
        d.annotations[:] = [Annotation.from_mask("speck", tiny)]
    insts, summary = collect_instances(docs)
    assert summary.too_small == 3
    with pytest.raises(InputError, match=f"below {MIN_AREA} px"):
        check_dataset(insts, summary, "project")


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scubasteve", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_cli_reports_an_unannotated_folder_without_a_traceback(tmp_path):
    folder = write_labelme_project(tmp_path / "p", 3, annotate=False)
    out = _cli(
        "train", "deepmask", "--labelme", str(folder), "--arch", "tiny", cwd=tmp_path, env=_env()
    )
    assert out.returncode == 2
    assert (
        "error" in out.stderr
        and "no annotated images" in out.stderr
        and "Traceback" not in out.stderr
    )


@pytest.mark.slow
def test_killed_cli_run_resumes_and_installs_a_loadable_model(tmp_path):
    folder = write_labelme_project(tmp_path / "p", 5)
    run = tmp_path / "run"
    base = ["train", "deepmask", "--labelme", str(folder), "--arch", "tiny", "--batch-size", "4"]
    base += ["--batches-per-epoch", "3", "--out", str(run), "--name", "shapes", "--threads", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scubasteve", *base, "--epochs", "200"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (run / "state.pt").is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (run / "state.pt").is_file(), (
            proc.stderr.read() if proc.poll() is not None else "no checkpoint"
        )
        time.sleep(1.0)  # die somewhere in a later epoch, perhaps while writing a checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    state = torch.load(run / "state.pt", weights_only=True)
    done = int(state["epoch"])
    assert done >= 1
    out = _cli(*base, "--epochs", str(done + 1), "--resume", cwd=tmp_path, env=_env())
    assert out.returncode == 0, out.stderr
    assert f"epoch {done + 1}:" in out.stdout and "epoch 1:" not in out.stdout
    assert "installed as 'shapes'" in out.stdout
    # The installed model carries its comparison with the classic engine on the validation images.
    assert "| trained |" in out.stdout and "| classic |" in out.stdout
    from scubasteve.core.paths import models_dir

    sidecars = [json.loads(p.read_text()) for p in models_dir().glob("*.json")]
    heldout = next(d["meta"]["heldout"] for d in sidecars if d.get("name") == "shapes")
    assert heldout["objects"] >= 1 and {"top1", "best", "classic_top1", "classic_best"} <= set(
        heldout
    )
    # Fresh run without --resume refuses to overwrite it.
    again = _cli(*base, "--epochs", "1", cwd=tmp_path, env=_env())
    assert again.returncode == 2 and "--resume" in again.stderr


def test_trained_model_is_loaded_by_name(tmp_path):
    from scubasteve.inference.deepmask.weights import register

    cfg = tiny_config()
    path = save_weights(tmp_path / "w.pt", N.build_network(cfg).state_dict(), cfg, {})
    register("mine", "deepmask", path, {"note": "test"})
    eng = load_proposer("mine", device="cpu")
    assert eng.config == cfg
    eng.set_image(np.zeros((50, 60, 3), np.uint8))
    assert eng.propose(__import__("scubasteve.core.geometry", fromlist=["Box"]).Box(5, 5, 40, 40))


def test_missing_weights_raise_weights_not_installed():
    with pytest.raises(WeightsNotInstalled):
        load_proposer(None, device="cpu")


@pytest.mark.slow
def test_learning_from_a_project_reports_held_out_quality_before_and_after(tmp_path, monkeypatch):
    from scubasteve.training.deepmask import learn
    from scubasteve.training.deepmask.learn import learn_from_project

    monkeypatch.setattr(learn, "MIN_TRAIN_OBJECTS", 1)  # a tiny project: the flow, not the gain
    folder = write_labelme_project(tmp_path / "project", 6)
    cfg = tiny_config(**MICRO)
    torch.manual_seed(0)
    init = save_weights(tmp_path / "start.pt", N.build_network(cfg).state_dict(), cfg, {})
    report = learn_from_project(
        folder, init=init, name="proj", epochs=2, holdout=0.34, batch_size=4, batches_per_epoch=3
    )
    assert report.holdout_images == 2 and report.train_images == 4
    assert report.before.objects == report.after.objects == 2  # one shape per image
    assert all(0.0 <= v <= 1.0 for v in report.after.best + report.before.best)
    table = report.table()
    assert "before (start.pt)" in table and "after (proj)" in table
    assert report.classic is not None and report.classic.objects == report.after.objects
    assert re.search(r"^\| classic engine +\| +2 \|", table, re.M)
    gained = report.helped()
    assert (report.installed is not None) == gained
    assert ("installed as 'proj'" in report.verdict()) == gained
    assert (report.run_dir / "last.pt").is_file()


def test_cancelled_learning_from_a_project_stops_in_training_and_installs_nothing(
    tmp_path, monkeypatch
):
    from scubasteve.core.paths import models_dir
    from scubasteve.training.deepmask import learn
    from scubasteve.training.deepmask.learn import learn_from_project

    monkeypatch.setattr(learn, "MIN_TRAIN_OBJECTS", 1)

    folder = write_labelme_project(tmp_path / "project", 6)
    cfg = tiny_config(**MICRO)
    init = save_weights(tmp_path / "start.pt", N.build_network(cfg).state_dict(), cfg, {})
    cancel, steps = CancelToken(), []

    def progress(p: TrainProgress) -> None:
        steps.append(p.step)
        if p.step == 1:
            cancel.cancel()

    before = set(models_dir().glob("*")) if models_dir().is_dir() else set()
    with pytest.raises(Cancelled):
        learn_from_project(
            folder, init=init, name="proj", epochs=2, holdout=0.34, batch_size=4,
            batches_per_epoch=50, progress=progress, cancel=cancel,
        )  # fmt: skip
    assert steps == [0, 1]  # stopped after one batch of fifty
    after = set(models_dir().glob("*")) if models_dir().is_dir() else set()
    assert after == before, "a cancelled run installs nothing"


def test_too_little_to_learn_from_is_said_plainly_and_nothing_is_trained(tmp_path):
    from scubasteve.core.paths import data_dir
    from scubasteve.training.deepmask.learn import MIN_TRAIN_OBJECTS, learn_from_project

    folder = write_labelme_project(tmp_path / "project", 6)  # one object per image
    with pytest.raises(InputError, match=r"too little to learn from: 4 accepted objects") as err:
        learn_from_project(folder, name="proj", epochs=1, holdout=0.34)
    assert f"at least {MIN_TRAIN_OBJECTS}" in str(err.value) and str(folder) in str(err.value)
    assert not list((data_dir() / "runs").glob("proj-*"))  # nothing trained


def _quality(top1: float, best: float, n: int = 10) -> ProposalQuality:
    return ProposalQuality("m", [top1] * n, [best] * n)


@pytest.mark.parametrize(
    ("before", "after", "classic", "installs"),
    [
        (
            (0.30, 0.40),
            (0.35, 0.45),
            (0.90, 0.95),
            False,
        ),  # better than the start, worse than classic
        ((0.80, 0.85), (0.82, 0.86), (0.70, 0.80), True),  # better than both
        ((0.80, 0.85), (0.79, 0.90), (0.70, 0.80), False),  # top-1 fell
        ((0.80, 0.85), (0.81, 0.84), (0.70, 0.80), False),  # best of ten fell
    ],
)
def test_a_model_worse_than_what_the_user_has_is_never_installed(
    tmp_path, before, after, classic, installs
):
    from scubasteve.training.deepmask.learn import LearnReport

    report = LearnReport(
        "start",
        _quality(*before),
        _quality(*after),
        4,
        2,
        tmp_path,
        None,
        "proj",
        _quality(*classic),
    )
    assert report.helped() == installs
    if not installs and after[0] < classic[0]:
        assert "worse than the classic engine" in report.verdict()


def test_sharpmask_command_trains_on_a_named_deepmask_and_the_engine_refines(tmp_path):
    from scubasteve.cli import main
    from scubasteve.core.geometry import Box
    from scubasteve.inference.deepmask.weights import register

    folder = write_labelme_project(tmp_path / "p", 4)
    cfg = tiny_config(**MICRO)
    path = save_weights(tmp_path / "dm.pt", N.build_network(cfg).state_dict(), cfg, {})
    register("dm", "deepmask", path, {})
    args = ["train", "sharpmask", "--labelme", str(folder), "--deepmask", "dm", "--epochs", "1"]
    args += [
        "--batch-size",
        "2",
        "--batches-per-epoch",
        "2",
        "--out",
        str(tmp_path / "run"),
        "--name",
        "sm",
    ]
    assert main(args) == 0
    eng = load_proposer("sm", device="cpu")
    assert eng.config.sharpmask and eng.refine
    eng.set_image(np.zeros((60, 80, 3), np.uint8))
    from scubasteve.inference.deepmask.features import run_windows

    level = next(iter(eng._levels.values()))
    logits, _ = run_windows(eng.net, eng.config, [(level, 0, 0)], True)
    assert logits.shape == (1, cfg.window, cfg.window)  # refined masks cover the whole window
    props = eng.propose(Box(10, 10, 50, 50))  # a barely trained net may find nothing
    assert all(p.source.startswith("deepmask:sharp") for p in props)


def test_engine_registry_serves_trained_weights_alone_and_in_the_ensemble(tmp_path):
    from scubasteve.core.geometry import Box
    from scubasteve.inference.deepmask.weights import register
    from scubasteve.inference.engines import create_proposer, engine_status

    cfg = tiny_config(**MICRO)
    path = save_weights(tmp_path / "w.pt", N.build_network(cfg).state_dict(), cfg, {})
    register("mine", "deepmask", path, {})
    assert next(s for s in engine_status("mine") if s.name == "deepmask").available
    alone = create_proposer("deepmask", device="cpu", weights="mine")
    assert alone.name == "deepmask" and alone.primary.config == cfg  # behind ClassicFallback
    both = create_proposer("ensemble", device="cpu", weights="mine")
    assert [e.name for e in both.engines] == ["classic", "deepmask"]
    image, _ = shapes_image(0)
    both.set_image(image)
    props = both.propose(Box(40, 30, 120, 100), k=10)
    assert 1 <= len(props) <= 10 and {p.engine for p in props} <= {"classic", "deepmask"}


@pytest.mark.parametrize(("best", "expect"), [(0.50, ["classic"]), (0.70, ["classic", "deepmask"])])
def test_ensemble_leaves_out_a_trained_model_that_measured_below_the_classic_engine(
    tmp_path, best, expect
):
    from scubasteve.inference.deepmask.weights import register
    from scubasteve.inference.engines import create_proposer, engine_status

    cfg = tiny_config(**MICRO)
    path = save_weights(tmp_path / "w.pt", N.build_network(cfg).state_dict(), cfg, {})
    record = {"objects": 50, "top1": 0.45, "best": best, "classic_top1": 0.6, "classic_best": 0.7}
    register("measured", "deepmask", path, {"heldout": record})
    ensemble = create_proposer("ensemble", device="cpu", weights="measured")
    assert [e.name for e in ensemble.engines] == expect
    status = next(s for s in engine_status("measured") if s.name == "ensemble")
    if expect == ["classic"]:
        assert "0.500" in ensemble.note and "classic engine serves alone" in status.reason
    else:
        fusion = ensemble.primary  # RankFusion behind ClassicFallback
        assert fusion.weights == [1.0, pytest.approx(0.75)] and "trusted 0.75" in ensemble.note
