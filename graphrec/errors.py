"""Exceptions raised by graphrec for problems a user can cause.

Every message names the thing, what was expected and what was found, and where
(file and line for a data file). The CLI prints them without a traceback.
"""

from __future__ import annotations


class GraphrecError(Exception):
    """Base class of every error graphrec raises for bad input or configuration."""


class DataFormatError(GraphrecError, ValueError):
    """A data file does not have the expected format.

    Args:
        path: The file: a path, or anything whose ``str()`` names it (a zip
            member shows as ``archive.zip:member``).
        message: What was expected and what was found.
        line: 1-based line number in the file, when the problem is on one line.
    """

    def __init__(self, path: object, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.detail = message
        where = f"{self.path} line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class DatasetNotFoundError(GraphrecError, FileNotFoundError):
    """A dataset's files are neither local nor downloadable."""


class UnknownIdError(GraphrecError, KeyError):
    """Raw ids that a :class:`~graphrec.data.Vocabulary` does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(GraphrecError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""
