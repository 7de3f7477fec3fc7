"""A user's own folder: `--data DIR` trains on its prepared images and `image eval` scores against its held-out split."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image as PILImage

from tests.images.test_data import export_mnist_pngs

pytestmark = pytest.mark.slow


def test_vae_trains_on_a_folder_and_eval_uses_its_held_out_split(image_home, run_cli, tmp_path):
    folder = tmp_path / "my digits"
    export_mnist_pngs(folder, per_class=20)
    code, _, stderr = run_cli("image", "train", "vae", "--data", str(folder), "--epochs", "2", "--seed", "0", "--json")
    assert code == 0, stderr
    line = next(row for row in stderr.splitlines() if "data: folder" in row)
    assert (f"from {folder}, 160 training images (of all files: 200 kept as they were (28x28)), 40 held out; "
            f"labelled (10 classes); mean ink 0.1") in line and "(MNIST 0.131)" in line
    previews = list((image_home / "outputs" / "images").glob("vae-training-data-*.png"))
    assert len(previews) == 1
    with PILImage.open(previews[0]) as picture:
        assert picture.width == picture.height > 8 * 28  # an 8x8 grid of the prepared digits

    code, stdout, stderr = run_cli("image", "eval", "vae", "--n", "50", "--seed", "0", "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout.strip().splitlines()[-1])
    assert metrics["reference"] == f"folder {folder} held-out test split (40 images)"
    assert metrics["shipped_model"] is False and metrics["fid"] > 0
    code, stdout, _ = run_cli("image", "eval", "vae", "--n", "50", "--seed", "0")
    assert code == 0 and f"against folder {folder} held-out test split" in stdout

    shutil.rmtree(folder)  # the folder is gone: say so and score against MNIST instead
    code, stdout, stderr = run_cli("image", "eval", "vae", "--n", "50", "--seed", "0", "--json")
    assert code == 0 and "which is gone" in stderr
    assert json.loads(stdout.strip().splitlines()[-1])["reference"].startswith("mnist")


def test_data_shortcut_errors_are_one_line(image_home, run_cli, tmp_path):
    code, _, stderr = run_cli("image", "train", "vae", "--data", str(tmp_path / "missing"), "--epochs", "1")
    assert code == 1 and "image folder not found" in stderr and "Traceback" not in stderr
    code, _, stderr = run_cli("image", "train", "vae", "--data", "cifar", "--epochs", "1")
    assert code == 1 and "or give a folder path" in stderr
