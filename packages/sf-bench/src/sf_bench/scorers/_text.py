"""Text helpers shared by the text scorers and the MATH loader (stdlib only, pure functions)."""

from __future__ import annotations

import re
import string

PUNCTUATION = frozenset(string.punctuation)
"""ASCII punctuation, the set the SQuAD/HotpotQA/DROP scripts remove."""


def answer_text(answer: object) -> str:
    """``answer`` as text: itself if a ``str``, ``""`` for None, else ``str(answer)``.

    Scorers are typed to take ``str``, but a caller that ignored the type (a solver returning a
    number) is scored on the number's text rather than failing.
    """
    return answer if isinstance(answer, str) else ("" if answer is None else str(answer))


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def remove_articles(text: str) -> str:
    """Replace the words ``a``, ``an``, ``the`` by a space (SQuAD/HotpotQA/DROP rule)."""
    return _ARTICLES.sub(" ", text)


def white_space_fix(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def remove_punc(text: str) -> str:
    """Drop every ASCII punctuation character."""
    return "".join(ch for ch in text if ch not in PUNCTUATION)


def squad_normalize(text: str) -> str:
    """SQuAD-style normalisation used by HotpotQA: lower, drop punctuation, articles, extra spaces.

    The order is the official one (``hotpot_evaluate_v1.normalize_answer``): lower-case, remove
    punctuation, remove articles, fix whitespace.
    """
    return white_space_fix(remove_articles(remove_punc(text.lower())))


def is_number(text: str) -> bool:
    """True iff Python's ``float()`` accepts ``text`` (the DROP script's test, kept as is).

    Note: this accepts ``"nan"``, ``"inf"`` and digit separators such as ``"1_000"`` exactly as
    the official script does.
    """
    try:
        float(text)
    except ValueError:
        return False
    return True


def last_boxed_only_string(text: str) -> str | None:
    r"""Return the last ``\boxed{...}`` / ``\fbox{...}`` (or ``\boxed X``) group of ``text``.

    Braces are matched by depth, so any nesting works (``\boxed{\frac{\sqrt{3}}{2}}``). The
    last occurrence of either command wins. Returns None when there is none or its braces never
    close. Follows ``hendrycks/math`` ``modeling/dataset/util.py:last_boxed_only_string``, except
    that the original prefers any ``\boxed`` over a later ``\fbox``, and also accepts the
    ``\boxed 5`` form (as PRM800K's grader does).
    """
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    command = "\\boxed" if text.startswith("\\boxed", idx) else "\\fbox"
    start = idx + len(command)
    brace = start
    while brace < len(text) and text[brace] in " \t":
        brace += 1
    if brace < len(text) and text[brace] == "{":
        depth = 0
        for i in range(brace, len(text)):
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return command + text[brace : i + 1]
        return None
    if command == "\\boxed" and brace > start:
        # "\boxed 5" form: the argument is the next token, up to "$" or whitespace.
        token = re.match(r"[^\s$]+", text[brace:])
        return None if token is None else "\\boxed " + token.group(0)
    return None


def remove_boxed(boxed: str) -> str | None:
    r"""Strip ``\boxed{`` / ``\fbox{`` ... ``}`` (or ``\boxed ``) from a group; None if malformed."""
    if boxed.startswith("\\boxed "):
        return boxed[len("\\boxed ") :]
    for left in ("\\boxed{", "\\fbox{"):
        if boxed.startswith(left) and boxed.endswith("}"):
            return boxed[len(left) : -1]
    return None


def last_boxed_answer(text: str) -> str | None:
    r"""The content of the last ``\boxed{}`` / ``\fbox{}`` of ``text``, or None."""
    boxed = last_boxed_only_string(text)
    return None if boxed is None else remove_boxed(boxed)
