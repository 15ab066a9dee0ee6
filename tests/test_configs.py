"""The committed training recipes are valid, and the fine-tuning runs share one recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from segscale.training.config import load_train_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_recipe_is_a_valid_training_config(path):
    config = load_train_config(path)
    assert config.iterations > 0 and config.out_dir.startswith("runs/")


def test_demo_and_table_rows_share_the_fine_tuning_recipe():
    demo, table = load_train_config(CONFIGS / "demo.toml"), load_train_config(CONFIGS / "table.toml")
    pretrain = load_train_config(CONFIGS / "pretrain.toml")
    own = {"head", "scale_sampling", "iterations", "out_dir", "random_scale_range", "random_scale_count", "max_scale_pixels"}
    differing = {k for k, v in demo.to_dict().items() if table.to_dict()[k] != v} - own
    assert not differing, f"demo and table rows differ in {sorted(differing)}"
    assert demo.init_from == table.init_from == f"{pretrain.out_dir}/model.pt"
    assert demo.width == pretrain.width and demo.norm == pretrain.norm
    assert demo.head == "shared" and demo.scale_sampling == "random" and demo.random_scale_range == (0.25, 2.0)
    assert table.head == "paper" and table.scales == (1.0, 0.75, 0.5)


def test_the_demo_continuation_changes_only_its_schedule_and_starting_point():
    demo, continuation = load_train_config(CONFIGS / "demo.toml"), load_train_config(CONFIGS / "demo_continue.toml")
    own = {"init_from", "lr", "warmup_iterations", "iterations", "seed", "out_dir"}
    differing = {k for k, v in continuation.to_dict().items() if demo.to_dict()[k] != v} - own
    assert not differing, f"demo_continue differs from demo in {sorted(differing)}"
    assert continuation.init_from == f"{demo.out_dir}/model.pt"
    assert continuation.seed != demo.seed  # a new data order, not a replay of stage 2's batches
