"""The red team's "coding agent": each call writes the next attack as train.py.

    python agent.py COUNTER ATTACK [ATTACK ...] {prompt_file}

COUNTER is a file holding how many attacks were handed over so far.
"""

import os
import pathlib
import sys

here = pathlib.Path(__file__).parent
counter = pathlib.Path(sys.argv[1])
attacks = sys.argv[2:-1]
done = int(counter.read_text()) if counter.exists() else 0
name = attacks[done % len(attacks)]
counter.write_text(str(done + 1))
honest = (here / "_honest.py").read_text()
parts = {"before": "", "finish": ""}
where = "before"
for line in (here / f"{name}.py").read_text().splitlines(keepends=True):
    if line.strip().startswith("# --- ") and line.strip().endswith(" ---"):
        where = line.strip()[6:-4]
        continue
    parts[where] += line
source = honest.replace("# --- before ---\n", parts["before"]).replace(
    "# --- finish ---\n", parts["finish"]
)
source = source.replace("RED_TEAM_PORT", os.environ.get("RED_TEAM_PORT", "9"))
pathlib.Path("train.py").write_text(source)
pathlib.Path(".autolab/description.txt").write_text(f"attack: {name}\n")
