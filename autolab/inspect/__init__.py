"""Looking inside a trained model: next-token distributions and per-token surprisal.

`select` turns `--experiment N|best|baseline|last` into a run directory; `next_token` and
`surprisal` compute from the exported model with autolab code only (never train.py).
"""
