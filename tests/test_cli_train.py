"""`python -m thesis_lib train` / `lr-find`: the training commands' behaviour through the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from thesis_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(offline_cifar):
    return offline_cifar


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "THESIS_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "thesis_lib", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_light_cnn_two_epochs_beats_30_percent(data, tmp_path):
    # 2 epochs of 2,000 images: at the protocol's batch 128 that is only 32 Adam steps (~23% accuracy),
    # so this check uses batch 16 (250 steps); optimizer and lr are the light CNN's defaults (Adam, 1e-3).
    out = tmp_path / "run"
    r = run_cli(
        "train",
        "--arch",
        "light_cnn",
        "--activation",
        "relu",
        "--method",
        "standard",
        "--epochs",
        "2",
        "--data",
        data,
        "--train-subset",
        "2000",
        "--test-subset",
        "500",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clean_acc"] > 0.30, metrics["history"]
    assert metrics["config"]["optimizer"] == "adam" and metrics["config"]["lr_max"] == 1e-3
    assert metrics["n_train"] == 2000 and metrics["n_test"] == 500 and metrics["finished"]
    for key in ("git_commit", "hardware", "wall_time_s", "seed", "config", "history"):
        assert key in metrics
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"} <= set(history[0])
    assert f"clean_acc {metrics['clean_acc']:.4f}" in r.stdout


SMALL = [
    "--arch",
    "light_cnn",
    "--train-subset",
    "256",
    "--test-subset",
    "100",
    "--batch-size",
    "64",
    "--device",
    "cpu",
    "--quiet",
]


def test_resume_one_then_two_epochs_equals_two_epochs(data, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", *SMALL, "--data", data, "--epochs", "2", "--out", str(a)]) == 0
    assert main(["train", *SMALL, "--data", data, "--epochs", "1", "--out", str(b)]) == 0
    assert main(["train", *SMALL, "--data", data, "--epochs", "2", "--out", str(b), "--resume"]) == 0
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all((wa[k] == wb[k]).all() for k in wa)
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    strip = lambda hist: [{k: v for k, v in h.items() if k != "seconds"} for h in hist]  # noqa: E731
    assert strip(ma["history"]) == strip(mb["history"]) and ma["clean_acc"] == mb["clean_acc"]
    assert mb["epochs_done"] == 2 and mb["config"]["epochs"] == 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--arch", "alexnet"], "unknown model"),
        (["--arch", "light_cnn", "--activation", "mish"], "unknown activation"),
        (["--arch", "light_cnn", "--method", "free_at"], "unknown training method"),
        (["--arch", "light_cnn", "--eps", "-8/255"], "eps"),
        (["--arch", "light_cnn", "--eps=-0.1"], "eps"),
        (["--arch", "light_cnn", "--data", "/nonexistent/cifar"], "/nonexistent/cifar"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, needle, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", *args, "--out", str(out), "--epochs", "1", "--train-subset", "64", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error:") and needle in err, err
    assert not out.exists()


def test_corrupt_checkpoint_is_one_line_and_changes_nothing(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--data", data, "--epochs", "1", "--out", str(out)]) == 0
    (out / "checkpoint.json").write_text('{"format": 1, "tensors": "checkpoint-0001.safeten')
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    code = main(["train", *SMALL, "--data", data, "--epochs", "2", "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "corrupt" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_subprocess_error_exit_code(tmp_path):
    r = run_cli("train", "--arch", "nope", "--out", str(tmp_path / "x"))
    assert (
        r.returncode == 2
        and r.stderr.strip().startswith("error: unknown model")
        and len(r.stderr.strip().splitlines()) == 1
    )


def test_lr_find_command(data, tmp_path, capsys):
    code = main(
        [
            "lr-find",
            "--arch",
            "light_cnn",
            "--train-subset",
            "128",
            "--batch-size",
            "16",
            "--epochs",
            "1",
            "--lr-end",
            "1",
            "--data",
            data,
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    res = json.loads((tmp_path / "lr_find.json").read_text())
    assert res["lr_min"] <= res["lr_max"] and len(res["lrs"]) == len(res["losses"]) > 2
    assert "lr_min" in capsys.readouterr().out


def test_divergence_is_a_result_exit_0_with_one_warning(data, tmp_path, capsys, monkeypatch):
    from thesis_lib.training import TrainConfig

    real_build = TrainConfig.build_model

    def build_with_nan(self):  # every gradient of the second conv is NaN from the start
        model = real_build(self)
        model.features[3].weight.register_hook(lambda g: g * float("nan"))
        return model

    monkeypatch.setattr(TrainConfig, "build_model", build_with_nan)
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--data", data, "--epochs", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "step 0" in warnings[0] and "features.3.weight" in warnings[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["diverged"] == {"step": 0, "layer": "features.3.weight", "quantity": "grad"}
    assert "diverged at step 0" in captured.out
