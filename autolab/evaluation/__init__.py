"""The sealed evaluator: scores a handed-over model in a fresh process running autolab code."""
