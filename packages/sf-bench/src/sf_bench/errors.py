"""Exceptions raised by sf-bench. Messages say what the user can do about them."""

from __future__ import annotations


class BenchError(Exception):
    """Base class of every sf-bench error."""


class BenchConfigError(BenchError):
    """A user mistake: unknown dataset or split, bad option, unreadable solver spec."""


class DataError(BenchError):
    """A data file is missing or malformed (the message names the file and line)."""
