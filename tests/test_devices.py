"""Device choice, the bf16 probes and cuDNN's benchmark flag live in segscale.devices.

cuDNN's algorithm search is a process-wide flag: the fast path sets it once, when it is built,
never around each call (which raced between the threads sharing one Predictor).
"""

from __future__ import annotations

import pytest
import torch

from segscale import devices, inference
from segscale.inference import FastMultiScale, FastPathOptions
from segscale.modeling import build_model
from tests.conftest import tiny_config


@pytest.fixture
def cudnn_flag():
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    yield
    torch.backends.cudnn.benchmark = before


def test_cudnn_benchmark_is_set_for_cuda_only_and_when_asked(cudnn_flag):
    devices.use_cudnn_benchmark(torch.device("cpu"), True)
    devices.use_cudnn_benchmark(torch.device("cuda"), False)
    assert torch.backends.cudnn.benchmark is False
    devices.use_cudnn_benchmark(torch.device("cuda"), True)  # a flag: no GPU needed to set it
    assert torch.backends.cudnn.benchmark is True


def test_the_fast_path_sets_the_flag_when_built_not_on_each_call(cudnn_flag, monkeypatch):
    calls = []
    monkeypatch.setattr(devices, "use_cudnn_benchmark", lambda device, enabled: calls.append((device.type, enabled)))
    fast = FastMultiScale(build_model(tiny_config()), (0.5,) * 3, (0.25,) * 3, "cpu", FastPathOptions(autocast="off"))
    assert calls == [("cpu", False)]
    fast.run(torch.zeros(1, 32, 32, 3, dtype=torch.uint8))
    fast.run(torch.zeros(1, 32, 32, 3, dtype=torch.uint8))
    assert calls == [("cpu", False)]  # running flips nothing
    assert not hasattr(inference, "_cudnn_benchmark")


def test_device_choice_lives_in_devices():
    assert devices.select_device("cpu") == torch.device("cpu")
    assert devices.device_description(torch.device("cpu")).startswith("CPU (")
    with pytest.raises(ValueError, match="unknown device 'banana'; this machine has: cpu"):
        devices.select_device("banana")
    assert isinstance(devices.bf16_worth_probing(torch.device("cpu")), bool)
    devices.synchronize(torch.device("cpu"))  # a no-op without a GPU
