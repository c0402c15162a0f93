"""`autolab inspect` on real models: one tiny MLP trained once, and a bigram model built by hand.

The MLP is `autolab init --recipe mlp` trained for 2 s; the bigram model is exported through the
harness's own handover, so its per-token losses are known exactly (log of train-split counts).
"""

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from autolab.cli import main
from autolab.data.plot import plot_token_frequencies, train_token_counts
from autolab.errors import UsageError
from autolab.harness.evaluate import evaluate_bpb
from autolab.harness.handover import MODEL_FILE, export_model
from autolab.inspect.next_token import encode_checked, top_next_tokens
from autolab.inspect.select import default_selector, select_run
from autolab.inspect.surprisal import surprisal
from autolab.sampling import load_run
from autolab.track.ledger import ExperimentRecord, Ledger, ResultRecord
from autolab.workspace import load_workspace, prepare_data

ROOT = Path(__file__).resolve().parents[1]
# `python -m autolab`, registering `inspect` if cli.COMMANDS does not list it yet.
AUTOLAB = (
    "import sys; from autolab import cli; "
    "'inspect' in cli.COMMANDS or cli.COMMANDS.append('inspect'); sys.exit(cli.main(sys.argv[1:]))"
)
NAMES = "\n".join(
    "emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily elizabeth "
    "mila ella avery sofia camila aria scarlett victoria madison luna grace chloe penelope layla "
    "riley zoey nora lily eleanor hannah lillian addison aubrey ellie stella natalie zoe".split()
)  # 267 characters: more than one chunk of the bigram's 8-token context and the MLP's 256
BIGRAM_CONTEXT = 8
LEDGER = [
    (1, "baseline", "keep", 3.7),
    (2, "candidate", "keep", 2.9),
    (3, "candidate", "crash", None),
]


