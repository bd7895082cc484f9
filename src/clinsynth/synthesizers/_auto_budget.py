"""The time budget of AutoSynthesizer: durations, and epochs that fit a share of the budget."""

from __future__ import annotations

import math
import re
import time
from typing import Any

from clinsynth.errors import ParameterError

#: A model trained by epochs is skipped when its share of the budget allows fewer than this
#: fraction of its epochs.
_MIN_EPOCH_FRACTION = 0.1
#: Epochs chosen from a budget are rounded down to this grid (times powers of 10).
_EPOCH_GRID = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0}


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number or a text such as ``"90s"``, ``"10m"``, ``"1.5h"``, ``"1h30m"``.

    Examples
    --------
    >>> parse_duration("10m"), parse_duration("90s"), parse_duration("1h30m"), parse_duration(45)
    (600.0, 90.0, 5400.0, 45.0)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower().replace(" ", "")
        parts = re.findall(r"(\d+(?:\.\d+)?)([a-z]*)", text)
        if (
            not parts
            or "".join(a + b for a, b in parts) != text
            or any(unit not in _UNITS for _, unit in parts)
        ):
            raise ParameterError(
                f"Cannot read the duration {value!r}. Write seconds or a number with a unit: "
                "'90s', '10m', '1h', '1h30m'."
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise ParameterError(
            f"A duration must be a number of seconds or a text like '10m'. Got {value!r}."
        )
    if not seconds > 0:
        raise ParameterError(f"A duration must be positive. Got {value!r}.")
    return seconds


def _is_duration(value: Any) -> bool:
    if value is None:
        return True
    try:
        parse_duration(value)
    except ParameterError:
        return False
    return True


def _floor_to_grid(epochs: float) -> int:
    if epochs < 1:
        return 0
    power = 10 ** math.floor(math.log10(epochs))
    best = max(g for g in _EPOCH_GRID if g * power <= epochs + 1e-9)
    return max(1, int(best * power))


class _EpochClock:
    """A progress callback that timestamps the epochs a deep model reports."""

    def __init__(self) -> None:
        self.times: dict[int, float] = {}

    def __call__(self, total: int, completed: int, message: str) -> None:
        if message.startswith("epoch"):
            self.times[completed] = time.perf_counter()
