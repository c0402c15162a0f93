"""LLMResearcher through the real `openai` client against a scripted local chat server."""

import socket
import time

import pytest
from chat_server import ChatServer

from autolab.errors import UsageError
from autolab.research.edits import SkippedProposal
from autolab.research.llm import LLMResearcher, llm_settings, price_for
from autolab.research.prompt import build_prompt, history_table
from autolab.research.proposal import Outcome, ResearchContext

TRAIN_PY = """\
from autolab.harness import Run

DEPTH = 4  # number of blocks

run = Run()
model = build(DEPTH)
run.finish(model, context_len=8)
"""

SEARCH_REPLACE = """\
DESCRIPTION: increase DEPTH from 4 to 6

<<<<<<< SEARCH
DEPTH = 4  # number of blocks
=======
DEPTH = 6  # number of blocks
>>>>>>> REPLACE
"""


def make_context(tmp_path, **overrides) -> ResearchContext:
    history = [
        Outcome(1, "baseline", "keep", 2.5),
        Outcome(2, "lower MATRIX_LR to 0.02", "discard", 2.6),
        Outcome(3, "SEQ_LEN 4096", "crash", None, reason="CUDA out of memory"),
    ]
    fields = dict(
        workspace=tmp_path,
        best_source=TRAIN_PY,
        program="# Research program\nLower val_bpb on names.",
        history=history,
        best_val_bpb=2.5,
        baseline_val_bpb=2.5,
        last_failure_log="step 1\nTraceback (most recent call last):\nOutOfMemoryError: boom\n",
        budget_seconds=30,
    )
    return ResearchContext(**(fields | overrides))


@pytest.fixture
def server():
    with ChatServer() as chat:
        yield chat


def researcher(server: ChatServer, **kwargs) -> LLMResearcher:
    kwargs = {"max_retries": 2, "timeout": 5} | kwargs
    return LLMResearcher(base_url=server.url, model="test-model", api_key="none", **kwargs)


