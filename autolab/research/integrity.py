"""Notice an experiment that rewrites autolab's own installed code.

The sealed evaluator and the harness are installed autolab code, not workspace files. An
experiment runs with the same user rights, so it could edit them (say, make `evaluate_bpb`
return 0 for everyone after it). The guard snapshots every source file of the autolab package
right before an experiment runs and, after it, names the files that changed and keeps copies
of the changed versions. The loop then marks the experiment invalid and ends the session: no
later score can be trusted until a person looks. Nothing is put back automatically, because
the change may be a person editing autolab at that moment, and that work must not be lost.
It does not cover other installed packages (torch, numpy) or compiled .pyc files: that would
need a real sandbox.
"""

from pathlib import Path

import autolab

PACKAGE_DIR = Path(autolab.__file__).resolve().parent
GUARDED_SUFFIXES = (".py", ".md")


class PackageGuard:
    def __init__(self, package_dir: Path = PACKAGE_DIR):
        self.package_dir = package_dir
        self.snapshot: dict[Path, bytes] = {}

    def take(self) -> None:
        self.snapshot = {path: path.read_bytes() for path in self._files()}

    def _files(self) -> list[Path]:
        return sorted(
            p for p in self.package_dir.rglob("*") if p.is_file() and p.suffix in GUARDED_SUFFIXES
        )

    def changed(self, keep_dir: Path) -> list[str]:
        """Files added, changed or deleted since `take`, relative to the package; copies of
        the current versions go to `keep_dir`."""
        if not self.snapshot:
            return []
        changed = []
        current = set(self._files())
        for path in sorted(current | set(self.snapshot)):
            if path in current and path.read_bytes() == self.snapshot.get(path):
                continue
            relative = path.relative_to(self.package_dir)
            changed.append(str(relative))
            if path in current:
                kept = keep_dir / relative
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_bytes(path.read_bytes())
        return changed
