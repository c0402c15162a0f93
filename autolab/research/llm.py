"""`LLMResearcher`: asks any OpenAI-compatible chat endpoint for one change to train.py.

Works with the OpenAI API and with local servers that speak the same protocol (Ollama, vLLM,
llama.cpp's server, LM Studio) through the official `openai` package; the client's own
`max_retries` does the retrying with exponential backoff.

A reply that cannot be parsed, applied or validated is sent back once, quoting the error; a
second bad reply raises `SkippedProposal` with the tokens spent. An endpoint that cannot be
reached, or that rejects the key or the model, raises `UsageError`: the session stops, since
every later proposal would fail the same way.
"""

from collections.abc import Mapping

import openai

from autolab.errors import UsageError
from autolab.research.edits import (
    EditError,
    SkippedProposal,
    apply_edits,
    parse_reply,
    validate_train_py,
)
from autolab.research.prompt import REPLY_FORMAT, build_prompt
from autolab.research.proposal import LLMUsage, Proposal, ResearchContext

SYSTEM_PROMPT = (
    "You are a careful machine learning researcher improving a small language model's "
    "training script, one experiment at a time. You reply only in the format you are asked for."
)

# USD per million tokens (input, output), from openai.com/api/pricing (2025-08). A date suffix
# ("gpt-4o-2024-08-06") or a provider prefix ("openai/gpt-4o") still matches. Models not listed
# (local servers) cost 0 unless price_per_mtok is given.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}

ENV_BASE_URL = "AUTOLAB_LLM_BASE_URL"
ENV_MODEL = "AUTOLAB_LLM_MODEL"
ENV_API_KEYS = ("AUTOLAB_LLM_API_KEY", "OPENAI_API_KEY")  # the first one set wins
TOML_KEYS = ("base_url", "model", "temperature", "price_per_mtok")


def llm_settings(flags: Mapping, environ: Mapping[str, str], toml_settings: Mapping) -> dict:
    """Keyword arguments for LLMResearcher; flags beat the environment beat autolab.toml.

    `flags` may hold base_url, model, api_key, temperature, price_per_mtok (None = not given);
    `toml_settings` is the whole autolab.toml (Workspace.settings), of which the [llm] table is
    read. API keys come only from flags or the environment: autolab.toml is tracked by git.
    """
    table = toml_settings.get("llm", {})
    if not isinstance(table, Mapping):
        raise UsageError("autolab.toml: [llm] must be a table, like `[llm]` then `model = ...`")
    if "api_key" in table:
        raise UsageError(
            "autolab.toml: do not store an API key in [llm] (git tracks the file); "
            f"set {ENV_API_KEYS[0]} instead"
        )
    unknown = sorted(set(table) - set(TOML_KEYS))
    if unknown:
        raise UsageError(f"autolab.toml: unknown [llm] keys {unknown}; known: {list(TOML_KEYS)}")

    def pick(key: str, *env_names: str):
        if flags.get(key) is not None:
            return flags[key]
        for name in env_names:
            if environ.get(name):
                return environ[name]
        return table.get(key)

    settings = {
        "base_url": pick("base_url", ENV_BASE_URL),
        "model": pick("model", ENV_MODEL),
        "api_key": pick("api_key", *ENV_API_KEYS) or "none",  # local servers ignore it
        "temperature": pick("temperature"),
        "price_per_mtok": pick("price_per_mtok"),
    }
    if not settings["base_url"] or not settings["model"]:
        raise UsageError(
            "no LLM endpoint configured: pass --llm-base-url and --llm-model, set "
            f"{ENV_BASE_URL} and {ENV_MODEL}, or add base_url and model to [llm] in autolab.toml"
        )
    settings["temperature"] = _temperature(settings["temperature"])
    price = settings["price_per_mtok"]
    if price is not None:
        if len(price) != 2 or not all(isinstance(p, int | float) for p in price):
            raise UsageError(f"price_per_mtok must be [input, output] USD, got {price!r}")
        settings["price_per_mtok"] = (float(price[0]), float(price[1]))
    return settings


