"""segscale: Attention to Scale (Chen et al., CVPR 2016) for teaching and diagnosis.

The model (``segscale.modeling``), its checkpoints (``segscale.checkpoint``), and the
numpy-facing :class:`Predictor` that the app and the command line use.
"""

from .checkpoint import CheckpointError, CheckpointMetadata, load_checkpoint, save_checkpoint
from .config import HeadConfig, ModelConfig, TrunkConfig
from .devices import select_device
from .images import ImageError
from .modeling import MultiScaleNet, MultiScaleOutput, ScaleSetError, build_model
from .predictor import Prediction, Predictor

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CheckpointMetadata",
    "HeadConfig",
    "ImageError",
    "ModelConfig",
    "MultiScaleNet",
    "MultiScaleOutput",
    "Prediction",
    "Predictor",
    "ScaleSetError",
    "TrunkConfig",
    "build_model",
    "load_checkpoint",
    "save_checkpoint",
    "select_device",
]
