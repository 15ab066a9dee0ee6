"""Training: per-step determinism, kill-and-resume with nothing lost, DDP on two CPU processes, config errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from segscale.checkpoint import load_checkpoint
from segscale.modeling import build_model
from segscale.training.config import TrainConfig, load_train_config
from segscale.training.data import DiskCachedPairs, StepBatches, sample_scale_set
from segscale.training.loop import _lr_factor, _parameter_groups, train

from .conftest import tiny_config

TINY_RUN = [
    "--width",
    "0.0625",
    "--head",
    "shared",
    "--batch-size",
    "2",
    "--crop-size",
    "64",
    "--train-images",
    "6",
    "--val-images",
    "2",
    "--workers",
    "0",
    "--threads",
    "1",
    "--quiet",
]


def run_segscale(args, cwd, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "segscale", *args], cwd=cwd, env=env, **kwargs)


def tiny_config_for(tmp_path, **overrides) -> TrainConfig:
    values = dict(
        width=0.0625,
        head="shared",
        batch_size=2,
        crop_size=64,
        train_images=6,
        val_images=2,
        workers=0,
        threads=1,
        iterations=4,
        val_every=4,
        checkpoint_every=1,
        out_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL mid-run, run the same command again: the result equals an uninterrupted run's."""
    common = [
        *TINY_RUN,
        "--iterations",
        "12",
        "--val-every",
        "12",
        "--checkpoint-every",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    straight = run_segscale(["train", *common, "--out-dir", str(tmp_path / "straight")], tmp_path)
    assert straight.wait(timeout=300) == 0

    killed_dir = tmp_path / "killed"
    victim = run_segscale(["train", *common, "--out-dir", str(killed_dir)], tmp_path)
    deadline = time.time() + 240
    while not (killed_dir / "state.pt").exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few more steps, then a kill that cannot be caught
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    saved_step = torch.load(killed_dir / "state.pt", weights_only=True)["step"]
    assert 1 <= saved_step <= 12
    resumed = run_segscale(
        ["train", *common, "--out-dir", str(killed_dir)], tmp_path, stderr=subprocess.PIPE, text=True
    )
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    if saved_step < 12:
        assert f"continuing {killed_dir} from step {saved_step}" in stderr

    a, _ = load_checkpoint(tmp_path / "straight" / "model.pt")
    b, _ = load_checkpoint(killed_dir / "model.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert not list(killed_dir.glob("*.tmp")), "a temporary file was left behind"


def test_a_run_stopped_midway_continues_to_what_an_uninterrupted_run_writes(tmp_path, monkeypatch):
    """In one process and at a chosen step (the subprocess kill above may land after the last step): a stop
    request saves state.pt, and the same call again ends with the weights, best.pt and history of a run that
    was never stopped, validations on both sides of the stop included."""
    import segscale.training.loop as loop

    def run_config(folder):  # state.pt only when stopped and at the end; validations at steps 2, 4 and 5
        return tiny_config_for(
            tmp_path, iterations=5, val_every=2, checkpoint_every=100, out_dir=str(tmp_path / folder)
        )

    straight = train(run_config("straight"), progress=False, log=lambda message: None)
    assert (straight.steps, straight.interrupted) == (5, False)

    lr_factor = loop._lr_factor

    def ctrl_c_during_step_three(config, step):
        if step == 2:
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C would; the loop's handler turns it into a stop request
        return lr_factor(config, step)

    monkeypatch.setattr(loop, "_lr_factor", ctrl_c_during_step_three)
    stopped = train(run_config("stopped"), progress=False, log=lambda message: None)
    assert (stopped.steps, stopped.interrupted) == (3, True)
    assert torch.load(tmp_path / "stopped" / "state.pt", weights_only=True)["step"] == 3
    monkeypatch.setattr(loop, "_lr_factor", lr_factor)

    messages = []
    resumed = train(run_config("stopped"), progress=False, log=messages.append)
    assert any(f"continuing {tmp_path / 'stopped'} from step 3 of 5" in message for message in messages), messages
    assert (resumed.steps, resumed.interrupted) == (5, False)
    assert (resumed.final_miou, resumed.best_miou) == (straight.final_miou, straight.best_miou)
    for name in ("model.pt", "best.pt"):
        a, _ = load_checkpoint(tmp_path / "straight" / name)
        b, _ = load_checkpoint(tmp_path / "stopped" / name)
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name}: {key}")

    def history(folder):  # all but the wall-clock times
        lines = (tmp_path / folder / "history.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]

    assert [record["step"] for record in history("straight")] == [2, 4, 5]
    assert history("stopped") == history("straight")
    assert not list((tmp_path / "stopped").glob("*.tmp")), "a temporary file was left behind"


def test_a_run_killed_after_a_validation_writes_each_validation_once(tmp_path, monkeypatch):
    """Killed after the validation at step 4 but before a state.pt newer than step 3: the resumed run repeats
    step 4 and its validation, and history.jsonl still has one line per validation, as state.pt's history."""
    import segscale.training.loop as loop

    config = tiny_config_for(tmp_path, iterations=5, val_every=2, checkpoint_every=3)
    lr_factor = loop._lr_factor

    def killed_in_step_five(config, step):
        if step == 4:
            raise SystemExit("killed")  # nothing the loop saves on: as SIGKILL would leave the folder
        return lr_factor(config, step)

    monkeypatch.setattr(loop, "_lr_factor", killed_in_step_five)
    with pytest.raises(SystemExit, match="killed"):
        train(config, progress=False, log=lambda message: None)
    assert torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"] == 3
    monkeypatch.setattr(loop, "_lr_factor", lr_factor)
    train(config, progress=False, log=lambda message: None)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 5]
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert [record["step"] for record in state["history"]] == steps


def test_no_resume_drops_the_old_runs_state_and_history_at_once(tmp_path, monkeypatch):
    """A new run over a finished one (--no-resume) and killed before its first checkpoint: the folder holds no
    state.pt of the old run to continue by mistake, and no history lines of it."""
    import segscale.training.loop as loop

    config = tiny_config_for(tmp_path, iterations=2, val_every=1, checkpoint_every=100)
    train(config, progress=False, log=lambda message: None)
    assert (tmp_path / "run" / "state.pt").exists() and (tmp_path / "run" / "history.jsonl").read_text()

    def killed_in_step_one(config, step):
        raise SystemExit("killed")

    monkeypatch.setattr(loop, "_lr_factor", killed_in_step_one)
    with pytest.raises(SystemExit, match="killed"):
        train(config, resume=False, progress=False, log=lambda message: None)
    assert not (tmp_path / "run" / "state.pt").exists()
    assert (tmp_path / "run" / "history.jsonl").read_text() == ""


@pytest.mark.parametrize("workers", ["0", "1"])
def test_sigterm_to_the_process_group_saves_the_state_and_says_how_to_continue(tmp_path, workers):
    """As Ctrl-C or `kill` of the group does: the data workers get the signal too."""
    run_dir = tmp_path / "run"
    process = run_segscale(
        [
            "train",
            *TINY_RUN,
            "--iterations",
            "100000",
            "--val-every",
            "100000",
            "--checkpoint-every",
            "100000",
            "--workers",
            workers,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out-dir",
            str(run_dir),
        ],
        tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started = process.stderr.readline()  # printed once the stop handler is installed
    assert started.startswith("training "), started
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGTERM)
    stdout, rest = process.communicate(timeout=120)
    stderr = started + rest
    assert process.returncode == 130, stderr
    assert "run the same command to continue" in stderr and "interrupted" in stdout
    assert torch.load(run_dir / "state.pt", weights_only=True)["step"] >= 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("merge", ["attention", "hierarchical"])
def test_ddp_two_cpu_processes_with_gloo(tmp_path, merge):
    """Both kinds of learned merge train under torchrun; hierarchical on a pair of scales, as Tao et al. train
    it, and its checkpoint then fuses a set of three."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "-m",
        "segscale",
        "train",
        *TINY_RUN,
        "--iterations",
        "3",
        "--val-every",
        "3",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out-dir",
        str(tmp_path / "ddp"),
        "--merge",
        merge,
        "--scales",
        "1",
        "0.5",
        "--inference-scale-range",
        "0.5",
        "2",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es) on cpu" in result.stderr and f"merge {merge}, E-Supv on" in result.stderr
    state, metadata = load_checkpoint(tmp_path / "ddp" / "model.pt")
    assert metadata.training["processes"] == 2 and metadata.training["steps"] == 3
    assert metadata.model.merge == merge and metadata.model.scales == (1.0, 0.5) and metadata.scale_range == (0.5, 2.0)
    assert any(key.startswith("gate_head.") for key in state) == (merge == "hierarchical")
    if merge == "hierarchical":
        from segscale.predictor import Predictor

        predictor = Predictor.from_checkpoint(tmp_path / "ddp" / "model.pt")
        rgb = np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
        prediction = predictor.predict(rgb, scales=(2.0, 1.0, 0.5), merge="hierarchical")
        np.testing.assert_allclose(prediction.attention.sum(axis=0), 1.0, atol=1e-5)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert result.stdout.count("done:") == 1  # one report for the whole run


def test_step_batches_depend_only_on_seed_and_step(tmp_path):
    pairs = [(np.full((40, 50, 3), i * 20, np.uint8), np.full((40, 50), i % 3, np.uint8)) for i in range(5)]
    config = tiny_config_for(tmp_path, crop_size=32, batch_size=3)
    batches = StepBatches(pairs, config, (0.5,) * 3, (0.25,) * 3)
    images, labels = batches[7]
    assert images.shape == (3, 3, 32, 32) and labels.shape == (3, 32, 32) and labels.dtype == torch.int64
    again_images, again_labels = StepBatches(pairs, config, (0.5,) * 3, (0.25,) * 3)[7]
    torch.testing.assert_close(images, again_images)
    torch.testing.assert_close(labels, again_labels)
    assert not torch.equal(batches[8][0], images)
    # Two ranks take disjoint slices of the same global batch.
    rank0 = StepBatches(pairs, config, (0.5,) * 3, (0.25,) * 3, rank=0, world_size=2)[7][0]
    torch.testing.assert_close(rank0, images)
    rank1 = StepBatches(pairs, config, (0.5,) * 3, (0.25,) * 3, rank=1, world_size=2)[7][0]
    assert rank1.shape == rank0.shape


def test_random_scale_sets_stay_in_range_and_budget(tmp_path):
    config = tiny_config_for(
        tmp_path,
        scale_sampling="random",
        random_scale_range=(0.25, 2.0),
        random_scale_count=(2, 4),
        max_scale_pixels=5.0,
    )
    sets = [sample_scale_set(config, step) for step in range(400)]
    assert sets[10] == sample_scale_set(config, 10)
    assert all(0.25 <= s <= 2.0 for scales in sets for s in scales)
    assert all(sum(s * s for s in scales) <= 5.0 for scales in sets)
    assert all(list(scales) == sorted(scales, reverse=True) and len(set(scales)) == len(scales) for scales in sets)
    assert {len(scales) for scales in sets} >= {2, 3, 4}
    assert min(min(s) for s in sets) <= 0.3 and max(max(s) for s in sets) >= 1.8
    assert sample_scale_set(tiny_config_for(tmp_path), 3) == (1.0, 0.75, 0.5)


def test_schedules_and_parameter_groups(tmp_path):
    poly = tiny_config_for(tmp_path, iterations=100, schedule="poly", poly_power=0.9)
    assert _lr_factor(poly, 0) == 1.0 and _lr_factor(poly, 50) == pytest.approx(0.5**0.9)
    step = tiny_config_for(tmp_path, iterations=100, schedule="step", step_size=30, step_gamma=0.1)
    assert _lr_factor(step, 29) == 1.0 and _lr_factor(step, 30) == pytest.approx(0.1)
    warm = tiny_config_for(tmp_path, iterations=100, warmup_iterations=10)
    assert _lr_factor(warm, 0) == pytest.approx(0.1)
    config = tiny_config_for(tmp_path, lr=0.01, head_lr_multiplier=10, weight_decay=5e-4)
    model = build_model(tiny_config())
    groups = _parameter_groups(model, config)
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert by_id[id(model.trunk.layers.conv1_1.weight)]["lr"] == 0.01
    assert by_id[id(model.score_head.fc8.weight)]["lr"] == pytest.approx(0.1)
    assert by_id[id(model.trunk.layers.conv1_1.bias)]["weight_decay"] == 0.0
    assert by_id[id(model.trunk.layers.conv1_1.weight)]["weight_decay"] == 5e-4


def test_disk_cache_reuses_and_repairs_entries(tmp_path):
    calls = []

    class Counting:
        def __len__(self):
            return 3

        def __getitem__(self, index):
            calls.append(index)
            return np.full((4, 4, 3), index, np.uint8), np.full((4, 4), index, np.uint8)

    cached = DiskCachedPairs(Counting(), tmp_path / "cache")
    first = cached[2]
    assert calls == [2] and np.array_equal(cached[2][0], first[0]) and calls == [2]
    (tmp_path / "cache" / "0000002.npz").write_bytes(b"garbage")
    assert np.array_equal(cached[2][1], first[1]) and calls == [2, 2]


def test_config_file_and_errors(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('width = 0.25\nscales = [1.0, 0.5]\nhead = "shared"\n')
    config = load_train_config(path, lr=0.05)
    assert config.width == 0.25 and config.scales == (1.0, 0.5) and config.lr == 0.05
    path.write_text("widht = 0.25\n")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['widht'\]"):
        load_train_config(path)
    with pytest.raises(ValueError, match="tied to one scale set"):
        TrainConfig(head="paper", scale_sampling="random")
    with pytest.raises(ValueError, match="needs --data-root"):
        TrainConfig(dataset="voc")
    with pytest.raises(ValueError, match="valid: sgd, adamw"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ValueError, match=r"must hold the scales trained on \(0.5 to 1\)"):
        TrainConfig(scales=(1.0, 0.5), inference_scale_range=(0.75, 2.0))
    assert TrainConfig(scales=(1.0, 0.5)).scale_range() == (0.5, 1.0)
    assert TrainConfig(scales=(1.0, 0.5), inference_scale_range=(0.25, 2)).scale_range() == (0.25, 2.0)


def test_a_run_folder_refuses_other_settings(tmp_path):
    train(tiny_config_for(tmp_path, iterations=1, val_every=1), progress=False)
    with pytest.raises(ValueError, match="other settings \\(width\\)"):
        train(tiny_config_for(tmp_path, iterations=2, width=0.125), progress=False)


def test_frozen_norm_statistics_stay_put_while_the_rest_trains():
    from segscale.training.loop import _set_training_mode

    model = build_model(tiny_config(norm="batch"))
    norm = model.trunk.layers.conv1_1_norm
    before = norm.running_mean.clone()
    _set_training_mode(model, freeze_norm_statistics=True)
    assert model.training and not norm.training and model.attention_head.training  # dropout still on
    model(torch.randn(2, 3, 40, 40)).fused.sum().backward()
    torch.testing.assert_close(norm.running_mean, before)
    assert norm.weight.grad is not None  # its affine parameters still learn
    _set_training_mode(model, freeze_norm_statistics=False)
    model(torch.randn(2, 3, 40, 40))
    assert not torch.equal(norm.running_mean, before)
