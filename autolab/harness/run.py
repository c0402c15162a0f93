"""`Run`: everything a recipe gets from the fixed harness, in one object.

    run = Run.from_env()
    x, y = run.get_batch(BATCH_SIZE, SEQ_LEN)        # (B, T) int64 on run.device
    ... forward, backward, optimizer step ...
    run.watch(model, context_len=SEQ_LEN)            # optional: a dev-loss curve
    run.step(loss, lr=lr)                            # clock, NaN guard, live metrics
    while not run.time_up: ...
    run.finish(model, context_len=SEQ_LEN)           # hand the model over, print the summary

The harness owns the budget, the batches, the metric and the summary; the recipe owns the model
and the optimisation. The training process only sees the public shards (train and dev);
the score that counts is computed afterwards by autolab in a fresh process.
"""

import json
import math
import os
import resource
import sys
import time

import torch

from autolab.harness.clock import TrainingClock
from autolab.harness.data import BatchSampler, read_meta, read_token_bytes, read_tokens
from autolab.harness.evaluate import evaluate_bpb, score_tokens
from autolab.harness.files import METRICS_FILE, RESULT_FILE, write_atomically
from autolab.harness.handover import export_model
from autolab.harness.settings import RunSettings
from autolab.summary import format_summary

DEV_EVAL_TOKENS = 2**14  # the in-process estimate is quick; the sealed score is the real one
METRICS_INTERVAL_S = 0.5  # how often step metrics are appended and printed
DEV_LOSS_POINTS = 4  # a watched model's dev loss at 1/4, 2/4, 3/4 of the budget (and the end)
EXPLODE_FACTOR = 3.0  # loss above this times the first loss (after warm-up) is divergence

# Dense bf16 peak FLOP/s by device name, for MFU. Unknown devices report no MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "4090": 165e12}


