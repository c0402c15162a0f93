"""The red team: hostile train.py fragments (see README.md) and the workspace they start from."""
