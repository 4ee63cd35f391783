"""Validity filters on generated workflows, ScoreFlow's (``generate.py: test_if_runable``).

Before a generated workflow is scored, ScoreFlow rejects it when

1. it has no ``<graph>…</graph>`` block, or no ``async def run_workflow(self) … return``;
2. the body of its ``run_workflow`` (up to the first ``return``) is at least ``sim_threshold``
   similar to the template's (``difflib.SequenceMatcher.ratio``), i.e. it barely changed the
   template (MATH/DROP/HotpotQA 0.75, GSM8K 0.8; HumanEval/MBPP 1.1 = never);
3. the file it would write (``PYTHON_START + class + PYTHON_END``) contains a banned substring
   (``.split(' ')``, ``int(``; ``self.loop.append`` on MATH/GSM8K).

ScoreFlow then resamples the workflow. :func:`check_generated` applies the same rules and says
which one failed, so callers can resample, and record the rejection with its reason.
ScoreFlow's step 4 (importing the file and running it once against the executor on a toy
problem) is not a filter here: running is what scoring does, in the sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum

__all__ = ["FilterRules", "Rejection", "RejectionReason", "check_generated", "run_workflow_body"]

_GRAPH = re.compile(r"<graph>(.*?)</graph>", re.DOTALL)
_BODY = re.compile(r"async def run_workflow\(self\)(.*?)return", re.DOTALL)


class RejectionReason(StrEnum):
    """Why a generated workflow was rejected before scoring."""

    NO_GRAPH = "no_graph"
    """No ``<graph>…</graph>`` block (ScoreFlow: "Format error")."""
    NO_RUN_WORKFLOW = "no_run_workflow"
    """No ``async def run_workflow(self) … return`` (ScoreFlow: "Format error")."""
    TOO_SIMILAR = "too_similar_to_template"
    """``run_workflow`` is at least ``sim_threshold`` similar to the template's (ScoreFlow:
    "Nearly no modification")."""
    BANNED_SUBSTRING = "banned_substring"
    """The workflow file contains a banned substring (ScoreFlow: "Contain no_exception_char")."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterRules:
    """The filters to apply. The defaults apply none (our default profile)."""

    sim_threshold: float | None = None
    """Reject when the similarity to ``template`` is >= this; ``None`` (or > 1) disables it."""
    template: str = ""
    """The template workflow (its ``run_workflow`` body is compared)."""
    banned: tuple[str, ...] = ()
    """Substrings no workflow file may contain."""
    file_prefix: str = ""
    """Text put before the class when the banned substrings are checked (ScoreFlow's
    ``PYTHON_START``: its imports)."""
    file_suffix: str = ""
    """Text put after the class (ScoreFlow's ``PYTHON_END``)."""
    require_graph: bool = False
    """Reject text without ``<graph>…</graph>`` (ScoreFlow does; our parser also accepts a
    fenced block or bare code)."""

    @property
    def active(self) -> bool:
        """True when any rule can reject."""
        return self.require_graph or bool(self.banned) or self.similarity_on

    @property
    def similarity_on(self) -> bool:
        """True when the template-similarity rule is on."""
        return self.sim_threshold is not None and self.sim_threshold <= 1.0 and bool(self.template)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """One rejected workflow: the rule and a one-line explanation."""

    reason: RejectionReason
    detail: str

    def to_dict(self) -> dict[str, str]:
        """Plain dict for JSON."""
        return {"reason": str(self.reason), "detail": self.detail}


def run_workflow_body(text: str) -> str | None:
    """The stripped text between ``async def run_workflow(self)`` and the first ``return``.

    Found with ScoreFlow's regex; ``None`` when there is none.
    """
    match = _BODY.search(text)
    return match.group(1).strip() if match else None


def check_generated(text: str, rules: FilterRules) -> Rejection | None:
    """Apply ``rules`` to one generator reply (or bare workflow class); ``None`` = accepted.

    With ``rules.require_graph`` the class is the stripped ``<graph>`` content, as in
    ScoreFlow; otherwise a reply without the block is checked as it is.
    """
    match = _GRAPH.search(text)
    if match is None and rules.require_graph:
        return Rejection(reason=RejectionReason.NO_GRAPH, detail="no <graph>...</graph> block")
    script = (match.group(1) if match else text).strip()
    if rules.similarity_on or rules.require_graph:
        body = run_workflow_body(script)
        if body is None:
            return Rejection(
                reason=RejectionReason.NO_RUN_WORKFLOW,
                detail="no 'async def run_workflow(self) ... return' in the workflow",
            )
        template_body = run_workflow_body(rules.template) if rules.similarity_on else None
        if template_body is not None and rules.sim_threshold is not None:
            ratio = SequenceMatcher(None, body, template_body).ratio()
            if ratio >= rules.sim_threshold:
                return Rejection(
                    reason=RejectionReason.TOO_SIMILAR,
                    detail=f"run_workflow is {ratio:.3f} similar to the template's "
                    f"(threshold {rules.sim_threshold:g})",
                )
    whole = rules.file_prefix + script + rules.file_suffix
    for banned in rules.banned:
        if banned in whole:
            return Rejection(
                reason=RejectionReason.BANNED_SUBSTRING, detail=f"the workflow contains {banned!r}"
            )
    return None
