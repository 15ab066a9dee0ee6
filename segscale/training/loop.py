"""The training loop: SGD/AdamW over multi-scale batches with extra supervision, resumable.

A run lives in one folder (``out_dir``):

* ``state.pt``: everything needed to continue (weights, optimiser, schedule, step, RNG),
  written atomically every ``checkpoint_every`` steps and when the run is interrupted;
* ``model.pt``: the latest weights as a segscale checkpoint (metadata included);
* ``best.pt``: the weights with the best validation mIoU so far;
* ``history.jsonl``: one line per validation, written whole from the run's history each time.

Starting a run whose folder holds a ``state.pt`` of the same configuration continues it;
each step's batch depends only on (seed, step), so a resumed run computes what an
uninterrupted one would have. Several processes started by ``torchrun`` train with
DistributedDataParallel (gloo on the CPU, NCCL on GPUs).
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..atomic_files import write_atomically
from ..checkpoint import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CheckpointError,
    CheckpointMetadata,
    atomic_torch_save,
    head_phrase,
    load_checkpoint,
    read_torch_file,
    save_checkpoint,
)
from ..config import HeadConfig
from ..devices import bf16_pays_off
from ..distributed import distributed_context
from ..evaluation import evaluate_pairs
from ..losses import LossTerms, extra_supervision_loss
from ..merges import ATTENTION, ATTENTION_HEAD
from ..modeling import MultiScaleNet, build_model
from ..progress_bar import progress_bar
from .config import TrainConfig
from .data import StepBatches, build_datasets, sample_scale_set

STATE_FORMAT = "segscale-training-state"
# Settings that may change when a run is continued; any other change means another run.
RESUMABLE_CHANGES = {"iterations", "val_every", "checkpoint_every", "workers", "threads", "out_dir", "cache_dir", "amp"}


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    steps: int
    final_miou: float | None
    best_miou: float | None
    wall_time_s: float
    interrupted: bool


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop saves its state after the current step and returns."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process.

    Ctrl-C (and ``kill`` of a process group) reaches the workers too; a worker that died of
    it would make the main process fail on its next batch before it could save its state.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _set_training_mode(model: nn.Module, freeze_norm_statistics: bool) -> None:
    """Training mode; with ``freeze_norm_statistics`` batch norm stays in eval mode.

    In a share-net every scale is a separate forward pass, so batch norm in training mode
    normalises each scale with its own batch statistics while inference uses one running
    average for all scales. Fine-tuning from a trained trunk with frozen statistics keeps
    training and inference the same computation at every scale (as DeepLab fine-tuned).
    """
    model.train()
    if freeze_norm_statistics:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def _distributed_context():
    """(rank, world size, local rank), initialising the process group when started by torchrun."""
    context = distributed_context()
    return context.rank, context.world_size, context.local_rank


def _parameter_groups(model: MultiScaleNet, config: TrainConfig):
    """Trunk at the base rate, new layers (fc8, attention head) faster; no weight decay on biases and norms."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue  # a frozen share-net
        is_new = not name.startswith("trunk.")
        decays = parameter.dim() > 1
        groups.setdefault((is_new, decays), []).append(parameter)
    return [
        {
            "params": params,
            "base_lr": config.lr * (config.head_lr_multiplier if is_new else 1.0),  # the schedule scales this
            "lr": config.lr * (config.head_lr_multiplier if is_new else 1.0),
            "weight_decay": config.weight_decay if decays else 0.0,
        }
        for (is_new, decays), params in groups.items()
    ]


