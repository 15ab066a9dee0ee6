#!/usr/bin/env bash
# The Chen-beside-Tao evaluations for one of the two twins, one scale set after another: val 0-299 at the four
# sets first, then test 0-499. Each writes docs/results/chen_vs_tao/<split>_<model>_set_<scales>.json;
# a file already there is kept (so a stopped run continues where it was). One thread each, so that the
# two twins run side by side on a 2-core machine.
#   bash scripts/chen_vs_tao_evaluate.sh chen            # runs/chen_vs_tao/chen_shared/model.pt
#   bash scripts/chen_vs_tao_evaluate.sh hierarchical    # checkpoints/scaleshapes_hierarchical.pt
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"
case "$model" in
  chen) checkpoint=runs/chen_vs_tao/chen_shared/model.pt; merge=attention ;;
  hierarchical) checkpoint=checkpoints/scaleshapes_hierarchical.pt; merge=hierarchical ;;
  *) echo "usage: $0 chen|hierarchical" >&2; exit 2 ;;
esac
out=docs/results/chen_vs_tao
mkdir -p "$out"
for split_count in "val 300" "test 500"; do
  split="${split_count% *}"; count="${split_count#* }"
  for set in "1 0.5" "1 0.75 0.5" "2 1 0.5" "2 1 0.5 0.25"; do
    name=$(echo "$set" | sed 's/\.//g; s/ /_/g')
    json="$out/${split}_${model}_set_$name.json"
    [[ -f "$json" ]] && continue
    # shellcheck disable=SC2086  # the set is meant to split into words
    OMP_NUM_THREADS=1 python -m segscale evaluate --checkpoint "$checkpoint" --split "$split" --count "$count" --quiet \
      --scales $set --merge "$merge" average --json "$json.partial"
    mv "$json.partial" "$json"
  done
done
