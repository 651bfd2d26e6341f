"""The TensorFlow thread and TensorFlow's coexistence with PyTorch in one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from scubasteve.inference.maskrcnn.tf_runtime import TensorFlowThread

REPO = Path(__file__).resolve().parents[1]


def test_tensorflow_thread_runs_everything_on_one_thread_in_order() -> None:
    worker = TensorFlowThread(name="test-tf")
    try:
        seen: list[tuple[int, int]] = []
        futures = [
            worker.submit(lambda i=i: seen.append((i, threading.get_ident()))) for i in range(20)
        ]
        for f in futures:
            f.result(timeout=10)
        assert [i for i, _ in seen] == list(range(20))
        assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()
    finally:
        worker.shutdown()


def test_calls_from_the_thread_itself_run_inline_instead_of_deadlocking() -> None:
    worker = TensorFlowThread(name="test-tf")
    try:
        outer = worker.call(lambda: worker.call(lambda: threading.get_ident()))
        assert outer == worker.call(threading.get_ident)
    finally:
        worker.shutdown()


def test_errors_reach_the_caller_through_the_future() -> None:
    worker = TensorFlowThread(name="test-tf")
    try:
        with pytest.raises(ZeroDivisionError):
            worker.call(lambda: 1 / 0)
    finally:
        worker.shutdown()


@pytest.mark.slow
def test_pytorch_optimizer_after_tensorflow_does_not_crash_the_process() -> None:
    # Triton (loaded lazily by PyTorch) crashes when loaded after TensorFlow; a subprocess keeps a
    # crash from taking pytest down with it.
    code = textwrap.dedent(
        """
        from scubasteve.inference.maskrcnn.tf_runtime import import_tensorflow
        tf = import_tensorflow()
        assert not tf.executing_eagerly()
        import torch
        net = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        net(torch.randn(2, 3)).sum().backward()
        opt.step()
        print("survived")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_USE_LEGACY_KERAS", None)  # import_tensorflow must set it by itself
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "survived" in done.stdout


def test_pixellib_modules_import_without_tensorflow_or_torch() -> None:
    modules = [
        "scubasteve.inference.maskrcnn.segmenter",
        "scubasteve.inference.preannotation",
        "scubasteve.cli.annotate",
        "scubasteve.inference.maskrcnn.refine",
        "scubasteve.training.maskrcnn.run",
        "scubasteve.cli.train",
        "scubasteve.evaluation.mask_ap",
        "scubasteve.bench.pixellib_refine",
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "heavy = [m for m in ('tensorflow', 'tf_keras', 'pixellib', 'torch', 'h5py') if m in sys.modules]\n"
        + "print(heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