def _lr_factor(config: TrainConfig, step: int) -> float:
    if config.warmup_iterations and step < config.warmup_iterations:
        return (step + 1) / config.warmup_iterations
    if config.schedule == "poly":
        return (1 - step / config.iterations) ** config.poly_power
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * step / config.iterations))
    return config.step_gamma ** (step // config.step_size)


def _build_optimizer(model: MultiScaleNet, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def _initialise(model: MultiScaleNet, config: TrainConfig, log) -> None:
    if config.imagenet_init:
        from ..pretrained import initialize_from_imagenet

        initialize_from_imagenet(model.trunk)
        log("trunk initialised from torchvision's ImageNet VGG-16 (converted as DeepLab did)")
    if config.init_from and not config.train_head_only:  # a frozen share-net was loaded when it was built
        state, _ = load_checkpoint(config.init_from)
        own = model.state_dict()
        matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(matching, strict=False)
        skipped = sorted(set(own) - set(matching))
        log(f"initialised {len(matching)} tensors from {config.init_from}" + (f"; fresh: {skipped}" if skipped else ""))


def _metadata(
    config: TrainConfig,
    model: MultiScaleNet,
    classes,
    palette,
    extra_training: dict,
    metrics: dict,
    share_net: CheckpointMetadata | None = None,
) -> CheckpointMetadata:
    name = f"{config.dataset} {config.trunk} x{config.width:g} {head_phrase(config.head, config.merge)}"
    if share_net is not None:  # the network is the init checkpoint's; say where it came from
        name = f"{model.config.trunk.name} + {config.head} attention head trained on {config.dataset}"
        extra_training = {"share_net_from": config.init_from, **_share_net_origin(share_net), **extra_training}
    return CheckpointMetadata(
        model=model.config,
        classes=classes,
        palette=palette,
        mean=share_net.mean if share_net is not None else IMAGENET_MEAN,
        std=share_net.std if share_net is not None else IMAGENET_STD,
        scale_range=config.scale_range(),
        name=name,
        training={"config": config.to_dict(), **extra_training},
        metrics=metrics,
    )


def _share_net_origin(share_net: CheckpointMetadata) -> dict:
    """What an imported network's metadata says about its source, carried into the trained checkpoint."""
    keys = ("imported_from", "photo_model", "dataset", "source", "output_stride")
    return {key: share_net.training[key] for key in keys if key in (share_net.training or {})}


def _folder_classes(config: TrainConfig, classes) -> tuple[tuple[str, ...], tuple]:
    """(classes, palette) for a data set that names no classes or colours: the init_from checkpoint's, or by name."""
    from ..dataset_palettes import palette_for_classes

    if classes is not None:
        return tuple(classes), palette_for_classes(classes)
    if not config.init_from:
        raise ValueError(
            f"dataset {config.dataset} names no classes; train an attention head on an imported network "
            "(--train-head-only --init-from FILE.pt), whose classes the masks then use"
        )
    _, metadata = load_checkpoint(config.init_from)
    return metadata.classes, metadata.palette


def _frozen_share_net_model(config: TrainConfig, classes) -> tuple[MultiScaleNet, CheckpointMetadata]:
    """``init_from``'s network (trunk and score head, frozen) with a fresh attention head of ``config``'s kind."""
    state, share_net = load_checkpoint(config.init_from)
    if share_net.model.trunk.name != config.trunk:
        raise ValueError(
            f"--init-from {config.init_from} holds a {share_net.model.trunk.name} "
            f"network; set --trunk {share_net.model.trunk.name}"
        )
    if len(share_net.classes) != len(classes):
        raise ValueError(
            f"--init-from {config.init_from} predicts {len(share_net.classes)} classes, the dataset {config.dataset} "
            f"has {len(classes)}; a frozen score head cannot change its classes"
        )
    model_config = replace(
        share_net.model,
        head=HeadConfig(kind=config.head, hidden_channels=config.head_hidden_channels, dropout=config.dropout),
        scales=config.scales,
        merge=ATTENTION,
    )
    model = build_model(model_config)
    shared = {key: value for key, value in state.items() if not key.startswith(ATTENTION_HEAD.attribute + ".")}
    missing, unexpected = model.load_state_dict(shared, strict=False)
    not_loaded = [key for key in missing if not key.startswith(ATTENTION_HEAD.attribute + ".")]
    if not_loaded or unexpected:
        raise CheckpointError(
            f"--init-from {config.init_from}: its weights do not fit its own network ({(not_loaded or unexpected)[:3]})"
        )
    return model.freeze_share_net(), share_net


def machine_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} ({platform.node()})"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"


@dataclass(frozen=True)
class _RunSetting:
    """What this session of a run trains on, where and how; the same for all its steps."""

    config: TrainConfig
    out_dir: Path
    device: torch.device
    rank: int
    world_size: int
    train_pairs: object
    val_pairs: object
    classes: tuple[str, ...]
    palette: tuple
    # bf16 autocast where it pays: CUDA, and CPUs with AMX, where a width-1/4 training step ran
    # 2.6x faster than in float32 (weights, loss and Eq. 1-2 stay float32).
    autocast: bool
    class_weights: torch.Tensor | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def state_path(self) -> Path:
        return self.out_dir / "state.pt"

    @property
    def channels_last(self) -> bool:
        # On the CPU the oneDNN convolutions run faster on channels-last tensors.
        return self.device.type == "cpu" and self.world_size == 1


@dataclass
class _RunState:
    """What a run carries from step to step; state.pt saves it (with the RNG) so that the run can continue."""

    model: MultiScaleNet
    optimizer: torch.optim.Optimizer
    share_net: CheckpointMetadata | None  # the init checkpoint's metadata when only a head trains on it
    step: int = 0  # steps done
    history: list[dict] = field(default_factory=list)
    elapsed_before_s: float = 0.0  # training time of the run's earlier sessions
    best_miou: float | None = None

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The input normalisation: the imported network's when training a head on it, else ImageNet's."""
        if self.share_net is not None:
            return self.share_net.mean, self.share_net.std
        return IMAGENET_MEAN, IMAGENET_STD


def _run_setting(config: TrainConfig) -> _RunSetting:
    """This process's place in the run (rank, device), its run folder, and the data sets."""
    rank, world_size, local_rank = _distributed_context()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_pairs, val_pairs, classes, palette = build_datasets(config)
    if classes is None or palette is None:  # folder-style data sets: names from the share-net, colours by name
        classes, palette = _folder_classes(config, classes)
    return _RunSetting(
        config=config,
        out_dir=out_dir,
        device=device,
        rank=rank,
        world_size=world_size,
        train_pairs=train_pairs,
        val_pairs=val_pairs,
        classes=classes,
        palette=palette,
        autocast=config.amp and bf16_pays_off(device),
        class_weights=config.class_weights(len(classes)),
    )


def _start_or_continue(setting: _RunSetting, resume: bool, say) -> _RunState:
    """The run folder's state.pt loaded into a freshly built model and optimiser, or, without one, a new run.

    The model is built after seeding in both cases, so a new run's initial weights depend only on the seed.
    """
    config = setting.config
    torch.manual_seed(config.seed)
    share_net = None
    if config.train_head_only:
        model, share_net = _frozen_share_net_model(config, setting.classes)
    else:
        model = build_model(config.model_config(len(setting.classes)))
    run = _RunState(model, _build_optimizer(model, config), share_net)
    if resume and setting.state_path.exists():
        _load_state(run, setting)
        say(f"continuing {setting.out_dir} from step {run.step} of {config.iterations}")
    else:
        _initialise(model, config, say)
        if setting.is_main:
            # A new run in a folder that holds an old one (--no-resume): the old state.pt goes now, not at the new
            # run's first checkpoint, so that a kill before it cannot continue the old run under the new history.
            setting.state_path.unlink(missing_ok=True)
            _write_history(run, setting)
    return run


def _load_state(run: _RunState, setting: _RunSetting) -> None:
    """Restore ``run`` from state.pt, refusing one written by another program or with other settings."""
    state_path = setting.state_path
    state = read_torch_file(state_path, what="training state")
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"training state {state_path}: not a segscale training state; move it away or use another --out-dir"
        )
    saved = state["config"]
    differences = sorted(
        k for k, v in setting.config.to_dict().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES
    )
    if differences:
        raise ValueError(
            f"{setting.out_dir} holds a run with other settings ({', '.join(differences)}); continue it with the "
            "same settings, or start a new run with another --out-dir (or --no-resume to overwrite)"
        )
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    # Dropout draws from the global RNG: the continued run draws what the uninterrupted one would have.
    torch.set_rng_state(state["torch_rng"])
    run.step, run.history = state["step"], list(state["history"])
    run.elapsed_before_s, run.best_miou = state["elapsed_s"], state.get("best_miou")


