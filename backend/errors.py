"""Errors a user can fix: each carries one sentence naming the input and the fix.

A sentence about a job field writes the field as ``{name}`` and lists it in ``fields``;
each face renders the placeholders in its own words (the CLI as ``--name``, the service as
the JSON field ``name``). ``str(error)`` renders them as the bare field names, which is
what a job built in Python sees.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator


class UserInputError(Exception):
    """Bad input from the user; the CLI prints the sentence alone and exits with code 2."""

    exit_code = 2

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.template = message
        self.fields = fields

    def render(self, label: Callable[[str], str] = str) -> str:
        """The sentence with each ``{field}`` written as ``label(field)``."""
        text = self.template
        for name in self.fields:
            text = text.replace("{" + name + "}", label(name))
        return text

    def __str__(self) -> str:
        return self.render()


class WeightsUnavailable(UserInputError):
    """A weights file is missing and could not be downloaded."""

    exit_code = 3


class CheckpointFormatError(UserInputError):
    """A file is not a checkpoint of the kind that was expected."""


class DeviceMemoryError(UserInputError):
    """Not even one window fits in the device's free memory."""


class Cancelled(Exception):
    """The user cancelled a running job; nothing was written."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM); unwinds like Ctrl-C, so every clean-up runs."""


@contextlib.contextmanager
def blame(field: str) -> Iterator[None]:
    """Errors raised inside that name no field are about the job's ``field``."""
    try:
        yield
    except UserInputError as error:
        if not error.fields:
            error.fields = (field,)
        raise


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of ``error``'s message, cut to ``limit`` characters, or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class ClusterError(UserInputError):
    """A Ray run that cannot finish (a worker failing, storage the workers cannot reach): one sentence, exit 1."""

    exit_code = 1
