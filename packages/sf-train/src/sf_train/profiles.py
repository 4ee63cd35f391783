"""Profiles: named sets of config defaults (``profile: ours`` or ``profile: scoreflow``).

A profile is not a code path of its own: it only fills the config fields the user left unset
(``None``), per dataset. ``ours`` is the default and behaves as the loop always did;
``scoreflow`` reproduces Gen-Verse/ScoreFlow as published (commit 2492563838f7):

| field | ours | scoreflow | ScoreFlow source |
|---|---|---|---|
| iterations | 3 | 2 | README: optimize for i=0,1, then inference with --epoch=2 |
| num_pairs | 2000 | 600 HumanEval, else 2000 | evaluate.py |
| workflow_timeout | 120 s | 240 s code, else 120 s | conditions.py TIME_LIMIT |
| max_regenerations | 0 | 500 | generate.py num_epoch |
| generator_prompt | ours | scoreflow (byte for byte) | conditions.py START_PORMPT + task + END_PROMPT |
| operator_prompts | ours | scoreflow (+ "You are a helpful assistant.") | op_prompt.py, operator.py |
| validity_filters | off | on (sim_threshold, banned substrings) | generate.py test_if_runable |
| answer_extraction | off | on for gsm8k, math, drop, hotpotqa | extraction.py, benchmark/*.py |
| train_bos_token | on | off (prompt tokenized without BOS) | DPOtrainer.py tokenize_row |

Why ours differs where it does: failures score 0 instead of being resampled 500 times (the
generator gets negative signal and a run's cost is bounded); our operator prompts ask for a
short answer in tags, so raw-text scoring is meaningful without an extraction LLM; a third
iteration is the paper's M. The scoreflow profile's prompt texts are read from your ScoreFlow
checkout (``scoreflow_source``; ScoreFlow has no license, see
``sf_workflows.generator.scoreflow``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_workflows.protocols import LLM

__all__ = [
    "PROFILES",
    "PROFILE_FIELDS",
    "SCOREFLOW_DIFFERENCES",
    "RunProfile",
    "profile_default",
    "training_tokenizer",
]

PROFILES = ("ours", "scoreflow")


def code_datasets() -> tuple[str, ...]:
    """sf-bench's code datasets (its registry: ``sf_bench.registry``)."""
    from sf_bench import registry

    return registry.with_flag("is_code")


def extracted_datasets() -> tuple[str, ...]:
    """The datasets ScoreFlow extracts answers for.

    These are sf-bench's registry entries with an ``extract_metric``.
    """
    from sf_bench.systems.extract import extracted_datasets as extracted

    return extracted()


def __getattr__(name: str) -> Any:
    """``CODE_DATASETS`` and ``EXTRACTED_DATASETS``, read now from sf-bench's registry."""
    if name == "CODE_DATASETS":
        return code_datasets()
    if name == "EXTRACTED_DATASETS":
        return extracted_datasets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SIM_THRESHOLD = {"math": 0.75, "drop": 0.75, "hotpotqa": 0.75, "gsm8k": 0.8, "humaneval": 1.1, "mbpp": 1.1}
"""ScoreFlow's ``sim_threshold`` per dataset (conditions.py; 1.1 = never rejects)."""
_BANNED = {
    "math": [".split(' ')", "int(", "self.loop.append"],
    "gsm8k": [".split(' ')", "int(", "self.loop.append"],
}
_BANNED_DEFAULT = [".split(' ')", "int("]
"""ScoreFlow's ``NO_EXCEPTION_LIST`` per dataset (conditions.py)."""

_Rule = Callable[[str], Any]