def _save_state(run: _RunState, setting: _RunSetting, elapsed: float) -> None:
    """Write state.pt atomically (a kill while writing leaves the previous one); the main process's job."""
    if not setting.is_main:
        return
    atomic_torch_save(
        {
            "format": STATE_FORMAT,
            "config": setting.config.to_dict(),
            "step": run.step,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": run.history,
            "elapsed_s": elapsed,
            "best_miou": run.best_miou,
        },
        setting.state_path,
    )


def _network_on_device(model: MultiScaleNet, setting: _RunSetting) -> nn.Module:
    """``model`` moved to the device; what the steps call: the model itself, or its DDP wrapper under torchrun."""
    model.to(setting.device)
    if setting.channels_last:
        model.to(memory_format=torch.channels_last)
    if setting.world_size == 1:
        return model
    return DistributedDataParallel(model, device_ids=[setting.device.index] if setting.device.type == "cuda" else None)


def _step_loader(run: _RunState, setting: _RunSetting) -> torch.utils.data.DataLoader:
    """The batches of the steps still to do, each computed from (seed, step) alone; this rank's slice of each."""
    config = setting.config
    mean, std = run.mean_std
    return torch.utils.data.DataLoader(
        StepBatches(setting.train_pairs, config, mean, std, setting.rank, setting.world_size),
        batch_size=None,
        sampler=range(run.step, config.iterations),
        num_workers=config.workers,
        persistent_workers=False,
        prefetch_factor=2 if config.workers else None,
        # Its own generator: starting an iterator otherwise draws from the global RNG, which
        # would shift dropout's random stream in a resumed run.
        generator=torch.Generator().manual_seed(config.seed),
        worker_init_fn=_ignore_stop_signals if config.workers else None,
    )


