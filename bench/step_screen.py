"""Screen recipe changes at a fixed number of steps, where a 30 s run cannot tell them apart.

A 30 s run's step count swings with the machine's load (280 to 355 steps for one file within an
hour on 2 shared cores), and that swing is larger than most recipe changes. Here the learning-rate
schedule follows steps instead of seconds (progress = step / STEPS), so a run repeats to the
fourth decimal and two train.py files compare at equal work. Each is scored on the sealed val
split, as `autolab train` scores it. A change that makes a step dearer must then be given the
steps 30 s would leave it: pass fewer --steps for it.

    .venv/bin/python bench/step_screen.py train.py other.py --data ../shared/data/names.txt
    .venv/bin/python bench/step_screen.py autolab/recipes/gpt.py --data tinyshakespeare \
        --from ../shared/data/tinyshakespeare.txt --steps 275 --seeds 0,1

Not the measure of a recipe (bench/speed.py is); a way to choose between candidates.
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import autolab.harness.run as harness_run  # noqa: E402
from autolab.data import prepare, sealed_val_path  # noqa: E402
from autolab.evaluation.sealed import evaluate_run  # noqa: E402
from autolab.harness.handover import export_model  # noqa: E402
from autolab.harness.settings import RunSettings  # noqa: E402


class StepClock:
    """TrainingClock's interface, counting steps instead of seconds."""

    def __init__(self, steps: int):
        self.budget, self.steps, self.excluded_steps, self.excluded_seconds = steps, 0, 0, 0.0
        self.started = time.perf_counter()

    def tick(self) -> None:
        self.steps += 1

    def exclude(self, seconds: float) -> None:
        pass

    @property
    def progress(self) -> float:
        return min(1.0, self.steps / self.budget)

    @property
    def time_up(self) -> bool:
        return self.steps >= self.budget

    @property
    def training_seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def seconds_left(self) -> float:
        return 0.0


def screen(train_py: Path, data_dir: Path, steps: int, seed: int) -> dict:
    """Train `train_py` for `steps` steps in this process; its sealed val_bpb (or the sealed
    evaluator's verdict on what it handed over) and ms per step."""
    result = {}

    class StepRun(harness_run.Run):
        def __init__(self, settings):
            super().__init__(settings)
            self.clock = StepClock(steps)

        def get_batch(self, batch_size, seq_len):
            return self.batches(batch_size, seq_len)

        def watch(self, model, context_len):
            pass  # no dev-loss curve: its time would count in ms per step

        def _log_step(self, loss, lr, extra, echo=True):
            pass  # the JSON line at the end is the output

        def finish(self, model, context_len, flops_per_token=None, sample_len=None):
            ms = 1000 * self.clock.training_seconds / max(self.clock.steps, 1)
            result.update(ms_per_step=round(ms, 1))
            # The handover Run.finish makes, without its summary and its exit of the process.
            export_model(model.eval(), context_len, self.vocab_size, self.settings.run_dir,
                         sample_len)  # fmt: skip

    with tempfile.TemporaryDirectory() as run_dir:
        settings = RunSettings(data_dir, Path(run_dir), steps, "cpu", seed)
        os.environ.update(settings.to_env())
        harness_run.Run.from_env = classmethod(lambda cls, **_: StepRun(settings))
        spec = importlib.util.spec_from_file_location(f"screened_{train_py.stem}", train_py)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "muon_variants"):  # the gpt recipe: the same Muon for every file,
            float32 = module.muon_variants()["float32"]  # not whichever one timed faster
            module.fastest_muon = lambda matrices, device: float32(matrices)
        module.main()
        # Scored as `autolab train` scores a run: the handed-over program, on the sealed split.
        verdict = evaluate_run(Path(run_dir), data_dir, sealed_val_path(data_dir), "cpu")
    score = {"val_bpb": round(verdict["val_bpb"], 4)} if "val_bpb" in verdict else verdict
    return {"train_py": str(train_py), "seed": seed, "steps": steps, **score, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_py", nargs="+", type=Path, help="train.py files to compare")
    parser.add_argument("--data", default="names", help="dataset name or path (default: names)")
    parser.add_argument("--from", dest="source", help="a local copy of a named dataset")
    parser.add_argument("--tokenizer", default="char", help="char, byte or bpe:N (default: char)")
    parser.add_argument("--steps", type=int, default=275, help="optimizer steps (default: 275)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    args = parser.parse_args()
    missing = [str(p) for p in args.train_py if not p.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    data_dir = prepare(args.data, args.tokenizer, source_path=args.source).data_dir
    for seed in (int(s) for s in args.seeds.split(",")):
        for train_py in args.train_py:
            print(json.dumps(screen(train_py.resolve(), data_dir, args.steps, seed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
