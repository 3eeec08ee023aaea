"""The ``quantlab`` command line: verb discovery, logging, one-line errors.

Domain errors (:class:`~quantlab.errors.QuantlabError`), bad arguments (``ValueError``)
and missing files print as ``quantlab <verb>: error: ...`` with exit code 2, never as a
traceback; ``QUANTLAB_DEBUG=1`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence

import quantlab.commands as _commands
from quantlab import __version__
from quantlab.config import env


def _verb_modules() -> list:
    modules = []
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"quantlab.commands.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            modules.append(module)
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantlab",
        description="Record Binance trades into an HDF5 store and research pairs in notebooks.",
    )
    parser.add_argument("--version", action="version", version=f"quantlab {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        help="DEBUG, INFO, WARNING or ERROR (default: $QUANTLAB_LOG_LEVEL or INFO)",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module in _verb_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _verb=module.NAME)
    return parser


def setup_logging(level: str | None) -> None:
    name = (level or env("QUANTLAB_LOG_LEVEL", "INFO") or "INFO").upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"--log-level: {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    logging.basicConfig(
        level=getattr(logging, name),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def one_line_warnings(verb: str) -> None:
    """Show Python warnings as ``quantlab <verb>: warning: <message>`` on one line, not in
    Python's ``file:line: Category: message`` + source-line form (``QUANTLAB_DEBUG=1`` keeps it)."""
    if os.environ.get("QUANTLAB_DEBUG"):
        return

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"quantlab {verb}: warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show


def _quiet_broken_pipe() -> int:
    """``quantlab info | head``: the reader left; exit quietly (no traceback, no flush error)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from quantlab.errors import QuantlabError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    try:
        setup_logging(args.log_level)
        one_line_warnings(args._verb)
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (QuantlabError, ValueError, TypeError, FileNotFoundError, PermissionError, OSError) as exc:
        if os.environ.get("QUANTLAB_DEBUG"):
            raise
        msg = str(exc) or exc.__class__.__name__
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        print(f"quantlab {args._verb}: error: {msg}", file=sys.stderr)
        return 2
