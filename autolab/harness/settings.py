"""A run's settings, read from the environment the runner gives the training process.

The runner (`autolab train`, `autolab research`) sets these; a person can set them by hand to
run `python train.py` directly. The validation split is deliberately not among them: the
training process never learns where it is (see autolab.evaluation).
"""

import os
from dataclasses import dataclass
from pathlib import Path

# Environment variable -> meaning. Documented once, here.
ENV_DATA_DIR = "AUTOLAB_DATA_DIR"  # public prepared data: train.bin, dev.bin, meta.json, ...
ENV_RUN_DIR = "AUTOLAB_RUN_DIR"  # where the run writes its model, metrics and log
ENV_BUDGET = "AUTOLAB_BUDGET_S"  # training time budget in seconds
ENV_DEVICE = "AUTOLAB_DEVICE"  # auto | cpu | cuda | cuda:N
ENV_SEED = "AUTOLAB_SEED"  # integer seed for torch and the batch sampler
ENV_LR_FIND = "AUTOLAB_LR_FIND"  # steps of a learning-rate range test (autolab lr-find)
ENV_THREADS = "AUTOLAB_THREADS"  # torch's CPU threads, applied by the harness; unset: torch's own
# Which GPU a run sees, when the runner pins it to one (`research --workers`): CUDA's own variable,
# so inside the run that GPU is cuda:0.
ENV_VISIBLE_GPUS = "CUDA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class RunSettings:
    data_dir: Path
    run_dir: Path
    budget_seconds: float
    device: str
    seed: int
    lr_find_steps: int = 0  # > 0: this run is a learning-rate range test, not a training run
    # torch's CPU threads (the harness calls torch.set_num_threads); 0: torch's default. The
    # runner sets it, so runs sharing a machine divide its cores instead of each taking them all.
    threads: int = 0
    gpu: int | None = None  # the one GPU (as nvidia-smi numbers them) the run sees; None: all

    @classmethod
    def from_env(cls, environ=os.environ) -> "RunSettings":
        missing = [k for k in (ENV_DATA_DIR, ENV_RUN_DIR) if not environ.get(k)]
        if missing:
            raise SystemExit(
                f"train.py needs {', '.join(missing)} in its environment; "
                "run it with `autolab train` inside a workspace"
            )
        try:
            device = resolve_device(environ.get(ENV_DEVICE, "auto"))
        except ValueError as err:
            raise SystemExit(str(err)) from None
        return cls(
            data_dir=Path(environ[ENV_DATA_DIR]),
            run_dir=Path(environ[ENV_RUN_DIR]),
            budget_seconds=float(environ.get(ENV_BUDGET, "60")),
            device=device,
            seed=int(environ.get(ENV_SEED, "0")),
            lr_find_steps=int(environ.get(ENV_LR_FIND, "0")),
            threads=int(environ.get(ENV_THREADS, "0")),
        )

    def to_env(self) -> dict[str, str]:
        return {
            ENV_DATA_DIR: str(self.data_dir),
            ENV_RUN_DIR: str(self.run_dir),
            ENV_BUDGET: f"{self.budget_seconds:g}",
            ENV_DEVICE: self.device,
            ENV_SEED: str(self.seed),
            **({ENV_LR_FIND: str(self.lr_find_steps)} if self.lr_find_steps else {}),
            **({ENV_THREADS: str(self.threads)} if self.threads else {}),
            **({ENV_VISIBLE_GPUS: str(self.gpu)} if self.gpu is not None else {}),
        }

    @property
    def scoring_device(self) -> str:
        """The device the sealed evaluator scores on: it sees every GPU, so a run pinned to
        GPU g (seen inside as cuda) is scored on cuda:g."""
        if self.gpu is not None and self.device.startswith("cuda"):
            return f"cuda:{self.gpu}"
        return self.device


def resolve_device(requested: str) -> str:
    """`auto` means CUDA when there is one; asking for CUDA without one is an error."""
    if requested == "cpu":
        return requested  # without loading torch (~1.4 s) only to hear the CPU is there
    if requested != "auto" and not requested.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}: use auto, cpu or cuda")
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} asked for, but torch sees no CUDA device")
    return requested
