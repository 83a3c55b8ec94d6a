"""Exceptions with user-facing messages and the CLI exit codes they map to.

Exit codes (documented in ``dgmbench --help``): 0 ok, 1 a check failed (e.g. a
regression), 2 usage error, 3 data or model error.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DATA = 3


class DgmbenchError(Exception):
    """Base class: the message is printed as is, without a traceback."""

    exit_code = EXIT_DATA


class UsageError(DgmbenchError):
    """Bad arguments or an unknown name."""

    exit_code = EXIT_USAGE


class DataError(DgmbenchError):
    """Missing, corrupt or invalid data (dataset files, sample arrays)."""

    exit_code = EXIT_DATA


class ChecksumError(DataError):
    """A file's checksum does not match the expected one."""


class ModelError(DgmbenchError):
    """A model or checkpoint cannot be loaded or does not behave as the protocol says."""

    exit_code = EXIT_DATA


class WeightsMissingError(DgmbenchError):
    """Feature-extractor weights are not available (offline, not given)."""

    exit_code = EXIT_DATA


class CheckFailed(DgmbenchError):
    """A check the user asked for failed (regression gate)."""

    exit_code = EXIT_CHECK_FAILED


def suggest(name: str, choices: Iterable[str], what: str = "name") -> str:
    """Return ``"unknown <what> 'x'; did you mean ...?"`` with the closest choices."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    msg = f"unknown {what} '{name}'"
    if close:
        msg += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    msg += f" (known: {', '.join(choices)})"
    return msg


def first_line(e: BaseException) -> str:
    """``"TypeName: first line of the message"`` of an exception."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


@contextlib.contextmanager
def model_boundary(what: str) -> Iterator[None]:
    """Turn anything a user's model code raises into a one-line :class:`ModelError` (exit 3).

    ``what`` names the call, e.g. ``"model 'vae'.sample(64)"``. dgmbench's own errors pass
    through; so does Ctrl-C. ``SystemExit`` (a factory calling ``sys.exit(0)``) is an error
    too: it must not end dgmbench with status 0 and no result. The original exception is
    kept as ``__cause__`` (``--debug`` prints it).
    """
    try:
        yield
    except (DgmbenchError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - user code may raise anything
        raise ModelError(f"{what} raised {first_line(e)}") from e
