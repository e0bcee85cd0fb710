"""Error kinds that the command line maps to distinct exit codes.

Library code raises these (or subclasses that also derive from the matching builtin, e.g.
``class AnnotationError(InputError, ValueError)``) so that a script can tell a typo in a flag from a
damaged cache or an unreachable Hub. Anything else that escapes a command is a bug: the CLI reports it
with its traceback instead of dressing it up as a user mistake.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the ``mer`` command (documented in the README)."""

    OK = 0
    BUG = 1  #: an unexpected exception: the traceback is saved and its path printed
    USAGE = 2  #: a bad flag, option value or name (nothing was run)
    BAD_INPUT = 3  #: a dataset, sheet, frame, video or config that cannot be used as given
    INTEGRITY = 4  #: a checksum, cache, checkpoint or run record that does not match what it claims
    HUB = 5  #: the Hugging Face Hub (or its local cache) could not provide what was asked
    RUN_FAILED = 6  #: training or evaluation failed (a NaN loss, folds that failed after retries)


class MerError(Exception):
    """Base of the errors the CLI prints as one line; ``exit_code`` says which kind it is."""

    exit_code: ExitCode = ExitCode.BUG


class UsageError(MerError):
    """A flag, ``-o`` option, name or combination of them that mer cannot honour."""

    exit_code = ExitCode.USAGE


class InputError(MerError):
    """Input data (sheet, frames, video, flow images, config file) that cannot be used as given."""

    exit_code = ExitCode.BAD_INPUT


class IntegrityError(MerError):
    """Stored bytes that do not match their record: cache, checkpoint, artifact, run directory."""

    exit_code = ExitCode.INTEGRITY


class HubError(MerError):
    """The Hub or its local cache could not provide a file (offline, missing, refused)."""

    exit_code = ExitCode.HUB


class RunFailedError(MerError):
    """Training or evaluation did not produce a valid result."""

    exit_code = ExitCode.RUN_FAILED


# Leaf errors for library code that has no error class of its own. Each keeps a builtin base so that
# callers written against the builtin (``except ValueError``) still catch it.


class OptionValueError(UsageError, ValueError):
    """A flag or option value outside what it accepts (``--folds 3-1``, ``-o epochs=abc``)."""


class UnavailableError(UsageError, RuntimeError):
    """A feature asked for that needs something not installed here (dlib, opencv-contrib)."""


class BadInputError(InputError, ValueError):
    """Input whose content cannot be used (a malformed file, a clip too short, a bad config field)."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the command needs that is not there (dataset root, run, artifact)."""


class NonFiniteError(RunFailedError, FloatingPointError):
    """A model that returned NaN or infinite scores (it diverged)."""


def exit_code_of(exc: BaseException) -> ExitCode:
    """The exit code the CLI uses for ``exc`` (``BUG`` for anything that is not a ``MerError``)."""
    return exc.exit_code if isinstance(exc, MerError) else ExitCode.BUG
