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
    own = {
        "head",
        "scale_sampling",
        "iterations",
        "out_dir",
        "random_scale_range",
        "random_scale_count",
        "max_scale_pixels",
    }
    differing = {k for k, v in demo.to_dict().items() if table.to_dict()[k] != v} - own
    assert not differing, f"demo and table rows differ in {sorted(differing)}"
    assert demo.init_from == table.init_from == f"{pretrain.out_dir}/model.pt"
    assert demo.width == pretrain.width and demo.norm == pretrain.norm
    assert demo.head == "shared" and demo.scale_sampling == "random" and demo.random_scale_range == (0.25, 2.0)
    assert table.head == "paper" and table.scales == (1.0, 0.75, 0.5)


# The shipped demo's fine-tuning stages (2 to 5), in order. Stages 4 and 5 see larger crops
# (fewer per batch, about the same pixels per step) so that large objects fit in a crop.
DEMO_STAGES = ("demo.toml", "demo_continue.toml", "demo_stage4_crop320.toml", "demo_stage5_crop416.toml")
SCHEDULE_AND_START = {"init_from", "lr", "warmup_iterations", "iterations", "seed", "out_dir"}
CROP = {"crop_size", "batch_size", "augment_scale_range"}


@pytest.mark.parametrize("index", range(1, len(DEMO_STAGES)), ids=lambda i: DEMO_STAGES[i])
def test_each_demo_stage_continues_the_previous_one_changing_only_schedule_start_and_crop(index):
    demo = load_train_config(CONFIGS / "demo.toml")
    previous, stage = (load_train_config(CONFIGS / name) for name in DEMO_STAGES[index - 1 : index + 1])
    own = SCHEDULE_AND_START | (CROP if index >= 2 else set())
    differing = {k for k, v in stage.to_dict().items() if demo.to_dict()[k] != v} - own
    assert not differing, f"{DEMO_STAGES[index]} differs from demo.toml in {sorted(differing)}"
    assert stage.init_from == f"{previous.out_dir}/model.pt"
    assert stage.seed not in {load_train_config(CONFIGS / name).seed for name in DEMO_STAGES[:index]}  # new data order
    # About the same pixels per step as stage 2, so a step costs about the same.
    assert 0.9 <= stage.batch_size * stage.crop_size**2 / (demo.batch_size * demo.crop_size**2) <= 1.4


def test_the_reproduce_script_trains_every_demo_stage_in_order_and_ships_the_last():
    script = (CONFIGS.parent / "scripts" / "reproduce_results.sh").read_text()
    trained = [
        line.split("configs/")[1].split()[0] for line in script.splitlines() if "train --config configs/demo" in line
    ]
    assert tuple(trained) == DEMO_STAGES
    last = load_train_config(CONFIGS / DEMO_STAGES[-1])
    assert f"cp {last.out_dir}/model.pt checkpoints/scaleshapes_demo.pt" in script


def test_chen_and_tao_twins_differ_only_in_the_merge_and_keep_the_table_budget():
    """configs/hierarchical.toml and configs/chen_shared.toml (Chen beside Tao) are comparable: one trunk, one pair
    of scales, one budget; and that budget is the table rows' (configs/table.toml)."""
    tao, chen = load_train_config(CONFIGS / "hierarchical.toml"), load_train_config(CONFIGS / "chen_shared.toml")
    table = load_train_config(CONFIGS / "table.toml")
    differing = {k for k, v in tao.to_dict().items() if chen.to_dict()[k] != v}
    assert differing == {"merge", "out_dir"}
    assert (tao.merge, chen.merge) == ("hierarchical", "attention")
    assert tao.head == chen.head == "shared" and tao.scales == (1.0, 0.5) and tao.extra_supervision
    assert tao.scale_range() == chen.scale_range() == (0.25, 2.0)  # both fuse the sets of docs/RESULTS.md
    own = {"head", "merge", "scales", "init_from", "out_dir", "inference_scale_range"}
    differing_from_table = {k for k, v in tao.to_dict().items() if table.to_dict()[k] != v} - own
    assert not differing_from_table, f"the twins' budget differs from the table's in {sorted(differing_from_table)}"
    assert tao.init_from.startswith("runs/pretrain_w025_half")