def test_search_replace_reply_is_applied_and_usage_recorded(server, tmp_path):
    server.add_reply(SEARCH_REPLACE)
    proposal = researcher(server, price_per_mtok=(1.0, 2.0)).propose(make_context(tmp_path))
    assert proposal.description == "increase DEPTH from 4 to 6"
    assert proposal.source == TRAIN_PY.replace("DEPTH = 4", "DEPTH = 6")
    assert (proposal.usage.prompt_tokens, proposal.usage.completion_tokens) == (100, 20)
    assert proposal.usage.cost_usd == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6)

    (request,) = server.requests
    assert request["model"] == "test-model" and request["temperature"] == 0.7
    system, user = request["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    prompt = user["content"]
    assert "Lower val_bpb on names." in prompt  # program.md
    assert TRAIN_PY in prompt  # the current best train.py
    assert "lower MATRIX_LR to 0.02" in prompt and "CUDA out of memory" in prompt  # history
    assert "OutOfMemoryError: boom" in prompt  # the failure's log tail
    assert "30s of wall-clock time" in prompt  # the budget
    assert "<<<<<<< SEARCH" in prompt  # the reply format


def test_whole_file_reply(server, tmp_path):
    new = TRAIN_PY.replace("DEPTH = 4", "DEPTH = 2")
    server.add_reply(f"DESCRIPTION: shallower\n\n```python\n{new}```\n")
    proposal = researcher(server).propose(make_context(tmp_path))
    assert (proposal.description, proposal.source) == ("shallower", new)


def test_malformed_reply_is_corrected_once(server, tmp_path):
    server.add_reply(
        "DESCRIPTION: deeper\n<<<<<<< SEARCH\nDEPTH = 5\n=======\nDEPTH = 6\n>>>>>>> REPLACE\n"
    )
    server.add_reply(SEARCH_REPLACE)
    proposal = researcher(server).propose(make_context(tmp_path))
    assert proposal.description == "increase DEPTH from 4 to 6"
    assert proposal.usage.prompt_tokens == 200 and proposal.usage.completion_tokens == 40
    first, second = server.requests
    messages = second["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"].startswith("DESCRIPTION: deeper")
    assert "SEARCH block 1 does not match train.py" in messages[3]["content"]
    assert "'DEPTH = 5'" in messages[3]["content"]


def test_malformed_twice_is_skipped_with_usage(server, tmp_path):
    server.add_reply("I would make the model deeper.")
    server.add_reply(f"DESCRIPTION: nothing\n```python\n{TRAIN_PY}```\n")
    with pytest.raises(SkippedProposal, match="could not be used twice: train.py is unchanged"):
        researcher(server, price_per_mtok=(1.0, 1.0)).propose(make_context(tmp_path))
    assert len(server.requests) == 2
    assert "no `DESCRIPTION" in server.requests[1]["messages"][3]["content"]


def test_skipped_carries_usage(server, tmp_path):
    server.add_reply("no")
    server.add_reply("still no")
    with pytest.raises(SkippedProposal) as info:
        researcher(server, price_per_mtok=(3.0, 3.0)).propose(make_context(tmp_path))
    assert info.value.usage.prompt_tokens == 200
    assert info.value.usage.cost_usd == pytest.approx(240 * 3.0 / 1e6)


def test_server_errors_are_retried(server, tmp_path):
    server.fail_next(1, status=500)
    server.fail_next(1, status=429)
    server.add_reply(SEARCH_REPLACE)
    proposal = researcher(server, max_retries=2).propose(make_context(tmp_path))
    assert proposal.description == "increase DEPTH from 4 to 6"
    assert len(server.requests) == 3


def test_server_errors_after_retries_skip(server, tmp_path):
    server.fail_next(3, status=503)
    with pytest.raises(SkippedProposal, match="HTTP 503 after 2 retries"):
        researcher(server, max_retries=2).propose(make_context(tmp_path))


def test_client_errors_stop_the_session(server, tmp_path):
    # No scripted reply left: the server answers 400, like an unknown model would.
    with pytest.raises(UsageError, match=r"refused the request \(HTTP 400\)"):
        researcher(server).propose(make_context(tmp_path))


def test_unreachable_endpoint_is_a_usage_error(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    llm = LLMResearcher(base_url=url, model="m", max_retries=1, timeout=2)
    with pytest.raises(UsageError, match=f"cannot reach the LLM endpoint at {url}: ") as info:
        llm.propose(make_context(tmp_path))
    assert "check --llm-base-url" in str(info.value)
    assert time.monotonic() - started < 10


def test_silent_endpoint_times_out_as_a_usage_error(tmp_path):
    with socket.socket() as sock:  # listens, never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        llm = LLMResearcher(base_url=url, model="m", max_retries=1, timeout=0.2)
        with pytest.raises(UsageError, match=r"no answer within 0.2s, 2 tries; check"):
            llm.propose(make_context(tmp_path))


def test_llm_settings_precedence():
    toml = {"llm": {"base_url": "http://toml/v1", "model": "toml-model", "temperature": 0.2}}
    env = {"AUTOLAB_LLM_MODEL": "env-model", "OPENAI_API_KEY": "sk-openai"}
    flags = {"base_url": None, "model": None, "api_key": None}
    settings = llm_settings(flags, env, toml)
    assert settings == {
        "base_url": "http://toml/v1",
        "model": "env-model",
        "api_key": "sk-openai",
        "temperature": 0.2,
        "price_per_mtok": None,
    }
    flags = {"model": "flag-model", "api_key": "sk-flag"}
    env |= {"AUTOLAB_LLM_API_KEY": "sk-autolab"}
    assert llm_settings(flags, env, toml)["model"] == "flag-model"
    assert llm_settings(flags, env, toml)["api_key"] == "sk-flag"
    assert llm_settings({}, env, toml)["api_key"] == "sk-autolab"
    local = llm_settings({"base_url": "http://localhost:11434/v1", "model": "qwen"}, {}, {})
    assert local["api_key"] == "none" and local["temperature"] == 0.7
    priced = llm_settings({}, {}, {"llm": toml["llm"] | {"price_per_mtok": [1, 4]}})
    assert priced["price_per_mtok"] == (1.0, 4.0)


@pytest.mark.parametrize(
    "flags, toml, message",
    [
        ({}, {}, "no LLM endpoint configured"),
        ({"base_url": "http://x/v1"}, {}, "--llm-model"),
        ({}, {"llm": {"base_url": "u", "model": "m", "api_key": "sk"}}, "do not store an API key"),
        ({}, {"llm": {"model_name": "m"}}, "unknown"),
        ({"base_url": "u", "model": "m", "temperature": "hot"}, {}, "temperature"),
    ],
)
def test_llm_settings_errors(flags, toml, message):
    with pytest.raises(UsageError, match=message):
        llm_settings(flags, {}, toml)


def test_prices():
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini") != price_for("gpt-4o")
    assert price_for("openai/gpt-4.1") == (2.0, 8.0)
    assert price_for("llama3.1:8b") is None


def test_history_table_keeps_baseline_and_best(tmp_path):
    history = [Outcome(1, "baseline", "keep", 3.0), Outcome(2, "big win", "keep", 1.0)]
    history += [Outcome(n, f"try {n}", "discard", 2.0 + n / 1000) for n in range(3, 60)]
    table = history_table(history, recent=5)
    numbers = [int(line.split()[0]) for line in table.splitlines()[1:] if line.split()[0].isdigit()]
    assert numbers == [1, 2, 55, 56, 57, 58, 59]
    assert "... 52 more experiments ..." in table
    prompt = build_prompt(make_context(tmp_path, history=[], last_failure_log=None))
    assert "No experiments yet" in prompt and "The last failed run" not in prompt


def test_chat_server_default_reply_sees_the_request(tmp_path):
    def deeper(body: dict) -> str:
        assert "DEPTH = 4" in body["messages"][-1]["content"]
        return SEARCH_REPLACE

    with ChatServer(default=deeper) as chat:
        for _ in range(2):
            assert researcher(chat).propose(make_context(tmp_path)).source.count("DEPTH = 6") == 1
        assert len(chat.requests) == 2
