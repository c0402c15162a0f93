"""What a run directory holds, by name: a contract between the training process, the runner, the
evaluator and the views. Kept apart from the code that writes them, which needs torch, so that
the runner and the views can find the files without loading it."""

METRICS_FILE = "metrics.jsonl"  # one JSON object per logged step, appended live
RESULT_FILE = "result.json"  # the summary values the training process reports
MODEL_FILE = "model.pt2"  # the handed-over program the evaluator scores
SAMPLER_FILE = "sampler.pt2"  # the same weights for shorter inputs; only sampling loads it
MODEL_INFO_FILE = "model.json"
