"""``np.searchsorted`` over fixed knots for millions of values, through a grid index.

Sampling maps every drawn value through a sorted list of knots: a normal score to the level or
the training value whose interval holds it, a decoded number to its nearest frequent value. A
binary search per value reads ``log2(knots)`` scattered knots and costs ~100 ns at a thousand
knots. :class:`GridSearch` cuts the knots' range into equal cells and stores, per cell, how many
knots lie before it; a value's cell (one multiply) gives a lower bound on its answer, and a
branchless search over the few knots a cell can hold (at most ``span``) finishes it, a handful of
vectorized passes. The answer is exactly ``np.searchsorted``'s, NaN included.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

#: Cells per knot, and the most cells an index holds (int32: 64 KiB).
_CELLS_PER_KNOT = 8
_MAX_CELLS = 16_384
#: Below this many knots, or when a cell may hold more than _MAX_SPAN of them, np.searchsorted.
_MIN_KNOTS = 4
_MAX_SPAN = 64


class GridSearch:
    """``np.searchsorted(knots, x, side)`` for arrays ``x``, exact and several times faster.

    Parameters
    ----------
    knots : array of float
        Sorted (non-decreasing) knots.
    side : {"left", "right"}
        As in :func:`numpy.searchsorted`.

    Examples
    --------
    >>> knots = np.linspace(-3.0, 3.0, 100) ** 3
    >>> x = np.random.default_rng(0).normal(scale=10, size=1000)
    >>> bool(np.array_equal(GridSearch(knots)(x), np.searchsorted(knots, x)))
    True
    """

    def __init__(self, knots: np.ndarray, side: Literal["left", "right"] = "left") -> None:
        self.knots = np.asarray(knots, dtype=np.float64)
        self.side = side
        self._start: np.ndarray | None = None
        m = len(self.knots)
        if m < _MIN_KNOTS or not np.all(np.isfinite(self.knots)):
            return
        lo, hi = float(self.knots[0]), float(self.knots[-1])
        if not hi > lo:
            return
        cells = min(_CELLS_PER_KNOT * m, _MAX_CELLS)
        scale = cells / (hi - lo)
        # Knots before each cell edge, from the edge before a value's cell to two after it, so
        # that a rounding of the cell by one either way still brackets the answer.
        edges = lo + (np.arange(-1, cells + 2) / scale)
        before = np.searchsorted(self.knots, edges, side=side)
        before[-1] = m  # past the last edge: every knot (edges round)
        span = int(np.max(before[3:] - before[:-3]))
        if span > _MAX_SPAN:
            return  # knots clustered far below the cell size: the grid would not help
        if max(abs(lo), abs(hi)) * 2.0**-46 > (hi - lo) / cells:
            return  # a float64 value's rounding would exceed a cell
        self._lo, self._scale, self._cells = lo, scale, cells
        # float32 values may find their cell in float32 when its rounding is far below a cell.
        self._float32 = max(abs(lo), abs(hi)) * 2.0**-18 < (hi - lo) / cells
        self._start = before[:-3].astype(np.int32)
        # Sentinels after the last knot: a probe past it never moves the answer on. Probing
        # ``step`` knots on reads ``padded[index + step - 1]``: a view shifted by step - 1.
        padded = np.concatenate([self.knots, np.full(1 << max(span, 1).bit_length(), np.inf)])
        self._probes = [
            (np.int32(1 << j), padded[(1 << j) - 1 :])
            for j in reversed(range(max(span, 1).bit_length()))
        ]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Indices where ``x`` would be inserted (int64 for the fallback, int32 otherwise)."""
        if self._start is None:
            return np.searchsorted(self.knots, x, side=self.side)
        x = np.asarray(x)
        if x.dtype != np.float32 or not self._float32:
            x = x.astype(np.float64, copy=False)
        cell = np.subtract(x, self._lo)
        cell *= self._scale
        # fmax/fmin drop NaN (-> cell 0; answered at the end), so the cast never sees one.
        np.fmax(cell, 0.0, out=cell)
        np.fmin(cell, self._cells - 1, out=cell)
        index = self._start[cell.astype(np.int32)]
        below = np.less if self.side == "left" else np.less_equal
        probe = np.empty(len(x), dtype=np.float64)
        moves = np.empty(len(x), dtype=bool)
        for step, shifted in self._probes:
            # Branchless search: move on ``step`` knots when the last of them is still below x.
            np.take(shifted, index, out=probe)
            below(probe, x, out=moves)
            np.add(index, step, out=index, where=moves)
        odd = ~np.isfinite(x)  # NaN (cell 0) and infinities (past the sentinels' reach)
        if odd.any():
            index[odd] = np.searchsorted(self.knots, x[odd], side=self.side)
        return index


class UniformInterp:
    """``np.interp(x, xs, ys)`` for knots ``xs`` evenly spaced (``x0 + i * dx``): the interval of
    a value is one multiply, no binary search. Values outside take the end values.

    Examples
    --------
    >>> xs = np.linspace(-8.0, 8.0, 401); ys = np.sinh(xs)
    >>> x = np.random.default_rng(0).normal(scale=4, size=1000)
    >>> bool(np.allclose(UniformInterp(xs[0], xs[1] - xs[0], ys)(x), np.interp(x, xs, ys)))
    True
    """

    def __init__(self, x0: float, dx: float, ys: np.ndarray) -> None:
        self.x0, self.dx = float(x0), float(dx)
        self.ys = np.asarray(ys, dtype=np.float64)
        # Slope of each interval, and a last flat one so that the top end needs no special case.
        self._slopes = np.append(np.diff(self.ys), 0.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = (np.asarray(x, dtype=np.float64) - self.x0) * (1.0 / self.dx)
        np.fmax(t, 0.0, out=t)  # NaN -> 0 here; restored below
        np.fmin(t, len(self.ys) - 1, out=t)
        index = t.astype(np.int32)
        t -= index
        out = self.ys[index]
        out += self._slopes[index] * t
        nan = np.isnan(x)
        if nan.any():
            out[nan] = np.nan
        return out
