"""The loop section of :class:`~sf_train.config.ScoreDPOConfig`: profile, iterations, k, runs, data."""

from __future__ import annotations

from dataclasses import dataclass, field

from sf_train.config_fields import FROM_PROFILE
from sf_train.config_fields import help_text as _help
from sf_train.profiles import PROFILES, profile_help

__all__ = ["LoopFields"]


@dataclass
class LoopFields:
    """M iterations of k workflows per task, each run ``runs_per_workflow`` times, on which data."""

    profile: str = field(
        default="ours",
        metadata={
            "help": "Named set of defaults for the fields below marked [default from the profile]: "
            "'ours' (this project's loop, as always) or 'scoreflow' (Gen-Verse/ScoreFlow as "
            "published: its generator and operator prompts read from scoreflow_source, validity "
            "filters, LLM answer extraction, per-dataset N and timeouts, no BOS in training). "
            "A field you set yourself wins over the profile.",
            "choices": list(PROFILES),
        },
    )
    scoreflow_source: str | None = field(
        default=None,
        metadata=_help(
            "Your checkout of https://github.com/Gen-Verse/ScoreFlow (commit 2492563838f7), read "
            "for the scoreflow profile's prompts; None = $SF_SCOREFLOW_SOURCE. ScoreFlow publishes "
            "no license, so its text is not shipped with sf-train."
        ),
    )
    iterations: int = field(
        default=FROM_PROFILE,
        metadata=_help(
            "M: optimisation iterations (generate → score → pairs → train). " + profile_help("iterations")
        ),
    )
    k: int = field(
        default=8,
        metadata=_help(
            "Workflows sampled per training task and iteration. [official: 8, ScoreFlow generate.py]"
        ),
    )
    runs_per_workflow: int = field(
        default=3,
        metadata=_help(
            "Executions of each workflow; its score is the mean (a failed run counts 0). "
            "[official: 3, ScoreFlow get_scores.py vali_num]"
        ),
    )
    dataset: str = field(
        default="gsm8k",
        metadata=_help("sf-bench dataset: humaneval, mbpp, gsm8k, math, drop or hotpotqa."),
    )
    train_split: str = field(
        default="validate",
        metadata=_help("Split whose tasks generate the preference data. [official: validate]"),
    )
    eval_split: str | None = field(
        default="test",
        metadata=_help("Split evaluated after the last iteration (None or '' skips it). [official: test]"),
    )
    eval_k: int = field(
        default=1,
        metadata=_help("Workflows per task at evaluation. [official: 1, ScoreFlow generate.py]"),
    )
    eval_each_iteration: bool = field(
        default=False,
        metadata=_help(
            "Also evaluate the eval split before every iteration (held-out learning curve). Ours."
        ),
    )
    limit: int | None = field(
        default=None,
        metadata=_help("Use only the first N tasks of each split (quick runs); None = all. Ours."),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_help("Directory with the dataset files; None = the splits bundled with sf-bench."),
    )
