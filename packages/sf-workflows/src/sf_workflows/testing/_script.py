"""Scripted replies and the in-process LLM double that serves them.

:class:`Script` answers a request from rules or a queue; :class:`ScriptedLLM` is an
:class:`~sf_workflows.protocols.LLM` that answers with one; :func:`answer_script` is a script
that answers every operator's prompt in the format it expects.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from sf_workflows.protocols import Completion, Message

__all__ = [
    "Responder",
    "Script",
    "ScriptedLLM",
    "as_responder",
    "answer_script",
    "count_tokens",
    "last_user_message",
]

Responder = Callable[[Mapping[str, Any]], str]
"""Gets the request (``model``, ``messages``, parameters) and returns the reply text."""


def last_user_message(request: Mapping[str, Any]) -> str:
    """The content of the request's last user message ("" if none)."""
    for message in reversed(list(request.get("messages", []))):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def count_tokens(text: str) -> int:
    """The doubles' token count: whitespace-separated words (deterministic, model-free)."""
    return len(text.split())


class Script:
    """Scripted replies.

    ``rules`` are ``(pattern, reply)`` pairs tried in order: ``pattern`` is a regular expression
    searched in the last user message; ``reply`` is a string or a callable taking the request.
    Before the rules, replies queued with :meth:`queue` are served first-in first-out. With no
    match, ``default`` is used (a string or callable); ``default=None`` raises ``LookupError``.
    Thread-safe.
    """

    def __init__(
        self,
        rules: Iterable[tuple[str, str | Responder]] = (),
        *,
        default: str | Responder | None = "OK",
        replies: Iterable[str] = (),
    ):
        self.rules = [(re.compile(p, re.DOTALL), r) for p, r in rules]
        self.default = default
        self._queue: deque[str] = deque(replies)
        self._lock = threading.Lock()

    def queue(self, *replies: str) -> None:
        """Serve these replies next, in order, whatever the request."""
        with self._lock:
            self._queue.extend(replies)

    def __call__(self, request: Mapping[str, Any]) -> str:
        """Return the reply to ``request``: the next queued reply, else the first matching rule's.

        A callable reply (or ``default``) is called with ``request`` and its result returned; with
        no queued reply and no matching rule, ``default`` answers.

        Raises:
            LookupError: nothing answers the request (no queued reply, no rule matches the last
                user message, and ``default`` is None).
        """
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        text = last_user_message(request)
        for pattern, reply in self.rules:
            if pattern.search(text):
                return reply(request) if callable(reply) else reply
        if self.default is None:
            raise LookupError(f"no scripted reply for: {text[:200]!r}")
        return self.default(request) if callable(self.default) else self.default


def as_responder(script: Script | Responder | str | Sequence[str]) -> Responder:
    """``script`` as a :data:`Responder`: a str answers every request, a list of str in turn."""
    if isinstance(script, str):
        return lambda _request: script
    if isinstance(script, Sequence):  # of str: a Script and a Responder are no sequences
        return Script(replies=cast("Sequence[str]", script), default=None)
    return script


class ScriptedLLM:
    """In-process LLM double implementing the ``LLM`` protocol (no HTTP).

    Records every request in :attr:`requests` (``model``, ``messages``, parameters) and counts
    tokens with :func:`count_tokens`; ``cost_per_token`` gives a deterministic cost.
    """

    def __init__(
        self,
        script: Script | Responder | str | Sequence[str] = "OK",
        *,
        model: str = "scripted",
        cost_per_token: float = 0.0,
    ):
        self.responder = as_responder(script)
        self.model = model
        self.cost_per_token = cost_per_token
        self.requests: list[dict[str, Any]] = []

    async def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        """Answer ``messages`` with the script's reply and record the request in :attr:`requests`.

        ``cache_tag`` is dropped from ``params``; the other parameters are recorded, not applied.

        Returns:
            The reply as a :class:`Completion` of :attr:`model`, with :func:`count_tokens` counts
            of the messages' contents and the reply, and cost ``(prompt + completion tokens) *
            cost_per_token``.

        Raises:
            LookupError: a :class:`Script` (or a list of replies, once used up) has no reply for
                the request.
        """
        params.pop("cache_tag", None)
        request = {"model": self.model, "messages": [dict(m) for m in messages], **params}
        self.requests.append(request)
        text = self.responder(request)
        pt = sum(count_tokens(str(m.get("content", ""))) for m in messages)
        ct = count_tokens(text)
        return Completion(
            text=text,
            model=self.model,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost=(pt + ct) * self.cost_per_token,
        )


def answer_script(answer: str = "42", *, code: str | Responder | None = None, letter: str = "A") -> Script:
    """A :class:`Script` that answers every operator's prompt in the format it expects.

    ScEnsemble picks ``letter``; Review, Revise, AnswerGenerate and Format answer ``answer``;
    Programmer gets ``def solve(): return answer``; CustomCodeGenerate and Test's fix get
    ``code`` (a string or a callable of the request; default: a stub defining ``solution``);
    anything else (Custom, generator prompts) gets ``"The answer is <answer>"``.
    """
    code_reply = code if code is not None else "def solution(*args):\n    return None\n"

    def fenced(request: Mapping[str, Any]) -> str:
        body = code_reply(request) if callable(code_reply) else code_reply
        return f"```python\n{body}\n```"

    return Script(
        [
            (
                r"<solution_letter>",
                f"<thought>they agree</thought><solution_letter>{letter}</solution_letter>",
            ),
            (
                r"<revised_solution>",
                f"<review>looks right</review><revised_solution>{answer}</revised_solution>",
            ),
            (r"<solution>the full improved", f"<solution>{answer}</solution>"),
            (r"<answer>the final answer only", f"<thought>step by step</thought><answer>{answer}</answer>"),
            (r"<answer>the final answer</answer>", f"<answer>{answer}</answer>"),
            (r"Define a function `solve\(\)`", f"```python\ndef solve():\n    return {answer!r}\n```"),
            (r"defines `[A-Za-z_0-9]+`|Write a complete, self-contained Python solution", fenced),
        ],
        default=f"The answer is {answer}",
    )
