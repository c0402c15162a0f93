"""What a child forked by the zygote does: run train.py, score a run in the sealed evaluator, or
sample a scored run for `autolab train` (autolab.sampling_launcher).

A training child behaves as `python train.py` would in a fresh process: its own session (so
the runner can kill its whole group), the script's directory first on sys.path, its path as
argv[0], run as `__main__`, the environment it was given and nothing else, output to the log,
a traceback and exit code 1 on an uncaught exception. An evaluator child runs
`autolab.evaluation.sealed.evaluate_run` and writes its verdict as the last line of its output.

A child always ends with os._exit: it must never return into the zygote's loop.
"""

import json
import os
import random
import runpy
import sys
import traceback


def run_child(kind: str, job: dict) -> None:
    code = 1
    try:
        os.setsid()
        redirect_output(job["log"])
        reseed_python_rngs()
        run = {"train": run_training, "evaluate": run_evaluation, "sample": run_sampling}[kind]
        code = run(job)
    except SystemExit as stop:
        code = exit_code(stop)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def redirect_output(log_path: str) -> None:
    """fds 1 and 2 to the log (appending), fd 0 to /dev/null: nothing of the zygote's pipes."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def reseed_python_rngs() -> None:
    """A forked child inherits the zygote's random states; a fresh process would have drawn
    new ones from the OS. (torch's default generator starts from a fixed seed either way.)"""
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def run_training(job: dict) -> int:
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    script = job["script"]
    sys.argv = [script]
    sys.path.insert(0, os.path.dirname(script))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException as err:
        # The traceback from the script's own frames on, as `python train.py` shows it.
        tb = err.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        traceback.print_exception(type(err), err, tb or err.__traceback__)
        return 1
    return 0


def enter_scratch(job: dict) -> None:
    """An evaluator's or sampler's start: its scratch folder as cwd, and the run's threads."""
    import torch

    os.chdir(job["scratch"])
    if job.get("threads"):  # a forked child has all the cores; runs sharing the machine don't
        torch.set_num_threads(job["threads"])


def run_evaluation(job: dict) -> int:
    from pathlib import Path

    import torch

    from autolab.evaluation.sealed import evaluate_run

    enter_scratch(job)
    torch.manual_seed(0)
    with torch.inference_mode():
        verdict = evaluate_run(
            Path(job["run_dir"]), Path(job["data_dir"]), Path(job["val"]), job["device"]
        )
    print(json.dumps(verdict), flush=True)
    return 0


def run_sampling(job: dict) -> int:

    from autolab.errors import UsageError
    from autolab.sampling import sample_texts

    enter_scratch(job)
    try:
        texts = sample_texts(job["run_dir"], job["data_dir"], job["count"], seed=job["seed"])
    except UsageError as err:
        print(json.dumps({"error": str(err)}), flush=True)
        return 2
    print(json.dumps({"texts": texts}), flush=True)
    return 0


def exit_code(stop: SystemExit) -> int:
    """The status Python gives `sys.exit(x)`: None 0, an int itself, anything else printed, 1."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code & 0xFF
    print(stop.code, file=sys.stderr)
    return 1
