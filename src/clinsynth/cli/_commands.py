"""Imports every command module so that its commands register on the shared typer app."""

from clinsynth.cli import _core  # noqa: F401
from clinsynth.cli import _simulate  # noqa: F401
from clinsynth.cli import _evaluate  # noqa: F401
from clinsynth.cli import _dashboard  # noqa: F401
