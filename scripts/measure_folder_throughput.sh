#!/usr/bin/env bash
# Throughput of `python -m segscale predict FOLDER` over ScaleShapes images on the demo checkpoint:
# 1 process (torch's default threads), 1 process with one thread, and 2 processes under torchrun
# (gloo on the CPU, one thread each, as torchrun sets). Usage:
#   bash scripts/measure_folder_throughput.sh [COUNT] [WORKDIR] [PRECISION]
# PRECISION (float32, bf16, auto; default bf16) is fixed for every run, so that the runs differ
# only in processes and threads (with auto each process decides on its own first image).
# Prints images/s of each run's prediction loop (from its summary.json) and the whole command's
# wall time (start-up and model load included).
set -euo pipefail
count=${1:-200}
work=${2:-/tmp/segscale-throughput}
precision=${3:-bf16}
rm -rf "$work" && mkdir -p "$work"
python -m segscale shapes --split val --count "$count" --out "$work/shapes" > /dev/null 2>&1
images="$work/shapes/JPEGImages"
options=(--workers 1 --precision "$precision")
run() {  # name, command...
  local name=$1; shift
  local start; start=$(date +%s.%N)
  "$@" "$images" --out "$work/$name" "${options[@]}" 2> "$work/$name.log" > /dev/null
  python - "$work/$name/summary.json" "$name" "$(echo "$(date +%s.%N) - $start" | bc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}: {s['processes']} process(es), {s['settings']['device']}, {s['settings']['precision']}: "
      f"{s['done']} images in {s['seconds']:.1f} s = {s['images_per_second']:.2f} images/s; "
      f"command {float(sys.argv[3]):.1f} s; load average after {sys.argv[4]}")
PY
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run one python -m segscale predict
OMP_NUM_THREADS=1 run one-thread python -m segscale predict
run two torchrun --standalone --nproc_per_node 2 -m segscale predict
labels() { (cd "$1" && find . -name '*_labels.png' | sort | xargs md5sum); }
# Same threads per process, so the same arithmetic: the labels must be byte-for-byte equal.
if diff <(labels "$work/one-thread") <(labels "$work/two") > /dev/null; then
  echo "labels identical between the 1-process (one thread) and 2-process runs"
else
  echo "labels differ between the 1-process (one thread) and 2-process runs"
fi
