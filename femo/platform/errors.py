"""Errors that name the problem. Jobs turn them into a one-line message and a non-zero exit."""

from __future__ import annotations


class FemoError(ValueError):
    """Base of femo's own errors: bad input, bad settings, a missing prerequisite."""


class MissingPrerequisiteError(FemoError):
    """Something a job needs is not installed or not there (jars, a table, a data folder)."""


class SqlFileError(FemoError):
    """A named SQL file does not exist or cannot be used as asked."""
