"""Running experiments on a Ray cluster (`autolab research --ray ADDRESS`).

The driver (the machine running `autolab research`) keeps everything on the referee's side: the
ledger, git, the sealed split and the sealed evaluator. A node gets only what an experiment
gets locally: train.py's text, the seed, the run settings and the dataset's public shards
(checked against the driver's hashes), and it trains in the sandbox where bwrap exists there.
It hands back the run directory (the exported model, metrics, log); the driver scores it.

    runner.py  the driver's side: one experiment as a Ray task, a lost node retried once
    node.py    the task body that runs on a node
    shards.py  the public shards, shipped through Ray's object store and checked by hash
"""
