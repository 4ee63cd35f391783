"""What every stage of the loop is given: the run's settings, where to write, how to report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_train.config import ScoreDPOConfig
    from sf_train.profiles import RunProfile

__all__ = ["Reporter", "StageContext"]

Reporter = Callable[[str], None]
"""Receives one progress line at a time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StageContext:
    """The run a stage belongs to (nothing in it changes during the run)."""

    config: ScoreDPOConfig
    """Every setting of the run."""
    out: Path
    """The run directory (``config.output_dir``)."""
    report: Reporter
    """Progress lines go here."""
    profile: RunProfile
    """The run's profile: prompts, validity filters, scorers, operator style."""
    dataset: str
    """sf-bench dataset name that selects the scorer."""
    prompt_fn: Callable[[Any], str]
    """Problem → generator prompt."""
    quiet: bool = False
    """No progress bars (``--quiet``; :mod:`sf_train.progress`)."""
