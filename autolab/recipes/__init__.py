"""The training recipes: single-file `train.py` templates copied into a workspace.

Each is a script a person reads top to bottom; it imports the harness in one line and keeps its
hyperparameters as commented UPPER_CASE constants in one block at the top.
"""

from importlib import resources

from autolab.errors import UsageError

# Recipe name -> its file in this package.
RECIPES = {"gpt": "gpt.py", "mlp": "mlp.py"}


def recipe_source(name: str) -> str:
    """The text of recipe `name`, as it is copied into a workspace's train.py."""
    if name not in RECIPES:
        known = ", ".join(sorted(RECIPES))
        raise UsageError(f"unknown recipe {name!r}; known recipes: {known}")
    return resources.files(__package__).joinpath(RECIPES[name]).read_text(encoding="utf-8")
