"""The warm processes an experiment's processes are forked from.

Training and the sealed evaluator run on opposite sides of the trust boundary. With `sandbox`
isolation the training zygote runs inside the experiment's sandbox (autolab.sandbox) and the
evaluator's zygote outside it, running referee code only: nothing the experiment starts can
reach the process that scores it. With `process` isolation one zygote forks both, as before
the sandbox existed.

A session keeps one `Workers` for all its experiments, so each experiment pays a fork, not a
torch import. A zygote that dies is replaced on the next request; one that died while an
experiment ran makes that experiment invalid (autolab.experiment): never a silent restart.
"""

from collections.abc import Sequence
from pathlib import Path

from autolab.data.sealed_store import recorded_hashes
from autolab.sandbox.availability import ISOLATIONS
from autolab.sandbox.layout import SandboxLayout
from autolab.zygote.client import Zygote


class Workers:
    def __init__(
        self,
        isolation: str,
        data_dir: Path,
        val_path: Path | None,
        device: str,
        hidden: Sequence[Path] = (),
    ):
        if isolation not in ISOLATIONS:
            raise ValueError(f"unknown isolation {isolation!r}")
        self.isolation = isolation
        self.data_dir = Path(data_dir)
        # What the sealed store held when the session started; every score checks against it.
        # None on a machine without the sealed split (a Ray node): nothing is scored there.
        self.sealed_hashes = recorded_hashes(Path(val_path).parent) if val_path else {}
        self.device = device
        self.hidden = [Path(p) for p in hidden]
        self._training: Zygote | None = None
        self._evaluator: Zygote | None = None
        self.replaced: list[str] = []  # zygotes that died and were replaced, for the record

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def sandboxed(self) -> bool:
        return self.isolation == "sandbox"

    def training(self) -> Zygote:
        """The zygote train.py is forked from; a new one if it died or the environment changed."""
        if self._training is None or not self._training.usable:
            if self._training is not None:
                self._note_replaced("training", self._training)
                self._training.close()
            layout = None
            if self.sandboxed:
                layout = SandboxLayout(self.data_dir, self.device, hidden=self.hidden)
            self._training = Zygote(layout)
        return self._training

    def evaluator(self) -> Zygote:
        """The zygote the sealed evaluator is forked from: never the sandboxed one."""
        if not self.sandboxed:
            return self.training()
        if self._evaluator is None or not self._evaluator.usable:
            if self._evaluator is not None:
                self._note_replaced("evaluator", self._evaluator)
                self._evaluator.close()
            self._evaluator = Zygote()
        return self._evaluator

    def _note_replaced(self, role: str, zygote: Zygote) -> None:
        if zygote.died:
            self.replaced.append(
                f"the {role} zygote died (exit {zygote.process.returncode}); started a new one"
            )

    def start(self) -> None:
        """Start both zygotes now, so their warm-ups overlap instead of adding up."""
        self.training()
        self.evaluator()

    def close(self) -> None:
        for zygote in (self._training, self._evaluator):
            if zygote is not None:
                zygote.close()
        self._training = self._evaluator = None
