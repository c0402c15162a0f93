"""The training recipes: single-file `train.py` templates copied into a workspace.

Each is a script a person reads top to bottom; it imports the harness in one line and keeps its
hyperparameters as commented UPPER_CASE constants in one block at the top. The files hold the
CPU sizes; `recipe_source(name, "cuda")` rewrites the few constants a GPU wants bigger, so a
workspace's train.py holds one set of constants, all of them in effect on its device.
"""

from importlib import resources

from autolab.errors import UsageError

# Recipe name -> its file in this package.
RECIPES = {"gpt": "gpt.py", "mlp": "mlp.py"}
DEVICES = ("cpu", "cuda")  # what a recipe can be sized for

# Recipe -> device -> the constants that differ from the file's CPU values. Not measured on a GPU
# yet (bench/gpu.py is the command that will): a deeper model (width 256, as before the CPU
# sizes went shallow and wide), a longer context, bfloat16 autocast, compiled. torch's thread
# count is not a recipe constant: the harness sets it (RunSettings.threads).
SIZES = {
    "gpt": {
        "cuda": {
            "DEPTH": 8,
            "ASPECT_RATIO": 32,
            "SEQ_LEN": 2**9,
            "BATCH_SIZE": 2**6,
            "BIGRAM_BUCKETS": 2**16,  # a GPU run's BPE vocabulary has far more token pairs
            "BF16_AUTOCAST": True,
            "COMPILE": True,
        }
    },
    "mlp": {},
}


def recipe_source(name: str, device: str = "cpu") -> str:
    """The text of recipe `name` sized for `device` (cpu | cuda), as copied into train.py."""
    from autolab.research.constants import apply_changes

    if name not in RECIPES:
        known = ", ".join(sorted(RECIPES))
        raise UsageError(f"unknown recipe {name!r}; known recipes: {known}")
    if device not in DEVICES:
        raise UsageError(f"cannot size a recipe for {device!r}: use one of {', '.join(DEVICES)}")
    source = resources.files(__package__).joinpath(RECIPES[name]).read_text(encoding="utf-8")
    return apply_changes(source, SIZES[name].get(device, {}))
