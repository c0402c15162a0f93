"""The research loop: propose a change to train.py, run it, score it sealed, keep or discard."""
