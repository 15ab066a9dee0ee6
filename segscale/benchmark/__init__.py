"""The benchmark: the fast path against the naive baseline, on whatever device is here.

``python -m segscale bench`` (:mod:`segscale.commands.bench`) parses its arguments into
:class:`Settings` and calls :func:`run_suite`; everything it measures lives here, by topic:

* :mod:`.baseline` -- the naive baseline and the fast path built up one optimisation at a time;
* :mod:`.measure` -- FLOPs counted from layer shapes, interleaved timing, peak memory (the
  rules the measurements follow are in its docstring);
* :mod:`.machine` -- reference workloads timed in the same run, the latency fit, the machine;
* :mod:`.settings` and :mod:`.workloads` -- what a run measures, and the models it times;
* :mod:`.sweep` and :mod:`.suite` -- one model's measurements, and the whole run as a report;
* :mod:`.report` -- the targets a report meets, and its tables as text or Markdown.
"""

from .baseline import NaiveMultiScale, Step, optimisation_ladder
from .machine import Reference, cpu_model_name, linear_fit, machine_description, matmul_reference, resnet18_reference
from .measure import (
    Timing,
    count_conv_flops,
    multiscale_flops,
    paired_ratio,
    peak_memory_bytes,
    sum_of_squared_scales,
    time_interleaved,
)
from .report import SCHEMA, bench_targets, format_markdown, format_report, read_report, report_sections, write_text
from .settings import MODEL_NAMES, Settings, settings_from_args
from .suite import run_suite
from .workloads import Workload, bench_image, load_workloads

__all__ = [
    "MODEL_NAMES",
    "SCHEMA",
    "NaiveMultiScale",
    "Reference",
    "Settings",
    "Step",
    "Timing",
    "Workload",
    "bench_image",
    "bench_targets",
    "count_conv_flops",
    "cpu_model_name",
    "format_markdown",
    "format_report",
    "linear_fit",
    "load_workloads",
    "machine_description",
    "matmul_reference",
    "multiscale_flops",
    "optimisation_ladder",
    "paired_ratio",
    "peak_memory_bytes",
    "read_report",
    "report_sections",
    "resnet18_reference",
    "run_suite",
    "settings_from_args",
    "sum_of_squared_scales",
    "time_interleaved",
    "write_text",
]
