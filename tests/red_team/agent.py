"""The red team's "coding agent": each call writes the next attack as train.py.

    python agent.py ATTACK [ATTACK ...] {prompt_file}

It runs in the agent's sandbox, where train.py and the description file are all it may write,
so it keeps no count of its own: the attacks already tried are those the prompt names
("attack: NAME", in its results table), and it hands over the first one not yet tried.
"""

import os
import pathlib
import re
import sys

here = pathlib.Path(__file__).parent
attacks = sys.argv[1:-1]
prompt = pathlib.Path(sys.argv[-1]).read_text()
tried = set(re.findall(r"attack: (\w+)", prompt))
name = next((a for a in attacks if a not in tried), attacks[-1])
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