PROFILE_FIELDS: dict[str, dict[str, _Rule]] = {
    "iterations": {"ours": lambda d: 3, "scoreflow": lambda d: 2},
    "num_pairs": {"ours": lambda d: 2000, "scoreflow": lambda d: 600 if d == "humaneval" else 2000},
    "workflow_timeout": {
        "ours": lambda d: 120.0,
        "scoreflow": lambda d: 240.0 if d in code_datasets() else 120.0,
    },
    "max_regenerations": {"ours": lambda d: 0, "scoreflow": lambda d: 500},
    "generator_prompt": {"ours": lambda d: "ours", "scoreflow": lambda d: "scoreflow"},
    "operator_prompts": {"ours": lambda d: "ours", "scoreflow": lambda d: "scoreflow"},
    "validity_filters": {"ours": lambda d: False, "scoreflow": lambda d: True},
    "sim_threshold": {"ours": lambda d: _SIM_THRESHOLD.get(d), "scoreflow": lambda d: _SIM_THRESHOLD.get(d)},
    "banned_substrings": {
        "ours": lambda d: list(_BANNED.get(d, _BANNED_DEFAULT)),
        "scoreflow": lambda d: list(_BANNED.get(d, _BANNED_DEFAULT)),
    },
    "answer_extraction": {"ours": lambda d: False, "scoreflow": lambda d: d in extracted_datasets()},
    "train_bos_token": {"ours": lambda d: True, "scoreflow": lambda d: False},
}
"""Field → profile → (dataset → default). Only fields left ``None`` take these values."""

SCOREFLOW_DIFFERENCES = (
    "workflows, Programmer and Test code run in the sf-sandbox container, not in the host process",
    "our static validator still rejects workflows ScoreFlow would run (imports outside the allowlist, "
    "exec/eval/open)",
    "the validity filters do not also run each candidate once on ScoreFlow's toy problem; scoring runs it",
    "a workflow still rejected after max_regenerations is recorded and left out of scoring and pairs",
    "a failing workflow run is not retried 5 times (tenacity) before it scores 0",
    "code is extracted from replies with sf_workflows' extract_code, not MetaGPT's sanitize",
    "generation hot-swaps the LoRA adapter (vllm) or runs it in-process (hf) instead of merging weights",
    "the test-time LLM judge is a separate option (sf bench run --judge), not part of training",
)
"""What the ``scoreflow`` profile still does differently from ScoreFlow; written to the run's
``config.json`` so the output names it."""


def profile_default(profile: str, name: str, dataset: str) -> Any:
    """The ``profile``'s default of field ``name`` for ``dataset``.

    Raises:
        KeyError: an unknown profile or a field no profile governs.
    """
    return PROFILE_FIELDS[name][profile](dataset)


def _datasets() -> tuple[str, ...]:
    from sf_bench import registry

    return registry.names()


def profile_help(name: str) -> str:
    """``[profile ours: X; scoreflow: Y]`` for a field's help text."""
    rules = PROFILE_FIELDS[name]
    parts = []
    for profile in PROFILES:
        values = {d: rules[profile](d) for d in _datasets()}
        distinct = {repr(v) for v in values.values()}
        if len(distinct) == 1:
            parts.append(f"{profile}: {next(iter(values.values()))}")
        else:
            parts.append(f"{profile}: " + ", ".join(f"{d} {v}" for d, v in values.items()))
    return "[default from the profile; " + "; ".join(parts) + "]"


def training_tokenizer(tokenizer: Any, *, bos: bool) -> Any:
    """The tokenizer training uses: ``tokenizer`` itself, or (``bos=False``) a copy that adds no BOS.

    The copy adds no BOS token, as ScoreFlow's trainer tokenizes prompts
    (``add_special_tokens=False``).

    Generation keeps the original (vLLM, as ScoreFlow uses it, adds the BOS at sampling time).
    """
    if bos or tokenizer is None or getattr(tokenizer, "bos_token_id", None) is None:
        return tokenizer
    clone = copy.deepcopy(tokenizer)
    if hasattr(clone, "add_bos_token"):
        clone.add_bos_token = False
    return clone


