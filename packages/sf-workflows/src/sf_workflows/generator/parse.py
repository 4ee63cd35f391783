"""Parse a generator's reply into workflow source."""

from __future__ import annotations

import ast
import re
import textwrap

from sf_workflows.errors import WorkflowParseError

_GRAPH = re.compile(r"<graph>(.*?)(?:</graph>|\Z)", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _unfence(text: str) -> str:
    blocks = [b for b in _FENCE.findall(text) if "class Workflow" in b]
    return blocks[-1] if blocks else text


def parse_workflow(text: str) -> str:
    """The workflow source in a generator reply.

    Looks, in order, for a ``<graph>…</graph>`` block (an unclosed ``<graph>`` is accepted,
    since generation usually stops at ``</graph>``), a fenced code block holding
    ``class Workflow``, and finally for ``class Workflow`` in the bare text (all of it when it
    is valid Python, else from
    ``class Workflow`` on). A fence inside
    ``<graph>`` is removed.

    Raises:
        WorkflowParseError: no workflow found (the message says what was expected).
    """
    match = _GRAPH.search(text)
    if match:
        body = _unfence(match.group(1))
    else:
        fenced = [b for b in _FENCE.findall(text) if "class Workflow" in b]
        if fenced:
            body = fenced[-1]
        elif "class Workflow" in text:
            body = text if _parses(text) else text[text.index("class Workflow") :]
        else:
            raise WorkflowParseError(
                "no workflow found: the reply must contain the class Workflow inside <graph> and </graph>"
            )
    body = textwrap.dedent(body).strip("\n")
    if "class Workflow" not in body:
        raise WorkflowParseError("the <graph> block does not define class Workflow")
    return body.rstrip() + "\n"
