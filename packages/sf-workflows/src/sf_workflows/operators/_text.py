"""Text helpers shared by operators: XML-ish fields and code extraction (stdlib only)."""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(def |async def |class |import |from |@)", re.MULTILINE)


def extract_tag(text: str, tag: str) -> str | None:
    """The content of the last ``<tag>…</tag>`` in ``text``, stripped.

    Without a closed tag, the content of an unclosed final ``<tag>…``; ``None`` when the tag
    does not occur.
    """
    closed = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL | re.IGNORECASE)
    if closed:
        return closed[-1].strip()
    match = re.search(rf"<{tag}>(.*)\Z", text, flags=re.DOTALL | re.IGNORECASE)
    return match.group(1).strip() if match else None


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _defines(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name
        for node in tree.body
    )


def _longest_parsing_prefix(code: str) -> str | None:
    lines = code.rstrip().splitlines()
    while lines:
        candidate = "\n".join(lines)
        if _parses(candidate) is not None:
            return candidate
        lines.pop()
    return None


def _strip_script_parts(tree: ast.Module, code: str) -> str:
    """``code`` without the top-level statements that run things at import time.

    Those are ``if __name__ == ...`` blocks and bare expression statements (``print(f(1))``);
    everything else is kept.
    """
    lines = code.splitlines()
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        is_main = (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        )
        is_call = isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant)
        if (is_main or is_call) and node.end_lineno is not None:
            drop.append((node.lineno, node.end_lineno))
    kept = [line for i, line in enumerate(lines, 1) if not any(a <= i <= b for a, b in drop)]
    stripped = "\n".join(kept).strip()
    return (stripped or code.strip()) + "\n"


def extract_code(text: str, entry_point: str | None = None) -> str:
    """Python code from an LLM reply.

    Takes the fenced block that parses and defines ``entry_point`` (the last such), else the
    longest fenced block that parses, else the reply itself from its first ``def``/``import``
    line, cut back to its longest parsing prefix. Top-level script parts (``if __name__ ==
    "__main__"`` blocks, bare calls) are dropped so that tests can import the code. Linear in
    the reply's length (one parse per candidate block, one per trailing line at worst), unlike
    MetaGPT's ``sanitize`` that tries every line span. When nothing parses, the stripped reply
    is returned unchanged (running it then fails with a clear syntax error).
    """
    blocks = [body for _lang, body in _FENCE.findall(text)]
    parsed = [(b, t) for b in blocks if (t := _parses(b)) is not None and b.strip()]
    chosen: tuple[str, ast.Module] | None = None
    if entry_point:
        with_entry = [(b, t) for b, t in parsed if _defines(t, entry_point)]
        if with_entry:
            chosen = with_entry[-1]
    if chosen is None and parsed:
        chosen = max(parsed, key=lambda bt: len(bt[0]))
    if chosen is None:
        body = blocks[-1] if blocks else text
        start = _CODE_START.search(body)
        prefix = _longest_parsing_prefix(body[start.start() :] if start else body)
        if prefix is not None and prefix.strip():
            tree = _parses(prefix)
            assert tree is not None
            chosen = (prefix, tree)
    if chosen is None:
        return text.strip()
    return _strip_script_parts(chosen[1], chosen[0])
