"""One `autolab train` in the ledger: its run (or its --repeat runs) recorded as the loop
records an experiment, then one verdict (`verdict.judge`) against the person's best."""

from autolab.manual.record import ManualRecorder
from autolab.manual.verdict import judge
from autolab.research.policy import Noise
from autolab.track.ledger import Ledger, ResultRecord
from autolab.track.standings import manual_noise, manual_standings


class TrainRecording:
    """The ledger's side of one `autolab train`: its run(s), then one verdict."""

    def __init__(self, recorder, message: str | None):
        self.recorder = recorder
        self.message = message
        before = manual_standings(recorder.ledger)
        self.best = None if before.best_number is None else (before.best_number, before.best_score)
        self.noise = manual_noise(recorder.ledger)
        self.first: int | None = None
        self.commit = self.parent = ""
        self.current: int | None = None
        self.done: list = []  # (number, result) of the scored runs, first first
        self.writer = None

    @classmethod
    def open(cls, workspace, message: str | None) -> "TrainRecording":
        workspace.state_dir.mkdir(exist_ok=True)
        recorder = ManualRecorder(workspace, Ledger.for_workspace(workspace.root))
        recorder.check_no_research_running()
        recorder.close_abandoned()
        return cls(recorder, message)

    def begin(self, source: str, seed: int, index: int, repeats: int) -> int:
        if index == 0:
            description = self.message or self.recorder.describe(source)
        else:
            description = f"repeat {index + 1}/{repeats} of exp {self.first} (seed {seed})"
        number, self.commit, self.parent = self.recorder.begin(
            source, description, seed, self.first, self.commit, self.parent
        )
        self.first = self.first or number
        self.current = number
        return number

    def on_metrics(self):
        on_metrics, flush = self.recorder.metrics_writer(self.current)
        on_metrics.flush = flush
        return on_metrics

    def scored(self, result) -> None:
        self.done.append((self.current, result))

    def failed(self, result) -> None:
        self.recorder.finish(self.current, result, result.status, result.reason)

    def interrupted(self) -> None:
        pending = {self.current, self.first} | {n for n, _ in self.done}
        for number in sorted(n for n in pending if n is not None):
            view = self.recorder.ledger.experiment(number)
            if view is not None and view.status == "running":
                stopped = ResultRecord("interrupted", "stopped with Ctrl-C")
                self.recorder.ledger.add_result(number, stopped)

    def judge(self):
        """The verdict on the scored runs, recorded: the repeats first, the first run last
        with the score the verdict used (the mean of a --repeat), as the loop records a
        re-check."""
        scores = [result.val_bpb for _, result in self.done]
        verdict = judge(scores, self.best, self.noise[0] if self.noise else None)
        first_number, first_result = self.done[0]
        for number, result in self.done[1:]:
            self.recorder.finish(number, result, verdict.status,
                                 f"repeat of exp {first_number}: {verdict.reason}")  # fmt: skip
        score, flags = None, {}
        if len(scores) > 1:
            noise = Noise.measure(scores)
            score = noise.baseline_bpb
            flags = {"repeat_scores": scores,
                     "noise": {"mean": noise.baseline_bpb, "spread": noise.spread,
                               "runs": noise.runs}}  # fmt: skip
        self.recorder.finish(first_number, first_result, verdict.status, verdict.reason, score,
                             flags)  # fmt: skip
        if verdict.status == "keep":
            shown = score if score is not None else first_result.val_bpb
            self.recorder.new_best_alert(first_number, shown, self.best[1] if self.best else None)
        self.recorder.ledger.close()
        return verdict, first_number
