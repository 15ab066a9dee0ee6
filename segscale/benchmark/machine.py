"""What places the numbers: reference workloads timed in the same run, the latency fit, and the machine."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..devices import cpu_has_amx
from .measure import count_conv_flops


@dataclass(frozen=True)
class Reference:
    """A well-known workload timed in the same run, to place the results on this machine."""

    name: str
    fn: Callable[[], object]
    flops: int


def resnet18_reference(device: torch.device, size: int = 512, batch: int = 1) -> Reference:
    """torchvision's resnet18 (random weights), float32, eval, inference_mode, at size x size."""
    from torchvision.models import resnet18

    model = resnet18(weights=None).eval().to(device)
    images = torch.randn(batch, 3, size, size, device=device)
    flops = count_conv_flops(model, lambda m, d: m(torch.empty(batch, 3, size, size, device=d)))
    flops += 2 * batch * model.fc.in_features * model.fc.out_features

    def forward():
        with torch.inference_mode():
            return model(images)

    return Reference(f"resnet18 forward {size}x{size}, batch {batch}, float32", forward, flops)


def matmul_reference(device: torch.device, n: int, dtype: torch.dtype) -> Reference:
    """(n x n) @ (n x n) in ``dtype``: the device's dense matrix-product rate, its practical ceiling."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    name = str(dtype).replace("torch.", "")
    return Reference(f"matmul {n}x{n}x{n}, {name}", lambda: a @ b, 2 * n**3)


# ----------------------------------------------------------------------------- fitting and the machine


def linear_fit(x, y) -> dict[str, float]:
    """Least squares y = intercept + slope * x, with R^2 and the largest relative residual."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "r2": float("nan"), "max_rel_residual": float("nan")}
    slope, intercept = np.polyfit(x, y, 1)
    predicted = intercept + slope * x
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - predicted) ** 2).sum()) / total if total > 0 else 1.0
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "r2": r2,
        "max_rel_residual": float(np.max(np.abs(y - predicted) / y)),
    }


def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device) -> dict:
    """What the numbers were measured on, and how busy the machine was when the run began."""
    import torchvision

    info = {
        "device": str(device),
        "cpu": cpu_model_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cpu":
        info["cpu_amx"] = cpu_has_amx()
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update(
            gpu=properties.name,
            gpu_memory_gib=round(properties.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info
