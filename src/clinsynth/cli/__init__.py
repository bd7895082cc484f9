"""The ``clinsynth`` command line (typer + rich).

``main()`` is the one error path: every :class:`~clinsynth.errors.ClinsynthError` and every usage
error (unknown command or option, bad choice or value, missing option) becomes ONE line on stderr
and exit code 2, without a traceback. typer up to 0.20 raises click's exceptions; later typers
raise those of their own copy of click (``typer._click``), which are not click's classes: both are
recognised by their class names.

Start-up stays light: the command modules import pandas, torch and the library inside the
commands, so ``clinsynth --help`` does not pay for them.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from clinsynth.cli._app import app
from clinsynth.errors import ClinsynthError

__all__ = ["app", "main", "parse_conditions", "one_line"]

#: How many of a multi-problem error's problems the one line shows.
MAX_PROBLEMS = 5


def parse_conditions(items: list[str]) -> dict[str, Any]:
    """``["condition=diabetes", "age>=60"]`` -> ``{"condition": "diabetes", "age": (60, None)}``."""
    from clinsynth.synthesizers._condition_parse import parse_condition_strings

    return parse_condition_strings(items)


def one_line(exc: ClinsynthError) -> str:
    """The error as one line: several problems joined with "; " (the first few, then a count).

    >>> from clinsynth.errors import DataError
    >>> one_line(DataError.from_problems("Bad data", ["a is wrong", "b is wrong"]))
    'Bad data (2 problems): a is wrong; b is wrong'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
    problems = [p for p in exc.problems if p]
    if len(problems) > 1 and lines[0].endswith(":"):
        shown = "; ".join(" ".join(p.split()) for p in problems[:MAX_PROBLEMS])
        more = len(problems) - MAX_PROBLEMS
        return f"{lines[0][:-1]}: {shown}" + (f"; and {more} more" if more > 0 else "")
    return " ".join(lines)


def _classes(exc: BaseException) -> set[str]:
    """Names of the click/typer classes ``exc`` is an instance of (click's or typer's copy)."""
    return {
        klass.__name__
        for klass in type(exc).__mro__
        if klass.__module__.split(".")[0] in ("click", "typer")
    }


def _usage_line(exc: Any) -> str:
    """A click/typer usage error as one line, with where to find help."""
    message = " ".join(str(exc.format_message()).split())
    message = message.replace("Value error, ", "")  # typer >= 0.21's validation prefix
    sentences: list[str] = []
    for sentence in re.split(r"(?<=[.?!])\s+", message):
        if not sentences or sentence != sentences[-1]:  # typer 0.20 says "Did you mean" twice
            sentences.append(sentence)
    message = " ".join(sentences)
    if message and message[-1] not in ".!?":
        message += "."
    ctx = getattr(exc, "ctx", None)
    where = f" See '{ctx.command_path} --help'." if ctx is not None else ""
    return f"Error: {message}{where}"


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (not the one at creation: tests and
    embedding programs replace it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _install_warning_handler() -> None:
    # The library only logs; the CLI shows its warnings as plain lines.
    root = logging.getLogger("clinsynth")
    if not root.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("Warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 done, 2 usage or data error, 130 interrupted)."""
    from clinsynth.cli import _commands  # noqa: F401  (registers the commands)

    _install_warning_handler()
    try:
        code = app(args=argv, standalone_mode=False, prog_name="clinsynth")
    except ClinsynthError as exc:
        print(f"Error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except Exception as exc:
        names = _classes(exc)
        if "NoArgsIsHelpError" in names:  # `clinsynth` alone: the help is the answer
            exc.show()  # type: ignore[attr-defined]
            return 0
        if "ClickException" in names:
            print(_usage_line(exc), file=sys.stderr)
            return 2
        if "Abort" in names:
            print("Aborted; no output was written.", file=sys.stderr)
            return 1
        raise
    if code == 130:  # typer turns Ctrl+C into exit code 130
        print("Interrupted; no output was written.", file=sys.stderr)
    return code if isinstance(code, int) else 0
