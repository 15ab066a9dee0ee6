"""Average the weights of several segscale checkpoints of one architecture (a "model soup").

    python scripts/average_weights.py OUT.pt A.pt B.pt [C.pt ...]

Used to test whether averaging the snapshots of one run, or two runs started from the same
weights, beats the best of them (docs/RESULTS.md, "Recipe": on the demo it did not). Floating
tensors are averaged; integer buffers (batch norm's step counter) are taken from the last file,
and so is the metadata, whose name says what was averaged.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from segscale.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from segscale.modeling import build_model


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating tensors; other tensors from the last dict. Keys and shapes must agree."""
    first = state_dicts[0]
    for index, state_dict in enumerate(state_dicts[1:], start=2):
        if state_dict.keys() != first.keys():
            differing = sorted(state_dict.keys() ^ first.keys())
            raise ValueError(f"file {index} has different weights from file 1 ({', '.join(differing[:3])}...)")
        for key, tensor in state_dict.items():
            if tensor.shape != first[key].shape:
                raise ValueError(
                    f"file {index}: {key} has shape {tuple(tensor.shape)}, file 1 {tuple(first[key].shape)}"
                )
    averaged = {}
    for key, tensor in first.items():
        tensors = [state_dict[key] for state_dict in state_dicts]
        if tensor.is_floating_point():
            averaged[key] = torch.stack([t.float() for t in tensors]).mean(0).to(tensor.dtype)
        else:
            averaged[key] = tensors[-1].clone()
    return averaged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the averaged checkpoint to write")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="two or more checkpoints of one architecture")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints to average")
    if args.out.resolve() in {path.resolve() for path in args.checkpoints}:
        parser.error(f"{args.out} is one of the inputs; write the average to a new file")
    try:
        loaded = [load_checkpoint(path) for path in args.checkpoints]
        if any(metadata.model != loaded[0][1].model for _, metadata in loaded):
            raise ValueError(
                "the checkpoints are of different model configurations; only one architecture can be averaged"
            )
        averaged = average_state_dicts([state_dict for state_dict, _ in loaded])
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sources = ", ".join(
        path.name if path.parent == args.checkpoints[0].parent else str(path) for path in args.checkpoints
    )
    metadata = replace(loaded[-1][1], name=f"{loaded[-1][1].name} (average of {sources})")
    model = build_model(metadata.model)
    model.load_state_dict(averaged, strict=True)  # the project's one checkpoint writer, via the model it describes
    save_checkpoint(args.out, model, metadata)
    print(f"wrote {args.out}: the average of {len(loaded)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())
