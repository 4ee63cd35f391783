"""Test doubles other packages' tests reuse.

- :class:`Script`: scripted replies (rules matched on the last user message, or a queue).
- :class:`ScriptedLLM`: an in-process :class:`~sf_workflows.protocols.LLM`.
- :class:`ScriptedServer`: a real OpenAI-compatible HTTP server on localhost (stdlib
  ``http.server`` in a thread) with scripted replies, a fixed latency and fault injection
  (:class:`Fault`: error statuses with or without ``Retry-After``, connections reset mid-body,
  hangs, empty ``choices``, non-JSON 200 bodies, slow drips; queued or at a random rate), so
  tests drive the real ``openai`` client over real HTTP.
- :func:`write_fake_scoreflow_checkout`: a directory laid out like a ScoreFlow checkout.
- :func:`custom_workflow` (a one-operator workflow around a body) and :func:`run_in_context` (an
  operator call with a run context set).
"""

from sf_workflows.testing._scoreflow import FAKE_SCOREFLOW_TEMPLATE, write_fake_scoreflow_checkout
from sf_workflows.testing._script import (
    Responder,
    Script,
    ScriptedLLM,
    answer_script,
    count_tokens,
    last_user_message,
)
from sf_workflows.testing._server import Fault, ScriptedServer
from sf_workflows.testing._workflows import custom_workflow, run_in_context

__all__ = [
    "FAKE_SCOREFLOW_TEMPLATE",
    "Fault",
    "Responder",
    "Script",
    "ScriptedLLM",
    "ScriptedServer",
    "answer_script",
    "count_tokens",
    "custom_workflow",
    "last_user_message",
    "run_in_context",
    "write_fake_scoreflow_checkout",
]
