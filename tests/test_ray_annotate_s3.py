"""`annotate s3://BUCKET/PREFIX --ray --out DIR`: images in a local S3 server, read by Ray Data.

The server is moto's (`moto[server]`, a dev dependency) on 127.0.0.1 and a free port, started by
the test; pyarrow finds it through `AWS_ENDPOINT_URL`, which the test also gives Ray's workers.
Each Ray test has a hard time limit (pytest-timeout), so that a stuck Ray fails instead of hanging.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.maskrcnn_h5 import random_maskrcnn_h5
from test_ray_annotate import RAY_LIMIT_S, REPO, _annotate, _fake_model, _images, _normalised

from scubasteve.cli import main

BUCKET = "photos"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> object:
    """A moto S3 server with an empty bucket; its endpoint and test credentials in os.environ."""
    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("pyarrow.fs")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    yield client, env
    patch.undo()
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def ray_s3(s3):
    ray = pytest.importorskip("ray")
    _, env = s3
    options = {
        "num_cpus": 2,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": str(REPO), **env}},
    }
    try:
        ray.init(**options)
    except Exception:  # Ray waits a fixed 30 s for its node to register; a busy CI may need more
        ray.shutdown()
        ray.init(**options)
    yield ray
    ray.shutdown()


def _upload(client, folder: Path, prefix: str) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file():
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.name}", Body=path.read_bytes())


@pytest.mark.slow
@pytest.mark.timeout(RAY_LIMIT_S)
def test_images_in_s3_get_the_local_commands_files_in_the_out_folder(
    s3, ray_s3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = s3
    local = _images(tmp_path / "local", 3)
    (local / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (local / "notes.txt").write_text("not an image")
    _upload(client, local, "set1")
    client.put_object(
        Bucket=BUCKET, Key="set1/sub/img9.png", Body=(local / "img0.png").read_bytes()
    )
    # The reference: the local command on a copy of the folder, files beside the images.
    model = str(random_maskrcnn_h5())
    common = ["--model", model, "--speed", "256", "--min-score", "0"]
    assert main(["annotate", str(local), *common]) == 1
    out = tmp_path / "out"
    out.mkdir()
    hand_made = {"version": "5.4.1", "flags": {}, "shapes": [], "imagePath": "img2.png"}
    hand_made |= {"imageData": None, "imageHeight": 96, "imageWidth": 128}
    (out / "img2.json").write_text(json.dumps(hand_made))
    kept = (out / "img2.json").read_bytes()
    capsys.readouterr()

    uri = f"s3://{BUCKET}/set1"
    assert _annotate(uri, out, "--ray", "--workers", "1") == 1  # the broken image fails
    printed = capsys.readouterr().out
    assert "pre-annotated 2 image(s)" in printed
    assert f"{uri}/broken.png" in printed  # named by its URI
    assert "1 with annotation files of their own" in printed
    for name in ("img0.json", "img1.json"):  # what the local command wrote beside the image
        assert _normalised(out / name) == _normalised(local / name), name
    assert (out / "img2.json").read_bytes() == kept  # a hand-made file is never touched
    assert sorted(p.name for p in out.iterdir()) == ["img0.json", "img1.json", "img2.json"]

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert _annotate(uri, out, "--ray") == 1  # the rerun tries only the broken image again
    assert "skipped 2 already pre-annotated and 1 with" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.slow
def test_a_prefix_without_images_is_refused_naming_it(
    s3, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    model = _fake_model(tmp_path)
    for uri in (f"s3://{BUCKET}/nothing-here", "s3://no-such-bucket/x"):
        assert _annotate(uri, tmp_path / "out", "--ray", model=model) == 2
        err = capsys.readouterr().err
        assert uri in err and "cannot list" in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("extra", "needed"), [(["--ray"], "--out DIR"), (["--out", "OUT"], "add --ray")]
)
def test_a_uri_needs_ray_and_a_local_out_folder(
    extra: list[str], needed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["annotate", "s3://bucket/photos", "--model", str(_fake_model(tmp_path))]
    extra = [str(tmp_path / "out") if e == "OUT" else e for e in extra]
    assert main([*args, *extra]) == 2
    assert needed in capsys.readouterr().err
