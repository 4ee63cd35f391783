"""The operator base class (stdlib only)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from ._context import current as _current_context
from ._style import OperatorStyle, xml_format_note

SCOREFLOW_TASK_PREFIX = "You have the following task: "
"""What ScoreFlow's code operators put before a code problem's prompt."""

_UNSET: Any = object()


def problem_text(problem: object) -> str:
    """The text an operator shows the LLM for ``problem``.

    The string itself, or the ``prompt`` of a code problem dict (ScoreFlow passes code
    problems as dicts); ``""`` for None, else ``str(problem)``.
    """
    if isinstance(problem, str):
        return problem
    prompt = _field(problem, "prompt")
    if isinstance(prompt, str):
        return prompt
    return "" if problem is None else str(problem)


def _field(problem: object, key: str) -> object:
    """``problem[key]`` when ``problem`` is a mapping (a code problem dict), else None."""
    # A code problem is a JSON-decoded dict (str keys); a narrowed Mapping's key types are unknown.
    return cast("Mapping[str, object]", problem).get(key) if isinstance(problem, Mapping) else None


def format_arg(value: Any) -> str:
    """A non-string argument as ScoreFlow's ``str.format`` shows it; strings unchanged.

    That is ``format(value, "")``, i.e. ``str(value)`` for lists and numbers.
    """
    return value if isinstance(value, str) else format(value, "")


def require_str(op: str, arg: str, value: Any) -> str:
    """Check an operator argument is a string; raise a ``TypeError`` a generator can learn from."""
    if not isinstance(value, str):
        raise TypeError(f"{op}: argument {arg!r} must be a str, got {type(value).__name__}")
    return value


class Operator:
    """Base of every operator.

    Construction follows ScoreFlow, so generated workflows run unchanged: the LLM first, then
    the problem, which is bound for the operator's lifetime (calls pass only what varies)::

        operator.Custom(self.llm, self.problem)          # ScoreFlow GSM8K/DROP/HotpotQA/code
        operator.Custom(self.llm, self.gid, self.problem)  # ScoreFlow MATH (gid is ignored)
        operator.Custom(self.llm, problem=self.problem)

    A missing LLM or problem falls back to the running workflow's (``RunContext``).
    Every operator is async and returns a ``str``.

    Class attributes document the operator for the generator prompt: ``name``, ``attr``
    (the conventional attribute name), ``call_format``, ``usage``, ``example``.
    """

    name: ClassVar[str] = ""
    attr: ClassVar[str] = ""
    call_format: ClassVar[str] = ""
    usage: ClassVar[str] = ""
    example: ClassVar[str] = ""

    def __init__(
        self, llm: Any = None, *args: Any, problem: Any = _UNSET, name: str | None = None, gid: Any = None
    ):
        if len(args) > 2:
            raise TypeError(f"{type(self).__name__}(llm, problem) got {1 + len(args)} positional arguments")
        if problem is _UNSET:
            problem = args[-1] if args else None
        ctx = _current_context()
        self.llm = llm if llm is not None and hasattr(llm, "complete") else ctx.llm
        self.problem = problem if problem is not None else ctx.problem
        self.label = name or self.name

    @property
    def problem_text(self) -> str:
        """The problem as the LLM sees it."""
        return problem_text(self.problem)

    @property
    def entry_point(self) -> str | None:
        """The function name a code problem asks for, if any."""
        entry = _field(self.problem, "entry_point")
        if isinstance(entry, str):
            return entry
        return _current_context().entry_point

    @property
    def style(self) -> OperatorStyle:
        """The running workflow's operator style (prompts and behaviour; ``ours`` by default)."""
        return _current_context().style

    async def _ask(self, prompt: str, **params: Any) -> str:
        """One LLM call with ``prompt`` as the user message; returns the reply text.

        The style's system message, when it has one (ScoreFlow's "You are a helpful
        assistant."), comes first.

        Raises:
            RuntimeError: the operator has no LLM.
        """
        if self.llm is None:
            raise RuntimeError(f"{self.name}: no LLM (construct it as operator.{self.name}(llm, problem))")
        params = {k: v for k, v in params.items() if v is not None}
        system = self.style.system_message
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": prompt})
        reply = await self.llm.complete(messages, **params)
        text = getattr(reply, "text", reply)
        return text if isinstance(text, str) else str(text)

    @property
    def scoreflow_problem(self) -> str:
        """The problem as ScoreFlow's operators show it.

        The text, or for a code problem ``"You have the following task: " + prompt``
        (ScoreFlow ``scripts/HumanEval/operator.py``).
        """
        if isinstance(self.problem, Mapping):
            return SCOREFLOW_TASK_PREFIX + self.problem_text
        return self.problem_text

    async def _ask_fields(self, prompt: str, fields: tuple[str, ...]) -> dict[str, str]:
        """ScoreFlow's ``xml_fill``: each field's first ``<field>…</field>``, stripped.

        The prompt sent is ``prompt`` plus MetaGPT's response-format note; a missing field is
        ``""``.
        """
        reply = await self._ask(prompt + xml_format_note(fields))
        out: dict[str, str] = {}
        for name in fields:
            match = re.search(rf"<{name}>(.*?)</{name}>", reply, re.DOTALL)
            out[name] = match.group(1).strip() if match else ""
        return out

    async def __call__(self, *args: Any, **kwargs: Any) -> str:  # pragma: no cover - abstract
        raise NotImplementedError