def _optimisation_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, setting: _RunSetting, step: int, images, labels
) -> LossTerms:
    """One SGD/AdamW step at the schedule's rate for ``step``: forward on the step's scale set, loss, update."""
    config, device = setting.config, setting.device
    factor = _lr_factor(config, step)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    images = images.to(device, non_blocking=True)
    labels = labels.to(device, non_blocking=True)
    if setting.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    scales = sample_scale_set(config, step)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=setting.autocast):
        output = net(images, scales=scales)
    terms = extra_supervision_loss(
        output,
        labels,
        extra_supervision=config.extra_supervision,
        class_weights=setting.class_weights,
        hard_pixel_fraction=config.hard_pixel_fraction,
        align_corners=getattr(net, "module", net).align_corners,  # DDP wraps the model; its trunk's convention
    )
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    optimizer.step()
    if not torch.isfinite(terms.total):
        raise FloatingPointError(f"the loss became {terms.total.item()} at step {step}; lower --lr")
    return terms


def _every_rank_stops(requested: bool, setting: _RunSetting) -> bool:
    """Whether to stop after this step: all ranks stop together when any of them was asked to."""
    if setting.world_size == 1:
        return requested
    flag = torch.tensor([1.0 if requested else 0.0], device=setting.device)
    dist.all_reduce(flag)
    return bool(flag.item())


def _note(message: str) -> None:
    """A line above the progress bar on a terminal; printed also when the bar is off."""
    tqdm.write(message, file=sys.stderr)


def _write_history(run: _RunState, setting: _RunSetting) -> None:
    """history.jsonl written whole from the run's own history, not appended to: a run resumed after a kill
    repeats the validations since its last state.pt, and each would otherwise add a second line."""
    lines = "".join(json.dumps(record) + "\n" for record in run.history)
    write_atomically(setting.out_dir / "history.jsonl", lines.encode())


def _validate_and_save_weights(run: _RunState, setting: _RunSetting, loss: float, elapsed: float) -> None:
    """Score the validation set; append it to history.jsonl; write model.pt, and best.pt when the score is the best.

    The main process's job; the model is back in training mode afterwards.
    """
    config, model, classes = setting.config, run.model, setting.classes
    mean, std = run.mean_std
    scores = evaluate_pairs(
        model, setting.val_pairs, len(classes), mean, std, model.config.scales, model.config.merge, setting.device
    )
    miou = scores.miou
    record = {
        "step": run.step,
        "val_miou": miou,
        "elapsed_s": round(elapsed, 1),
        "scales": list(model.config.scales),
        "class_iou": dict(zip(classes, scores.class_iou)),
        "loss": loss,
    }
    run.history.append(record)
    _write_history(run, setting)
    _note(
        f"step {run.step}: validation mIoU {miou:.4f} on "
        f"{len(setting.val_pairs)} images ({tqdm.format_interval(elapsed)})"
    )
    metrics = {"val_miou": miou, "val_images": len(setting.val_pairs), "step": run.step}
    extra = {
        "steps": run.step,
        "wall_time_s": round(elapsed, 1),
        "machine": machine_description(),
        "processes": setting.world_size,
    }
    metadata = _metadata(config, model, classes, setting.palette, extra, metrics, run.share_net)
    save_checkpoint(setting.out_dir / "model.pt", model, metadata)
    if run.best_miou is None or miou > run.best_miou:
        run.best_miou = miou
        save_checkpoint(setting.out_dir / "best.pt", model, metadata)
    _set_training_mode(model, config.freeze_norm_statistics)  # validation left it in eval mode


