"""The generation interface shared by every backend.

A backend turns prompts into k sampled completions each. :class:`BaseWorkflowGenerator`
adds what the rest of the system expects:

* ``async def generate(problems, k) -> list[list[str]]``: the shape of sf-bench's
  ``WorkflowGenerator`` protocol (checked structurally; sf-bench is not imported here). Each
  problem becomes a generator prompt through ``prompt_fn`` and the result holds k raw generator
  outputs per problem, in input order.
* ``generate_texts(prompts, k)``: the same, synchronously, from ready-made prompt strings
  (what the training loop uses, since the prompt is also the DPO prompt).

Outputs are cut after the first stop string, which is kept (the official code re-appends
``</graph>``; ScoreFlow ``generate.py:164-167``), so a completion is exactly what DPO trains on.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BaseWorkflowGenerator", "GenerationParams", "cut_at_stop"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationParams:
    """Sampling settings. Defaults are the official ones (``SCOREFLOW.md`` §2.2)."""

    temperature: float = 0.2
    top_p: float = 0.95
    max_new_tokens: int = 1000
    stop: str | None = "</graph>"
    """Generation stops after this string, which is kept; None = stop only at EOS."""
    batch_size: int = 64
    """Sequences per forward batch (hf backend; prompts × k are split into chunks of this size)."""
    seed: int | None = None
    """Seed for sampling; None leaves the global RNG as it is."""

    @classmethod
    def from_config(cls, config: Any, *, seed: int | None = None) -> GenerationParams:
        """Read the generation fields of a :class:`~sf_train.config.ScoreDPOConfig`."""
        return cls(
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            stop=config.stop or None,
            batch_size=config.generation_batch_size,
            seed=seed,
        )


def cut_at_stop(text: str, stop: str | None) -> str:
    """Return ``text`` up to and including the first ``stop`` (unchanged if absent or None)."""
    if not stop:
        return text
    at = text.find(stop)
    return text if at < 0 else text[: at + len(stop)]


class BaseWorkflowGenerator(abc.ABC):
    """Common part of the backends: prompts in, k completions per prompt out.

    Args:
        params: Sampling settings.
        prompt_fn: Maps a problem (an ``sf_bench`` ``Problem`` or anything the function accepts)
            to the generator prompt; needed only by :meth:`generate`.
    """

    def __init__(
        self, params: GenerationParams | None = None, *, prompt_fn: Callable[[Any], str] | None = None
    ) -> None:
        self.params = params or GenerationParams()
        self.prompt_fn = prompt_fn

    @abc.abstractmethod
    def _sample(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        """Return k raw completions (prompt excluded) for each prompt, in order."""

    def generate_texts(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        """Sample k completions for each prompt, each cut after the stop string.

        Returns:
            ``len(prompts)`` lists of exactly ``k`` strings.

        Raises:
            ValueError: ``k`` < 1.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1 (got {k})")
        if not prompts:
            return []
        raw = self._sample(list(prompts), k)
        if len(raw) != len(prompts) or any(len(group) != k for group in raw):
            raise RuntimeError(f"{type(self).__name__} returned the wrong number of completions")
        return [[cut_at_stop(text, self.params.stop) for text in group] for group in raw]

    async def generate(self, problems: Sequence[Any], k: int) -> list[list[str]]:
        """sf-bench's ``WorkflowGenerator`` call: k raw generator outputs per problem.

        Sampling runs in a worker thread so the event loop (sandbox, executor calls) keeps going.

        Raises:
            ValueError: no ``prompt_fn`` was given.
        """
        if self.prompt_fn is None:
            raise ValueError(f"{type(self).__name__} needs a prompt_fn to turn problems into prompts")
        prompts = [self.prompt_fn(problem) for problem in problems]
        return await asyncio.to_thread(self.generate_texts, prompts, k)
