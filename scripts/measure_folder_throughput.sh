#!/usr/bin/env bash
# Throughput of `python -m segscale predict FOLDER` over ScaleShapes images, with 1 process and
# with 2 under torchrun (gloo on the CPU), on the demo checkpoint. Usage:
#   bash scripts/measure_folder_throughput.sh [COUNT] [WORKDIR]
# Writes WORKDIR/one/summary.json and WORKDIR/two/summary.json; prints images/s of each
# (prediction loop, from the summary) and the whole command's wall time (model load included).
set -euo pipefail
count=${1:-200}
work=${2:-/tmp/segscale-throughput}
rm -rf "$work" && mkdir -p "$work"
python -m segscale shapes --split val --count "$count" --out "$work/shapes" > /dev/null
images="$work/shapes/JPEGImages"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
python -m segscale predict "$images" --out "$work/one" --workers 1 2> "$work/one.log"
one_wall=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
torchrun --standalone --nproc_per_node 2 -m segscale predict "$images" --out "$work/two" --workers 1 2> "$work/two.log"
two_wall=$(echo "$(date +%s.%N) - $start" | bc)
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in one two; do
  python - "$work/$run/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{s['processes']} process(es): {s['done']} images in {s['seconds']:.1f} s of prediction = {s['images_per_second']:.2f} images/s; {s['settings']['precision']}, {s['settings']['device']}")
PY
done
echo "wall time of the whole command: 1 process ${one_wall} s, 2 processes ${two_wall} s"
cmp -s <(cd "$work/one" && find . -name '*_labels.png' | sort | xargs md5sum) <(cd "$work/two" && find . -name '*_labels.png' | sort | xargs md5sum) \
  && echo "labels identical between the two runs" || echo "labels differ between the two runs (bf16 decided per process?)"
