"""Imports every command module so that its commands register on the shared typer app."""

# The import order is the order of the commands in `clinsynth --help`.
# ruff: noqa: I001

from clinsynth.cli import _core  # noqa: F401
from clinsynth.cli import _sample  # noqa: F401
from clinsynth.cli import _info  # noqa: F401
from clinsynth.cli import _simulate  # noqa: F401
from clinsynth.cli import _evaluate  # noqa: F401
from clinsynth.cli import _dashboard  # noqa: F401
from clinsynth.cli import _federate  # noqa: F401