def autolab(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOLAB_HOME": str(home), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-c", AUTOLAB, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Bigram(torch.nn.Module):
    """logits[b, t] = log P(next | idx[b, t]) from add-one-smoothed train counts."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Embedding.from_pretrained(log_probs, freeze=True)

    def forward(self, idx):  # (B, T) -> (B, T, V)
        return self.table(idx)


def bigram_log_probs(data_dir: Path, vocab_size: int) -> torch.Tensor:
    from autolab.data import read_tokens
    from autolab.harness.data import read_meta

    train = np.asarray(read_tokens(data_dir / "train.bin", read_meta(data_dir)), dtype=np.int64)
    counts = np.ones((vocab_size, vocab_size))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    return torch.from_numpy(np.log(counts / counts.sum(1, keepdims=True))).float()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with one 2 s `autolab train` run (no ledger), and its data."""
    tmp = tmp_path_factory.mktemp("inspect")
    home, ws = tmp / "home", tmp / "ws"
    env = {**os.environ, "AUTOLAB_HOME": str(home)}
    for args in (["init", str(ws), "--recipe", "mlp", "--budget", "2s"],
                 ["train", "-C", str(ws), "--samples", "0", "--no-record"]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "autolab", *args], env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUTOLAB_HOME", str(home))  # prepare_data in this process: from the cache
        workspace = load_workspace(ws)
        yield {"home": home, "ws": ws, "workspace": workspace,
               "data_dir": prepare_data(workspace).data_dir}  # fmt: skip


def copy_with_bigram(trained, ws: Path):
    """A copy of the trained workspace at `ws` with two runs: 1 the MLP that `autolab train`
    trained, 2 the data's bigram table exported as a model. Returns the bigram's log-probs."""
    shutil.copytree(trained["ws"], ws)
    runs = ws / ".autolab" / "runs"
    shutil.copytree(Path((trained["ws"] / ".autolab" / "last_run").read_text().strip()), runs / "1")
    vocab = load_run(runs / "1", trained["data_dir"])[1]["vocab_size"]
    (runs / "2").mkdir()
    log_probs = bigram_log_probs(trained["data_dir"], vocab)
    export_model(Bigram(log_probs), BIGRAM_CONTEXT, vocab, runs / "2")
    return log_probs


@pytest.fixture(scope="module")
def researched(trained, tmp_path_factory):
    """A copy of the workspace with a ledger: 1 baseline (the MLP), 2 the bigram (best),
    3 a crash with no model."""
    ws = tmp_path_factory.mktemp("researched") / "ws"
    log_probs = copy_with_bigram(trained, ws)
    with Ledger.for_workspace(ws) as ledger:
        session = ledger.start_session("t", "autolab/t", "search", 2, "cpu", {})
        for number, kind, status, bpb in LEDGER:
            ledger.add_experiment(ExperimentRecord(number, session, kind, f"c{number}", kind))
            ledger.add_result(number, ResultRecord(status, val_bpb=bpb))
        ledger.record_noise(session, 3.7, 0.0, 1)
    return {**trained, "ws": ws, "workspace": load_workspace(ws), "bigram": log_probs}


def test_next_token_probabilities_match_torch(trained):
    run_dir = select_run(trained["workspace"], "last").run_dir
    model, info, tokenizer, meta = load_run(run_dir, trained["data_dir"])
    result = top_next_tokens(model, info, tokenizer, meta, "em", top=tokenizer.vocab_size)
    probs = [row.prob for row in result.top]
    assert sum(probs) == pytest.approx(1.0, abs=1e-6)
    assert probs == sorted(probs, reverse=True)
    ids = tokenizer.encode("\nem")  # the prompt is read as the start of a document
    assert result.context_ids == ids
    with torch.no_grad():
        direct = torch.softmax(model(torch.tensor([ids]))[0, -1].double(), dim=-1)
    for row in result.top:
        assert row.prob == pytest.approx(direct[row.token_id].item(), abs=1e-6)
        assert row.label == tokenizer.token_label(row.token_id)
    entropy = -(direct * direct.log()).sum().item() / math.log(2)
    assert result.entropy_bits == pytest.approx(entropy, abs=1e-6)


def test_cli_next_token_table_draws_whitespace(trained):
    done = autolab(trained["home"], "inspect", "-C", str(trained["ws"]), "--prompt", "emma",
                   "--top", "30")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "last run train-" in done.stdout  # no ledger: the default is the last run
    assert "⏎" in done.stdout and "probability" in done.stdout and "entropy" in done.stdout


def test_unknown_characters_are_one_line_exit_2(trained):
    done = autolab(trained["home"], "inspect", "-C", str(trained["ws"]), "--prompt", "Emma7")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "'7', 'E'" in done.stderr and "not in the vocabulary" in done.stderr
    assert "⏎ a b c" in done.stderr  # some of what is allowed


def test_a_damaged_model_is_one_line_exit_2(trained, tmp_path):
    """A truncated model.pt2 in a copy of the workspace's last run: sample and inspect say so."""
    ws, run = tmp_path / "ws", tmp_path / "run"
    shutil.copytree(trained["ws"], ws)
    shutil.copytree(Path((trained["ws"] / ".autolab" / "last_run").read_text().strip()), run)
    (ws / ".autolab" / "last_run").write_text(str(run))
    model = run / MODEL_FILE
    model.write_bytes(model.read_bytes()[:2000])
    for args in (["sample", "-C", str(ws)], ["inspect", "-C", str(ws), "--prompt", "emma"]):
        done = autolab(trained["home"], *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert f"the model in {run} cannot be loaded" in done.stderr
        assert "train it again" in done.stderr


def test_surprisal_total_is_evaluate_bpb(trained):
    run_dir = select_run(trained["workspace"], "last").run_dir
    model, info, tokenizer, meta = load_run(run_dir, trained["data_dir"])
    result = surprisal(model, info, tokenizer, meta, NAMES)
    ids = np.array(tokenizer.encode("\n" + NAMES))
    expected = evaluate_bpb(model, ids, tokenizer.token_bytes, int(info["context_len"]))
    assert result.bpb == pytest.approx(expected, abs=1e-6)
    assert len(result.tokens) == len(NAMES) and result.total_bytes == len(NAMES.encode())
    assert result.total_nats == pytest.approx(sum(tok.nats for tok in result.tokens))
    # Token j = ids[j + 1], predicted inside its chunk of context_len (as evaluate_bpb does).
    context_len = int(info["context_len"])
    j = len(NAMES) - 5  # in the second chunk
    start = (j // context_len) * context_len
    with torch.no_grad():
        logits = model(torch.from_numpy(ids[None, start : j + 1]))[0, -1].float()
    nats = -torch.log_softmax(logits, -1)[ids[j + 1]].item()
    assert result.tokens[j].nats == pytest.approx(nats, abs=1e-5)


def test_bigram_surprisal_is_the_hand_computed_loss(researched):
    model, info, tokenizer, meta = load_run(researched["ws"] / ".autolab/runs/2",
                                            researched["data_dir"])  # fmt: skip
    result = surprisal(model, info, tokenizer, meta, NAMES)
    ids = tokenizer.encode("\n" + NAMES)
    table = researched["bigram"].double()
    # Chunks of 8 cut the context, but a bigram needs only the previous token.
    hand = [-table[a, b].item() for a, b in zip(ids, ids[1:], strict=False)]
    assert [tok.nats for tok in result.tokens] == pytest.approx(hand, abs=1e-5)
    assert result.bpb == pytest.approx(sum(hand) / (math.log(2) * len(NAMES)), abs=1e-6)


def test_compare_json_per_token_difference(researched):
    done = autolab(researched["home"], "inspect", "-C", str(researched["ws"]), "--text", NAMES,
                   "--surprisal", "--compare", "baseline", "best", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["a"]["run"].startswith("exp 1 (baseline") and out["b"]["run"].startswith("exp 2")
    table = researched["bigram"].double()
    ids = [1] + [t["token_id"] for t in out["tokens"]]  # 1 is the separator, ⏎
    hand_bits = [-table[a, b].item() / math.log(2) for a, b in zip(ids, ids[1:], strict=False)]
    assert [t["bits_b"] for t in out["tokens"]] == pytest.approx(hand_bits, abs=1e-5)
    for t in out["tokens"]:
        assert t["diff_bits"] == pytest.approx(t["bits_b"] - t["bits_a"])
    total_bits = sum(t["bits_b"] for t in out["tokens"])
    assert out["b"]["bpb"] == pytest.approx(total_bits / out["b"]["total_bytes"], abs=1e-6)


def test_compare_view_and_selection(trained, researched, capsys, monkeypatch):
    workspace = researched["workspace"]
    assert default_selector(trained["workspace"]) == "last"  # no ledger
    assert default_selector(workspace) == "best"
    assert select_run(workspace).run_dir.name == "2"
    assert select_run(workspace, "baseline").run_dir.name == "1"
    text = researched["ws"] / "names.txt"
    text.write_text(NAMES)
    args = ["inspect", "-C", str(researched["ws"]), "--text", str(text), "--compare", "1", "2"]
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich's switch: draw as on a terminal
    code = main_with_inspect(args)
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert code == 0
    assert "A exp 1" in out and "B exp 2" in out and "bits per byte" in out
    assert "B better (most bits)" in out and "B - A" in out

    monkeypatch.delenv("FORCE_COLOR")  # piped: a token table, no colour scale
    assert main_with_inspect(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("A exp 1 (") and lines[1].startswith("B exp 2 (")
    assert re.fullmatch(r"B - A: [+-]\d\.\d{4} bpb on this text", lines[2])
    assert lines[3] == "#\ttoken\tA bits\tB bits\tB - A"
    assert len(lines) > 4 and all(len(line.split("\t")) == 5 for line in lines[3:])
    assert "\x1b[" not in "\n".join(lines)


@pytest.mark.parametrize(
    "selector, message",
    [("9", "no experiment 9 in the ledger (experiments are 1 to 3)"),
     ("3", "experiment 3 (crash) left no model"),
     ("latest", "unknown experiment 'latest'")],
)  # fmt: skip
def test_bad_experiment_is_a_usage_error(researched, selector, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_run(researched["workspace"], selector)


def test_missing_model_says_train(researched, tmp_path, capsys):
    empty_run = tmp_path / "train-unfinished"
    empty_run.mkdir()
    with pytest.raises(UsageError, match="no model in .*run `autolab train`"):
        select_run(researched["workspace"], str(empty_run))
    code = main_with_inspect(["inspect", "-C", str(researched["ws"]), "-e", str(empty_run)])
    assert code == 2 and "autolab train" in capsys.readouterr().err


def test_encode_checked_accepts_known_text(trained):
    from autolab.data import load_tokenizer

    tokenizer = load_tokenizer(trained["data_dir"])
    assert encode_checked(tokenizer, "ava\n") == tokenizer.encode("ava\n")


def test_token_frequency_plot_is_a_png(trained, tmp_path):
    out = plot_token_frequencies(trained["data_dir"], tmp_path / "charts" / "freq.png", top=10)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300 and height > 200
    counts = train_token_counts(trained["data_dir"])
    assert counts.sum() > 0 and list(tmp_path.glob("charts/*")) == [out]  # no temp file left


def main_with_inspect(argv: list[str]) -> int:
    from autolab import cli

    if "inspect" not in cli.COMMANDS:
        cli.COMMANDS.append("inspect")
    return main(argv)