class Run:
    def __init__(self, settings: RunSettings, excluded_steps: int | None = None):
        self.settings = settings
        self.started = time.time()
        self.device = settings.device
        self.seed = settings.seed
        self.budget_seconds = settings.budget_seconds
        self.meta = read_meta(settings.data_dir)
        self.vocab_size: int = self.meta["vocab_size"]
        self.token_bytes = read_token_bytes(settings.data_dir)
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        if settings.threads:  # before the recipe builds anything: its share of the cores
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        self.batches = BatchSampler(
            read_tokens(settings.data_dir / "train.bin", self.meta), self.device, settings.seed
        )
        # CUDA runs usually compile in their first steps; CPU runs have little to warm up.
        if excluded_steps is None:
            excluded_steps = 10 if self.device.startswith("cuda") else 1
        self.clock = TrainingClock(settings.budget_seconds, excluded_steps)
        self._clock_started = False
        self._counted_tokens = 0
        self._tokens_at_last_tick = 0
        self._first_loss: float | None = None
        self._last_log = 0.0
        self._metrics = open(settings.run_dir / METRICS_FILE, "a", buffering=1)
        self._watched: tuple[torch.nn.Module, int] | None = None
        self._dev_points_done = 0
        self._last_loss: float | None = None

    @classmethod
    def from_env(cls, **kwargs) -> "Run":
        """The run the environment describes: a training run, or the learning-rate range test
        `autolab lr-find` asks for (its own kind of run, `lr_range.LRRangeRun`)."""
        settings = RunSettings.from_env()
        if settings.lr_find_steps:
            from autolab.harness.lr_range import LRRangeRun

            return LRRangeRun(settings, **kwargs)
        return cls(settings, **kwargs)

    # -- training ------------------------------------------------------------------------------

    def get_batch(self, batch_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch of training windows: inputs and next-token targets, (B, T) each."""
        if not self._clock_started:  # the budget starts with the first batch, not at import
            self.clock = TrainingClock(self.clock.budget, self.clock.excluded_steps)
            self._clock_started = True
        return self.batches(batch_size, seq_len)

    @property
    def progress(self) -> float:
        return self.clock.progress

    @property
    def token_texts(self) -> list[str]:
        """Each token id's text, from the data's own tokenizer: what a recipe needs to find, say,
        the tokens that hold a line break."""
        from autolab.data.tokenizers import load_tokenizer  # only recipes that ask pay for it

        tokenizer = load_tokenizer(self.settings.data_dir)
        return [tokenizer.decode([i]) for i in range(self.vocab_size)]

    @property
    def time_up(self) -> bool:
        return self.clock.time_up

    @property
    def lr_scale(self) -> float:
        """Multiply learning rates by this: 1.0, except in a learning-rate range test."""
        return 1.0

    def watch(self, model: torch.nn.Module, context_len: int) -> None:
        """Measure `model`'s dev loss a few times while it trains (DEV_LOSS_POINTS), for the
        dashboard's dev-loss curve. The time it takes is left out of the training clock.
        Without it, a run's dev loss is measured once, at the end."""
        self._watched = (model, context_len)

    def step(self, loss: torch.Tensor | float, lr: float | None = None, **extra) -> float:
        """Record one optimizer step; stops the run on a NaN/inf or exploding loss."""
        loss_value = self._tick(loss)
        self._check_loss(loss_value)
        self._last_loss = loss_value
        now = time.perf_counter()
        due = self._dev_loss_due()
        if due:
            extra = {**extra, "dev_loss": self._dev_loss_excluded_from_clock()}
        if due or now - self._last_log >= METRICS_INTERVAL_S or self.clock.time_up:
            self._last_log = now
            self._log_step(loss_value, lr, extra)
        return loss_value

    def _tick(self, loss: torch.Tensor | float) -> float:
        """Count one step on the clock and its tokens; the loss as a float."""
        loss_value = float(loss.item() if isinstance(loss, torch.Tensor) else loss)  # syncs
        excluded_before = self.clock.excluded_seconds
        self.clock.tick()
        new_tokens = self.batches.tokens_served - self._tokens_at_last_tick
        self._tokens_at_last_tick = self.batches.tokens_served
        # Tokens of a step left out of the clock are left out of the throughput too.
        if self.clock.excluded_seconds == excluded_before:
            self._counted_tokens += new_tokens
        return loss_value

    def _dev_loss_due(self) -> bool:
        if self._watched is None or self.clock.time_up:
            return False
        due = self.clock.progress >= (self._dev_points_done + 1) / DEV_LOSS_POINTS
        self._dev_points_done += due
        return due

    def _dev_loss_excluded_from_clock(self) -> float:
        model, context_len = self._watched
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        _, loss = self.dev_scores(model, context_len)
        model.train(was_training)
        self.clock.exclude(time.perf_counter() - started)
        return loss

    def _check_loss(self, loss: float) -> None:
        step = self.clock.steps
        if not math.isfinite(loss):
            self.fail(f"loss is {loss}", step)
        if step <= self.clock.excluded_steps or self._first_loss is None:
            self._first_loss = max(self._first_loss or 0.0, loss)
        elif loss > EXPLODE_FACTOR * self._first_loss:
            self.fail(f"loss exploded to {loss:.3g} (first loss {self._first_loss:.3g})", step)

    def fail(self, reason: str, step: int) -> None:
        print(f"FAIL: {reason} at step {step}", flush=True)
        self._metrics.close()
        sys.exit(1)

    def tokens_per_sec(self) -> float:
        seconds = self.clock.training_seconds
        return self._counted_tokens / seconds if seconds else 0.0

    def _log_step(self, loss: float, lr: float | None, extra: dict, echo: bool = True) -> None:
        record = {
            "step": self.clock.steps,
            "progress": round(self.clock.progress, 4),
            "loss": loss,
            "lr": lr,
            "tokens_per_sec": round(self.tokens_per_sec(), 1),
            "memory_mb": round(peak_memory_mb(self.device), 1),
            "training_seconds": round(self.clock.training_seconds, 3),
            "time": time.time(),
            "tokens": self.batches.tokens_served,
            **extra,
        }
        self._metrics.write(json.dumps(record) + "\n")
        if not echo:
            return
        lr_text = f" | lr {lr:.2e}" if lr is not None else ""
        print(
            f"step {self.clock.steps:05d} ({100 * self.clock.progress:3.0f}%) | loss {loss:.4f}"
            f"{lr_text} | {self.tokens_per_sec() / 1000:.1f}k tok/s"
            f" | {self.clock.seconds_left:.1f}s left",
            flush=True,
        )

    # -- the end -------------------------------------------------------------------------------

    def evaluate_bpb(self, model, seq_len: int) -> float:
        """Quick bits-per-byte estimate on the public dev split (informational)."""
        dev = read_tokens(self.settings.data_dir / "dev.bin", self.meta)
        return evaluate_bpb(
            model, dev, self.token_bytes, seq_len, self.device, max_tokens=DEV_EVAL_TOKENS
        )

    def dev_scores(self, model, seq_len: int) -> tuple[float, float]:
        """(bits per byte, mean loss per token) on the start of the public dev split, the
        loss in the unit of the training loss (nats per token)."""
        dev = read_tokens(self.settings.data_dir / "dev.bin", self.meta)
        with torch.no_grad():
            nats, nbytes, targets = score_tokens(
                model, dev, self.token_bytes, seq_len, self.device, max_tokens=DEV_EVAL_TOKENS
            )
        return nats / (math.log(2) * nbytes), nats / targets

    def finish(
        self,
        model: torch.nn.Module,
        context_len: int,
        flops_per_token: float | None = None,
        sample_len: int | None = None,
    ) -> None:
        """Hand the model over (exported program in the run directory), print the summary and
        end the process: it is the last thing a run does.

        `context_len` is the longest sequence the model accepts. `flops_per_token` (forward and
        backward) feeds MFU on CUDA; it defaults to 6 x parameters. `sample_len`, if shorter
        than `context_len`, is how many tokens sampling feeds the model per generated token
        (the cost of a call grows with the length it was exported for).
        """
        model.eval()
        dev_bpb, dev_loss = self.dev_scores(model, context_len)
        if self._last_loss is not None:  # the end of the dev-loss curve, at the last step
            self._log_step(self._last_loss, None, {"dev_loss": dev_loss}, echo=False)
        try:
            export_model(model, context_len, self.vocab_size, self.settings.run_dir, sample_len)
        except Exception as err:  # the handover is the run's one output: say why it failed
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            self.fail(
                f"the model could not be exported with torch.export: {first_line}", self.clock.steps
            )
        num_params = sum(p.numel() for p in model.parameters())
        tokens_per_sec = self.tokens_per_sec()
        values = {
            "val_bpb": dev_bpb,
            "training_seconds": self.clock.training_seconds,
            "total_seconds": time.time() - self.started,
            "peak_memory_mb": peak_memory_mb(self.device),
            "tokens_per_sec": tokens_per_sec,
            "mfu_percent": mfu_percent(
                self.device, tokens_per_sec, flops_per_token or 6 * num_params
            ),
            "num_steps": self.clock.steps,
            "num_params_M": num_params / 1e6,
            "device": device_label(self.device),
        }
        write_atomically(self.settings.run_dir / RESULT_FILE, json.dumps(values))
        self._metrics.close()
        print(format_summary(values), flush=True)
        sys.stderr.flush()
        os._exit(0)  # everything is written; skip torch's interpreter teardown (~0.5 s)


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def mfu_percent(device: str, tokens_per_sec: float, flops_per_token: float) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    peak = next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)
    return 100 * tokens_per_sec * flops_per_token / peak if peak else None


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name()})"
    return f"cpu ({torch.get_num_threads()} threads)"
