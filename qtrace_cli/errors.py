"""Errors qtrace raises, each carrying the exit code the command line uses.

    QtraceError                 base class; exit code 1
    ├── UsageError              a flag, TARGET or --init value is malformed (2)
    ├── LoadError               the model could not be imported or built (3)
    ├── OutputError             a file qtrace was asked to write could not be (1)
    └── CheckFailed             a check or comparison did not hold (1)

The command line catches `QtraceError` only, prints its message on stderr and
exits with `exit_code`. The core raises them and never prints.
"""

from __future__ import annotations


class QtraceError(Exception):
    """Base class of every error qtrace reports to the user."""

    exit_code = 1


class UsageError(QtraceError):
    """A flag, TARGET or --init value was malformed or names nothing."""

    exit_code = 2


class LoadError(QtraceError):
    """The model could not be imported, found or constructed."""

    exit_code = 3


class OutputError(QtraceError):
    """A file qtrace was asked to write could not be written."""

    exit_code = 1


class CheckFailed(QtraceError):
    """An expectation, baseline or comparison did not hold."""

    exit_code = 1
