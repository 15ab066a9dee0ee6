#!/usr/bin/env bash
# Every model behind checkpoints/ and docs/RESULTS.md, from nothing, in order.
#   bash scripts/reproduce_results.sh            # all stages
#   bash scripts/reproduce_results.sh table      # only the table's fine-tuning runs
#   bash scripts/reproduce_results.sh evaluate   # only the evaluations (needs the runs)
#   bash scripts/reproduce_results.sh chen_vs_tao  # Chen beside Tao: the two twins on the table's trunk, their scores
# Stages: pretrain (42 min on the 2-core CPU of docs/RESULTS.md), demo (about 69 + 36 + 58 + 38 min), the
# table's rows (about 15-25 min each), ship (copies the two shipped models into checkpoints/),
# evaluate (about 5 min per 500 images). A killed stage continues where it stopped when the
# same command is run again (each run resumes from its runs/<name>/state.pt).
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-all}"
train() { python -m segscale train --quiet "$@"; }

# name | flags on top of configs/table.toml; the order is the order the rows were trained in.
TABLE_ROWS=(
  "attention_1_075_05_esupv|--merge attention --scales 1 0.75 0.5"
  "max_1_075_05_esupv|--merge max --scales 1 0.75 0.5"
  "average_1_075_05_esupv|--merge average --scales 1 0.75 0.5"
  "attention_1_075_05|--merge attention --scales 1 0.75 0.5 --no-extra-supervision"
  "single_1|--merge average --scales 1 --no-extra-supervision"
  "attention_1_05_esupv|--merge attention --scales 1 0.5"
  "max_1_05_esupv|--merge max --scales 1 0.5"
  "average_1_05_esupv|--merge average --scales 1 0.5"
  "max_1_075_05|--merge max --scales 1 0.75 0.5 --no-extra-supervision"
  "average_1_075_05|--merge average --scales 1 0.75 0.5 --no-extra-supervision"
)

if [[ "$stage" == all || "$stage" == pretrain ]]; then
  train --config configs/pretrain.toml
fi
if [[ "$stage" == all || "$stage" == demo ]]; then
  train --config configs/demo.toml
  train --config configs/demo_continue.toml
  train --config configs/demo_stage4_crop320.toml
  train --config configs/demo_stage5_crop416.toml
fi
if [[ "$stage" == all || "$stage" == table ]]; then
  for row in "${TABLE_ROWS[@]}"; do
    name="${row%%|*}"; flags="${row#*|}"
    # shellcheck disable=SC2086  # the flags are meant to split into words
    train --config configs/table.toml $flags --out-dir "runs/table/$name"
  done
fi
if [[ "$stage" == all || "$stage" == ship ]]; then
  cp runs/demo_stage5_crop416/model.pt checkpoints/scaleshapes_demo.pt
  cp runs/table/attention_1_075_05_esupv/model.pt checkpoints/scaleshapes_paper_head.pt
fi
if [[ "$stage" == all || "$stage" == evaluate ]]; then
  mkdir -p docs/results
  for row in "${TABLE_ROWS[@]}"; do
    name="${row%%|*}"
    [[ -f "runs/table/$name/model.pt" ]] || { echo "skip $name: not trained"; continue; }
    python -m segscale evaluate --checkpoint "runs/table/$name/model.pt" --split val --count 300 --quiet \
      --json "docs/results/val_$name.json"
  done
  # The shipped models on the held-out test split; all three merges from the same weights.
  python -m segscale evaluate --checkpoint checkpoints/scaleshapes_demo.pt --split test --count 500 --quiet \
    --scales 1 0.75 0.5 --merge attention average max --json docs/results/test_demo.json
  python -m segscale evaluate --checkpoint checkpoints/scaleshapes_paper_head.pt --split test --count 500 --quiet \
    --scales 1 0.75 0.5 --merge attention average max --json docs/results/test_paper_head.json
  # The demo's shared head at other scale sets (it trained on random sets of 2-4 scales from
  # [0.25, 2]), against its default set on the same 200 test images.
  for set in "1 0.75 0.5" "1 0.5" "2 1 0.5" "1 0.5 0.25" "1.5 1 0.75 0.5"; do
    name=$(echo "$set" | sed 's/\.//g; s/ /_/g')
    # shellcheck disable=SC2086  # the set is meant to split into words
    python -m segscale evaluate --checkpoint checkpoints/scaleshapes_demo.pt --split test --count 200 --quiet \
      --scales $set --merge attention average max --json "docs/results/test_demo_set_$name.json"
  done
  # The attention-by-size figures (PNG, CSV and aggregates; the PNGs are copied into docs/results/).
  python -m segscale diagnose --checkpoint checkpoints/scaleshapes_demo.pt --split test --count 200 --quiet --out runs/diagnose_demo
  python -m segscale diagnose --checkpoint checkpoints/scaleshapes_paper_head.pt --split test --count 200 --quiet --out runs/diagnose_paper_head
  cp runs/diagnose_demo/weight_by_extent.png docs/results/demo_weight_by_extent.png
  cp runs/diagnose_paper_head/weight_by_extent.png docs/results/paper_head_weight_by_extent.png
  python scripts/results_tables.py docs/results
fi
if [[ "$stage" == chen_vs_tao ]]; then
  # Chen's softmax attention (shared head) beside Tao et al.'s hierarchical gates: both fine-tuned from the
  # table's 12,000-step stage-1 trunk by configs/chen_shared.toml and configs/hierarchical.toml (the table's
  # budget, pair {1, 0.5}); the trunk is trained first if it is not there yet.
  # The trunk as it was trained for docs/RESULTS.md's twins: the table's config with bf16 autocast (57.7 min
  # on the AMX CPU there); an existing runs/pretrain_w025_half (the table's own, float32) is used as it is.
  [[ -f runs/pretrain_w025_half/model.pt ]] || train --config configs/pretrain.toml --amp
  train --config configs/chen_shared.toml
  train --config configs/hierarchical.toml
  cp runs/chen_vs_tao/hierarchical/model.pt checkpoints/scaleshapes_hierarchical.pt
  # The second seed of each twin (docs/RESULTS.md scores it on test only).
  train --config configs/chen_shared.toml --seed 1 --out-dir runs/chen_vs_tao_seed1/chen_shared
  train --config configs/hierarchical.toml --seed 1 --out-dir runs/chen_vs_tao_seed1/hierarchical
  bash scripts/chen_vs_tao_evaluate.sh chen & bash scripts/chen_vs_tao_evaluate.sh hierarchical; wait
  python scripts/results_tables.py --chen-vs-tao docs/results/chen_vs_tao
  # The weight-by-size figures at {2, 1, 0.5, 0.25}, a set neither twin trained on.
  OMP_NUM_THREADS=1 python -m segscale diagnose --checkpoint runs/chen_vs_tao/chen_shared/model.pt --split test --count 200 \
    --scales 2 1 0.5 0.25 --quiet --out runs/diagnose_chen_shared &
  OMP_NUM_THREADS=1 python -m segscale diagnose --checkpoint checkpoints/scaleshapes_hierarchical.pt --split test --count 200 \
    --scales 2 1 0.5 0.25 --quiet --out runs/diagnose_hierarchical; wait
  cp runs/diagnose_chen_shared/weight_by_extent.png docs/results/chen_vs_tao/chen_weight_by_extent.png
  cp runs/diagnose_hierarchical/weight_by_extent.png docs/results/chen_vs_tao/hierarchical_weight_by_extent.png
fi
