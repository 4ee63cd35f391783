"""Operator styles: which prompts and behaviour the operators use (stdlib only).

A style is data, not a code path of its own: the operators read their prompt templates and a
few numbers from the style of the running workflow (``RunContext.style``). Two exist:

* ``ours`` (:data:`OURS`, the default): this package's prompts (one module per operator), no
  system message, repairs in ``Test`` keep the best version, ``Programmer`` uses the run's code
  timeout.
* ``scoreflow``: Gen-Verse/ScoreFlow's operators as published. Its prompt texts are *not*
  shipped here: ScoreFlow's repository carries no license, so they are read from the user's own
  checkout (:func:`sf_workflows.generator.scoreflow.operator_style`). What the style adds on
  top of them is behaviour: MetaGPT's ``ActionNode`` answer format note (MIT, quoted below),
  the system message MetaGPT sends with every call, ``Test``'s 10 (HumanEval) / 6 (MBPP)
  rounds then a fresh ``code_generate``, ``Programmer``'s 30 s x 3 attempts.

A style travels to the sandbox as JSON (:meth:`OperatorStyle.to_json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCOREFLOW_SYSTEM_MESSAGE = "You are a helpful assistant."
"""MetaGPT's ``BaseLLM.system_prompt``, sent as the system message of every ScoreFlow call
(MetaGPT, MIT license: ``metagpt/provider/base_llm.py``)."""

XML_FORMAT_NOTE = (
    "\n### Response format (must be strictly followed): All content must be enclosed in the given XML "
    "tags, ensuring each opening <tag> has a corresponding closing </tag>, with no incomplete or "
    "self-closing tags allowed.\n\n{examples}\n"
)
"""What MetaGPT's ``ActionNode.xml_compile`` appends to an ``xml_fill`` prompt; ``examples`` is
one ``<field>content</field>`` line per output field (MetaGPT, MIT license:
``metagpt/actions/action_node.py``)."""


def xml_format_note(fields: tuple[str, ...]) -> str:
    """MetaGPT's response-format note for ``fields`` (see :data:`XML_FORMAT_NOTE`)."""
    return XML_FORMAT_NOTE.format(examples="\n".join(f"<{f}>content</{f}>" for f in fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorStyle:
    """Prompts and behaviour settings the operators read.

    ``prompts`` maps a prompt key to its template; a key the style lacks means the operator's
    own (``ours``) prompt. Keys used by the ``scoreflow`` style are ScoreFlow's ``op_prompt.py``
    names (``SC_ENSEMBLE_PROMPT``, ``REVIEW_PROMPT``, ``PYTHON_CODE_VERIFIER_PROMPT``,
    ``ANSWER_GENERATION_PROMPT``, ``REFLECTION_ON_PUBLIC_TEST_PROMPT``,
    ``CustomCodeGenerate_PROMPT``).
    """

    name: str = "ours"
    """``ours`` or ``scoreflow``."""
    system_message: str | None = None
    """Sent as the first message of every operator call; ``None`` sends none."""
    prompts: Mapping[str, str] = field(default_factory=dict[str, str])
    test_loop: int = 3
    """``Test`` repair rounds when the call does not pass ``test_loop``."""
    programmer_timeout: float | None = None
    """Seconds one ``Programmer`` execution may take; ``None`` = the run's code timeout."""
    programmer_attempts: int = 3

    @property
    def scoreflow(self) -> bool:
        """True for ScoreFlow's operators."""
        return self.name == "scoreflow"

    def prompt(self, key: str) -> str:
        """The template ``key``.

        Raises:
            KeyError: the style lacks it (a ScoreFlow checkout without that prompt).
        """
        try:
            return self.prompts[key]
        except KeyError:
            raise KeyError(f"operator style {self.name!r} has no prompt {key!r}") from None

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the sandbox job."""
        return {
            "name": self.name,
            "system_message": self.system_message,
            "prompts": dict(self.prompts),
            "test_loop": self.test_loop,
            "programmer_timeout": self.programmer_timeout,
            "programmer_attempts": self.programmer_attempts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> OperatorStyle:
        """Inverse of :meth:`to_json`; ``None`` or ``{}`` is :data:`OURS`."""
        if not data:
            return OURS
        timeout = data.get("programmer_timeout")
        prompts: Mapping[str, object] = data.get("prompts") or {}
        return cls(
            name=str(data.get("name", "ours")),
            system_message=data.get("system_message"),
            prompts={str(k): str(v) for k, v in prompts.items()},
            test_loop=int(data.get("test_loop", 3)),
            programmer_timeout=None if timeout is None else float(timeout),
            programmer_attempts=int(data.get("programmer_attempts", 3)),
        )


OURS = OperatorStyle()
"""The default style: this package's own prompts."""
