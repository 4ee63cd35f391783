"""Token prices and cost accounting. The table is a plain mapping the user can extend."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sf_workflows.errors import WorkflowConfigError

PRICES_ENV = "SF_WORKFLOWS_PRICES"
"""Environment variable naming a JSON price file merged over the defaults."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million tokens."""

    input: float
    output: float


DEFAULT_PRICES: Mapping[str, Price] = {
    # Public list prices (USD / 1M tokens) at the time of writing; providers change them.
    # Override or extend with --prices FILE / SF_WORKFLOWS_PRICES (see PriceTable.from_file).
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
}


class PriceTable:
    """Model name → :class:`Price`, with dated and provider-prefixed names resolved.

    ``lookup("gpt-4o-mini-2024-07-18")`` and ``lookup("openai/gpt-4o-mini")`` find
    ``gpt-4o-mini``: an exact match wins, else the longest table key that the name (without a
    ``provider/`` prefix) starts with. Unknown models (local servers) cost 0 and are reported
    by :meth:`lookup` as ``None``.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None):
        self._prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def default(cls) -> PriceTable:
        """The built-in table, extended by the file named in ``$SF_WORKFLOWS_PRICES`` if set."""
        table = cls()
        path = os.environ.get(PRICES_ENV)
        return table.extended(cls.read_file(path)) if path else table

    @staticmethod
    def read_file(path: str | os.PathLike[str]) -> dict[str, Price]:
        """Read ``{"model": {"input": usd_per_mtok, "output": usd_per_mtok}, ...}``.

        An entry may also be ``"model": [input, output]``.

        Raises:
            WorkflowConfigError: the file is missing or malformed.
        """
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkflowConfigError(f"cannot read price file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise WorkflowConfigError(f"price file {path} must hold a JSON object of model -> prices")
        entries = cast("dict[str, Any]", raw)  # a JSON object: str keys, values checked by _parse_price
        return {model: _parse_price(model, value, path) for model, value in entries.items()}

    def extended(self, prices: Mapping[str, Price]) -> PriceTable:
        """A new table with ``prices`` added or overriding entries."""
        return PriceTable({**self._prices, **prices})

    def lookup(self, model: str) -> Price | None:
        """The price of ``model`` (see class docstring), or ``None`` when unknown."""
        if model in self._prices:
            return self._prices[model]
        name = model.rsplit("/", 1)[-1]
        if name in self._prices:
            return self._prices[name]
        matches = [key for key in self._prices if name.startswith(key)]
        return self._prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for one call (0 for unknown models)."""
        price = self.lookup(model)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6

    def as_dict(self) -> dict[str, dict[str, float]]:
        """The table as JSON-ready data."""
        return {m: {"input": p.input, "output": p.output} for m, p in sorted(self._prices.items())}


def _parse_price(model: str, value: Any, path: str | os.PathLike[str]) -> Price:
    """``value`` (one JSON entry: ``{"input", "output"}`` or ``[input, output]``) as a Price.

    ``value`` is Any on purpose: ``float()`` and the unpacking are the check.

    Raises:
        WorkflowConfigError: it has neither shape, or a price is not a number.
    """
    try:
        if isinstance(value, dict):
            entry = cast("dict[str, Any]", value)  # a JSON object: str keys
            return Price(float(entry["input"]), float(entry["output"]))
        inp, out = value
        return Price(float(inp), float(out))
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkflowConfigError(
            f'price file {path}: entry {model!r} must be {{"input": x, "output": y}} (USD per 1M tokens)'
        ) from exc