def _advance_bar(bar: tqdm, terms: LossTerms, optimizer: torch.optim.Optimizer, images_per_s: float) -> None:
    bar.set_postfix(
        loss=terms.total.item(),
        fused=terms.fused.item(),
        lr=optimizer.param_groups[0]["lr"],
        img_s=f"{images_per_s:.1f}",
        refresh=False,
    )
    bar.update(1)


def _validate_and_checkpoint(run: _RunState, setting: _RunSetting, loss: float, elapsed: float, stopping: bool) -> None:
    """After a step: validation, model.pt and best.pt every ``val_every`` steps and at the end; state.pt every
    ``checkpoint_every`` steps, at the end, and before stopping."""
    config = setting.config
    finished = run.step == config.iterations
    if run.step % config.val_every == 0 or finished:
        if setting.is_main:
            _validate_and_save_weights(run, setting, loss, elapsed)
        if setting.world_size > 1:
            dist.barrier()  # the other ranks wait here while the main process validates
    if run.step % config.checkpoint_every == 0 or finished or stopping:
        _save_state(run, setting, elapsed)


def _describe(run: _RunState, setting: _RunSetting) -> str:
    config, model = setting.config, run.model
    return (
        f"training {model.config.trunk.name} x{model.config.trunk.width:g} "
        f"({sum(p.numel() for p in model.parameters()):,} parameters), {config.head} "
        f"head{' only (share-net frozen)' if config.train_head_only else ''}, merge {config.merge}, E-Supv "
        f"{'on' if config.extra_supervision else 'off'}, {setting.world_size} process(es) on "
        f"{setting.device}{' with bf16 autocast' if setting.autocast else ''}, "
        f"batch {config.batch_size} x {config.crop_size}px"
    )


def train(config: TrainConfig, *, resume: bool = True, log=None, progress: bool = True) -> TrainResult:
    """Run (or continue) a training run; returns when done or interrupted (its state saved)."""
    setting = _run_setting(config)
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    say = log if setting.is_main else (lambda message: None)
    run = _start_or_continue(setting, resume, say)
    net = _network_on_device(run.model, setting)
    loader = _step_loader(run, setting)

    start_step = run.step
    started = time.perf_counter()
    interrupted = False
    _set_training_mode(run.model, config.freeze_norm_statistics)
    with _StopRequest() as stop:
        say(_describe(run, setting))  # once the stop handler is in place: from here on, a stop saves the state
        bar = progress_bar(
            config.iterations, "train", initial=start_step, unit="step", enabled=setting.is_main and progress
        )
        for step, (images, labels) in zip(range(start_step, config.iterations), loader):
            terms = _optimisation_step(net, run.optimizer, setting, step, images, labels)
            run.step = step + 1
            elapsed = run.elapsed_before_s + time.perf_counter() - started
            images_per_s = (
                (run.step - start_step) * config.batch_size * setting.world_size / (time.perf_counter() - started)
            )
            _advance_bar(bar, terms, run.optimizer, images_per_s)
            stopping = _every_rank_stops(stop.requested, setting)
            _validate_and_checkpoint(run, setting, terms.total.item(), elapsed, stopping)
            if stopping:
                interrupted = True
                if setting.is_main:
                    _note(
                        f"interrupted: state saved at step {run.step} in {setting.state_path}; "
                        "run the same command to continue"
                    )
                break
    bar.close()
    wall = run.elapsed_before_s + time.perf_counter() - started
    final = run.history[-1]["val_miou"] if run.history else None
    return TrainResult(setting.out_dir, run.step, final, run.best_miou, wall, interrupted)
