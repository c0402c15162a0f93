"""Guard autolab's own installed code against an experiment that rewrites it.

The sealed evaluator and the harness are installed autolab code, not workspace files. An
experiment runs with the same user rights, so it could edit them (say, make `evaluate_bpb`
return 0 for everyone after it). The guard snapshots every source file of the autolab package
right before an experiment runs and, after it, puts back any that changed and names them; the
changed versions are kept in the run directory, so nothing is lost even if the change was a
person editing autolab at that moment.
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

    def restore(self, keep_dir: Path) -> list[str]:
        """Put back changed or deleted files, move added ones into `keep_dir` (with copies of
        the changed versions); returns their paths relative to the package."""
        if not self.snapshot:
            return []
        tampered = []
        current = set(self._files())
        for path in sorted(current | set(self.snapshot)):
            relative = path.relative_to(self.package_dir)
            original = self.snapshot.get(path)
            if path in current and path.read_bytes() == original:
                continue
            tampered.append(str(relative))
            if path in current:
                kept = keep_dir / relative
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_bytes(path.read_bytes())
            if original is None:
                path.unlink()
            else:
                path.write_bytes(original)
        return tampered