class RunProfile:
    """What the loop needs from the resolved profile fields of one run (built once per run).

    * :meth:`prompt` — the generator prompt of a problem (ours, or ScoreFlow's byte for byte);
    * :attr:`rules` — the validity filters (``None`` when off);
    * :attr:`operator_style` — the operators' style sent with every workflow run;
    * :meth:`scorers` — the answer-extraction scorer override for the harness, if on.

    ScoreFlow's strings are read from ``config.scoreflow_source`` (or ``$SF_SCOREFLOW_SOURCE``)
    only when a field asks for them.

    Raises:
        TrainConfigError: a ``scoreflow`` field without a usable ScoreFlow checkout.
    """

    def __init__(self, config: Any, dataset: str) -> None:
        """See the class docstring."""
        from sf_train.errors import TrainConfigError
        from sf_workflows.errors import WorkflowConfigError

        self.config = config
        self.dataset = dataset
        needs_official = (
            config.generator_prompt == "scoreflow"
            or config.operator_prompts == "scoreflow"
            or (config.answer_extraction and config.profile == "scoreflow")
        )
        self.official: Any = None
        if needs_official:
            from sf_workflows.generator.scoreflow import load_official

            try:
                self.official = load_official(dataset, config.scoreflow_source)
            except WorkflowConfigError as exc:
                raise TrainConfigError(str(exc)) from exc
        self.rules = self._rules() if config.validity_filters else None
        self.operator_style: Any = None
        if config.operator_prompts == "scoreflow":
            from sf_workflows.generator.scoreflow import operator_style

            self.operator_style = operator_style(self.official)

    def _rules(self) -> Any:
        from sf_workflows.generator.filters import FilterRules

        cfg = self.config
        banned = tuple(cfg.banned_substrings or ())
        if self.official is not None:  # ScoreFlow's template and the file its check reads
            return FilterRules(
                sim_threshold=cfg.sim_threshold,
                template=self.official.template,
                banned=banned,
                file_prefix=self.official.python_start,
                file_suffix=self.official.python_end,
                require_graph=True,
            )
        from sf_bench import registry
        from sf_workflows.generator.prompt import template_source

        spec = registry.find(self.dataset)
        kind = str(spec.task_type) if spec is not None else "qa"
        return FilterRules(sim_threshold=cfg.sim_threshold, template=template_source(kind), banned=banned)

    def prompt(self, problem: Any) -> str:
        """The generator prompt for ``problem`` (a raw string: no chat template is applied)."""
        from sf_workflows import build_generator_prompt

        if self.config.generator_prompt == "scoreflow":
            return build_generator_prompt(problem, official=self.official)
        return build_generator_prompt(problem)

    def reject(self, text: str) -> Any:
        """The filters' :class:`~sf_workflows.generator.filters.Rejection` of ``text``, or None."""
        if self.rules is None:
            return None
        from sf_workflows.generator.filters import check_generated

        return check_generated(text, self.rules)

    def scorers(self, executor: LLM) -> dict[str, Any] | None:
        """``{dataset: LLMExtract}`` when answer extraction is on, else None."""
        if not self.config.answer_extraction:
            return None
        from sf_bench.systems.extract import LLMExtract

        style = "scoreflow" if self.config.profile == "scoreflow" else "ours"
        return {self.dataset: LLMExtract(self.dataset, executor, style=style, official=self.official)}

    def describe(self) -> dict[str, Any]:
        """The ``profile`` entry of the run's ``config.json``.

        It holds the name, the values it supplied, and (scoreflow) what still differs from ScoreFlow.
        """
        out: dict[str, Any] = {
            "name": self.config.profile,
            "from_profile": dict(getattr(self.config, "from_profile", {}) or {}),
        }
        if self.official is not None:
            out["scoreflow_source"] = self.official.source
        if self.config.profile == "scoreflow":
            out["differences_from_scoreflow"] = list(SCOREFLOW_DIFFERENCES)
        return out
