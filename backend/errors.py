"""Errors a user can fix: each carries one sentence naming the input and the fix."""
from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user; the CLI prints the message alone and exits with code 2."""

    exit_code = 2


class WeightsUnavailable(UserInputError):
    """A weights file is missing and could not be downloaded."""

    exit_code = 3


class CheckpointFormatError(UserInputError):
    """A file is not a checkpoint of the kind that was expected."""


class Cancelled(Exception):
    """The user cancelled a running job; nothing was written."""
