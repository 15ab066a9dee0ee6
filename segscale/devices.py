"""Which device to run on, what it can do, and waiting for it: the one module that asks.

Every command's ``--device``, the Predictor and the training loop choose a device through
:func:`select_device`; the fast path and training ask :func:`bf16_pays_off` and
:func:`bf16_worth_probing` whether bf16 autocast is worth it; timings call :func:`synchronize`
so that wall-clock time covers queued GPU work; and the fast path switches cuDNN's algorithm
search on once, when it is built (:func:`use_cudnn_benchmark`).
"""

from __future__ import annotations

import torch

from .formatting import count_of


def available_devices() -> list[str]:
    """The devices this machine can run on, as ``--device`` takes them: "cpu", then "cuda:0", ..., "mps"."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def _describe_available() -> str:
    names = []
    for name in available_devices():
        if name.startswith("cuda:"):
            names.append(f"{name} ({torch.cuda.get_device_name(int(name[5:]))})")
        else:
            names.append(name)
    return ", ".join(names)


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or the best available: CUDA, then Apple's MPS, then the CPU.

    A device this machine does not have (``"cuda"`` without a GPU, ``"cuda:3"`` with two,
    ``"banana"``) raises ValueError naming what it has, before anything is allocated: this is
    the one place every command's ``--device`` and the Predictor go through.
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(device, torch.device):
        chosen = device
    else:
        try:
            chosen = torch.device(str(device).strip().lower())
        except RuntimeError:
            raise ValueError(f"unknown device {str(device)!r}; this machine has: {_describe_available()}") from None
    if chosen.type == "cpu":
        return chosen
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: this machine has no CUDA GPU; it has: {_describe_available()}")
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(
                f"device {str(device)!r}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} "
                f"(cuda:0 to cuda:{count - 1}); it has: {_describe_available()}"
            )
        return chosen
    if chosen.type == "mps":
        if "mps" not in available_devices():
            raise ValueError(
                f"device {str(device)!r}: Apple's MPS is not available here; this machine has: {_describe_available()}"
            )
        return chosen
    raise ValueError(f"device {str(device)!r} is not one segscale runs on; this machine has: {_describe_available()}")


def device_description(device: torch.device) -> str:
    """A human name for a device: the GPU's model, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    return f"CPU ({count_of(torch.get_num_threads(), 'thread')})"  # torchrun gives each process one


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (bf16 matrix units), where bf16 convolutions beat float32."""
    probe = getattr(getattr(torch, "cpu", None), "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # a private probe; any failure means "don't know", so no
        return False


def bf16_pays_off(device: torch.device) -> bool:
    """Whether bf16 autocast is worth trying on ``device`` (CUDA with bf16; a CPU with AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # Measured (docs/PERFORMANCE.md): with AMX, bf16 convolutions run ~2x faster than
        # float32; without it, bf16 is emulated or narrower and was not measured faster.
        return cpu_has_amx()
    return False


def bf16_worth_probing(device: torch.device) -> bool:
    """Whether "auto" tries bf16 at all: CUDA with bf16, or a CPU with native bf16 (AMX or AVX512-BF16).

    Where it is tried, the first image decides (:meth:`FastMultiScale._decide_autocast`): timed
    both ways on this machine, kept only if faster and its labels agree. Elsewhere bf16 is
    emulated and slower, so it is not even tried.
    """
    if device.type == "cpu":
        native = getattr(getattr(torch, "cpu", None), "_is_avx512_bf16_supported", None)
        try:
            return cpu_has_amx() or bool(native and native())
        except Exception:  # a private probe; any failure means "don't know", so no
            return False
    return bf16_pays_off(device)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on the CPU), so wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def use_cudnn_benchmark(device: torch.device, enabled: bool) -> None:
    """Let cuDNN time its algorithms per new input shape, on CUDA when ``enabled``.

    A process-wide flag, so it is set once, when a fast path that asks for it is built, and
    left on (pays off for fixed shapes; costs on the first call of each). Never switched off
    here: another fast path in the process may rely on it, and flipping it around every call
    would race between the threads that share a Predictor.
    """
    if enabled and device.type == "cuda":
        torch.backends.cudnn.benchmark = True
