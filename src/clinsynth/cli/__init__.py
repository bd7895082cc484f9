"""The ``clinsynth`` command line (typer + rich).

``main()`` turns every :class:`~clinsynth.errors.ClinsynthError` into one line on stderr and exit
code 2, without a traceback.
"""

from __future__ import annotations

import logging
import sys

from clinsynth.cli._app import app
from clinsynth.cli._core import parse_conditions
from clinsynth.errors import ClinsynthError

__all__ = ["app", "main", "parse_conditions"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    from clinsynth.cli import _commands  # noqa: F401  (registers the core commands)

    # The library only logs; the CLI shows its warnings as plain lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("Warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    root = logging.getLogger("clinsynth")
    if not root.handlers:
        root.addHandler(handler)

    try:
        app(args=argv, standalone_mode=False)
    except ClinsynthError as exc:
        first, *rest = str(exc).splitlines() or [""]
        print(f"Error: {first}", file=sys.stderr)
        for line in rest:
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; no output was written.", file=sys.stderr)
        return 130
    except SystemExit as exc:  # typer's --help and usage errors
        return int(exc.code or 0)
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return 0