def _temperature(value) -> float | None:
    """0.7 when not given; "none" sends no temperature (reasoning models refuse one)."""
    if value is None:
        return 0.7
    if value == "none":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f'temperature must be a number or "none", got {value!r}') from None


def price_for(model: str) -> tuple[float, float] | None:
    """The listed price of `model`, matching the longest listed name it starts with."""
    name = model.rsplit("/", 1)[-1].lower()
    matches = [key for key in PRICES_PER_MTOK if name == key or name.startswith(key + "-")]
    return PRICES_PER_MTOK[max(matches, key=len)] if matches else None


class LLMResearcher:
    name = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "none",
        temperature: float | None = 0.7,  # None: not sent (reasoning models refuse it)
        max_retries: int = 3,
        timeout: float = 120,
        price_per_mtok: tuple[float, float] | None = None,
    ):
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self.max_retries = max_retries
        self.timeout = timeout
        self.price_per_mtok = price_per_mtok or price_for(model)
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "none", max_retries=max_retries, timeout=timeout
        )

    def propose(self, context: ResearchContext) -> Proposal:
        """One proposal, or SkippedProposal after two replies that could not be used."""
        usage = LLMUsage()
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": build_prompt(context)},
        ]
        reply = self._chat(messages, usage)
        try:
            return self._proposal(reply, context, usage)
        except EditError as err:
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": _correction(err)},
            ]
        reply = self._chat(messages, usage)
        try:
            return self._proposal(reply, context, usage)
        except EditError as err:
            raise SkippedProposal(f"the LLM's reply could not be used twice: {err}", usage) from err

    def _proposal(self, reply: str, context: ResearchContext, usage: LLMUsage) -> Proposal:
        description, edits, whole_file = parse_reply(reply)
        source = apply_edits(context.best_source, edits) if edits else whole_file
        validate_train_py(source, original=context.best_source)
        return Proposal(source=source, description=description, usage=usage)

    def _chat(self, messages: list[dict], usage: LLMUsage) -> str:
        """The reply's text; adds its tokens and cost to `usage`."""
        try:
            extra = {} if self.temperature is None else {"temperature": self.temperature}
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, **extra
            )
        except openai.APIConnectionError as err:  # refused, DNS, timeout: after the retries
            if isinstance(err, openai.APITimeoutError):
                reason = f"no answer within {self.timeout:g}s, {self.max_retries + 1} tries"
            else:
                reason = str(err.__cause__ or err)
            raise UsageError(
                f"cannot reach the LLM endpoint at {self.base_url}: {reason}; "
                "check --llm-base-url or that the server is running"
            ) from err
        except openai.APIStatusError as err:
            message = _one_line(err.message)
            if err.status_code == 429 or err.status_code >= 500:
                # Transient by nature: this proposal is skipped, the session goes on.
                raise SkippedProposal(
                    f"the LLM endpoint answered HTTP {err.status_code} after "
                    f"{self.max_retries} retries: {message}",
                    usage,
                ) from err
            raise UsageError(
                f"the LLM endpoint at {self.base_url} refused the request "
                f"(HTTP {err.status_code}): {message}; check the model name and API key"
            ) from err
        if response.usage is not None:
            usage.prompt_tokens += response.usage.prompt_tokens or 0
            usage.completion_tokens += response.usage.completion_tokens or 0
            if self.price_per_mtok:
                price_in, price_out = self.price_per_mtok
                usage.cost_usd += (
                    (response.usage.prompt_tokens or 0) * price_in
                    + (response.usage.completion_tokens or 0) * price_out
                ) / 1e6
        if not response.choices:
            return ""
        choice = response.choices[0]
        text = choice.message.content or ""
        if choice.finish_reason == "length":
            # Parsing will fail on a cut-off reply; say why in the correction.
            text += "\n[reply cut off at the token limit]"
        return text


def _correction(err: EditError) -> str:
    return (
        f"Your reply could not be applied: {err}.\n\n"
        "Reply again with the whole answer in the required format:\n\n" + REPLY_FORMAT
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]
