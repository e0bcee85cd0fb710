"""How the command line reports an exception, and how it sets up logging.

A :class:`~mer.errors.MerError` is a mistake in what the user gave (or a failed run): one line and the
exit code of its kind. Anything else is a bug in mer: a short line, the traceback saved under
``$MER_HOME/logs/`` and its path printed, exit code 1. ``--debug`` (or ``MER_DEBUG=1``) prints the full
traceback in both cases.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import traceback
from pathlib import Path

from mer.errors import ExitCode, MerError, exit_code_of


def debug_from_env() -> bool:
    """True when ``MER_DEBUG`` is set to something other than empty, 0, false or no."""
    return os.environ.get("MER_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def save_traceback(exc: BaseException) -> Path | None:
    """Write ``exc``'s traceback to ``$MER_HOME/logs/bug-<time>-<pid>.txt`` (None if it cannot be)."""
    import mer
    from mer.protocols.config import mer_home

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = mer_home() / "logs" / f"bug-{stamp}-{os.getpid()}.txt"
    text = f"mer {mer.__version__}\n" + "".join(traceback.format_exception(exc))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:  # a read-only or full home: the message still goes out, without the file
        return None
    return path


def report(exc: BaseException, *, debug: bool, say) -> ExitCode:
    """Tell the user about ``exc`` through ``say`` (one call per line) and return the exit code.

    Args:
        exc: The exception that ended the command.
        debug: Print the full traceback as well.
        say: ``say(text)`` writes one line to stderr.
    """
    code = exit_code_of(exc)
    if debug:
        say("".join(traceback.format_exception(exc)).rstrip())
    if isinstance(exc, MerError):
        say(f"error: {exc}")
        return code
    where = save_traceback(exc)
    saved = f"traceback saved to {where}" if where else "the traceback could not be saved"
    say(f"error: unexpected {type(exc).__name__}: {exc}")
    say(
        f"This is a bug in mer, not a mistake in your input; {saved}"
        + ("" if debug else " (rerun with --debug or MER_DEBUG=1 to print it)")
        + ". Please include it in a bug report."
    )
    return code


_HANDLER_NAME = "mer-cli"


def configure_logging(level: int, console=None) -> None:
    """Send mer's log records (the training loop's per-epoch lines among them) to stderr via rich.

    Args:
        level: ``logging.INFO`` (default of the CLI) or ``logging.WARNING`` (``--quiet``).
        console: The rich console progress bars draw on (stderr), so log lines print above them.

    Idempotent: a second call (several commands in one process, as in tests) replaces the handler.
    """
    from rich.console import Console
    from rich.logging import RichHandler

    logger = logging.getLogger("mer")
    for h in list(logger.handlers):
        if h.get_name() == _HANDLER_NAME:
            logger.removeHandler(h)
    handler = RichHandler(
        console=console or Console(stderr=True), show_path=False, markup=False, rich_tracebacks=False
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # a root handler some library installs (tensorboard's) would print it twice
