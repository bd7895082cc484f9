"""The span layout of an encoded table, which every network, activation and loss reads.

The encoded table arrives as spans (a scaled scalar, a one-hot group, ...). Looping over spans in
Python at every batch is where much of the time of common implementations goes, so the columns
are reordered once: scalars first, then the one-hot groups sorted by width. Every group of equal
width is then one contiguous block that reshapes to a 3-D tensor, and an activation or a loss
over all spans is a handful of tensor operations whatever the number of columns.

In the *level-major* order (what the synthesizers use) a block of ``count`` spans of ``width``
levels holds level 0 of every span, then level 1 of every span, ...: it reshapes to
``(rows, width, count)`` and the softmax runs over the middle axis, vectorized across spans.
A softmax over a short last axis (``(rows, count, width)``, the *span-major* order) is several
times slower on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

#: Logit given to padding slots of ragged gathers: exp() underflows to 0 and 0 * it stays finite.
_PAD_LOGIT = -1e4


#: Probabilities below this are set to 0 where they would otherwise reach the matrix products
#: as denormal floats (below 1.2e-38), which the CPU multiplies up to 100x slower.
_TINY = 1e-20


class SpanLayout:
    """Where each kind of span lies once the encoded columns are reordered.

    Parameters
    ----------
    spans : sequence of SpanInfo-like objects
        Each with ``dim``, ``activation`` (``tanh``, ``linear`` or ``softmax``) and ``role``.
    level_major : bool
        Order each block of equal-width one-hot spans level by level (see the module notes);
        otherwise span by span.

    Attributes
    ----------
    order : ndarray
        ``permuted = encoded[:, order]``.
    inverse : ndarray
        ``encoded = permuted[:, inverse]``.
    n_tanh, n_linear : int
        Scalar columns: ``[0, n_tanh)`` are tanh-bounded, then ``n_linear`` unbounded ones.
    groups : list of (start, count, width)
        Blocks of ``count`` one-hot spans of equal ``width``, contiguous from ``start``.

    Examples
    --------
    >>> from types import SimpleNamespace as S
    >>> spans = [S(dim=2, activation="softmax", role="category"),
    ...          S(dim=1, activation="tanh", role="value"),
    ...          S(dim=2, activation="softmax", role="null")]
    >>> layout = SpanLayout(spans, level_major=True)
    >>> layout.order.tolist(), layout.groups
    ([2, 0, 3, 1, 4], [(1, 2, 2)])
    >>> layout.span_columns(0).tolist(), layout.span_columns(2).tolist()
    ([1, 3], [2, 4])
    """

    def __init__(self, spans: Sequence[Any], *, level_major: bool = False) -> None:
        tanh: list[int] = []
        linear: list[int] = []
        by_width: dict[int, list[int]] = {}
        starts: list[int] = []
        start = 0
        for i, span in enumerate(spans):
            starts.append(start)
            if span.activation == "tanh":
                tanh.append(i)
            elif span.activation == "linear":
                linear.append(i)
            elif span.activation == "softmax":
                by_width.setdefault(span.dim, []).append(i)
            else:
                raise ValueError(
                    f"Neural synthesizers need tanh/linear/softmax spans; got a "
                    f"{span.activation!r} span. Use numerical='mode', categorical='onehot'."
                )
            start += span.dim
        self.dim = start
        self.level_major = level_major
        self.spans = list(spans)
        self.n_tanh, self.n_linear = len(tanh), len(linear)
        # Permuted position of every column of every span, in the span's own column order.
        self._columns: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(spans)
        order = [starts[i] for i in tanh + linear]
        for pos, i in enumerate(tanh + linear):
            self._columns[i] = np.array([pos], dtype=np.int64)
        self.groups: list[tuple[int, int, int]] = []
        for width in sorted(by_width):
            members = by_width[width]
            first, count = len(order), len(members)
            self.groups.append((first, count, width))
            for j, i in enumerate(members):
                levels = np.arange(width)
                self._columns[i] = (
                    (first + levels * count + j) if level_major else (first + j * width + levels)
                )
            block = np.empty(count * width, dtype=np.int64)
            for i in members:
                block[self._columns[i] - first] = starts[i] + np.arange(width)
            order.extend(block.tolist())
        self.order = np.asarray(order, dtype=np.int64)
        self.inverse = np.argsort(self.order)

    @property
    def n_scalar(self) -> int:
        return self.n_tanh + self.n_linear

    def span_columns(self, index: int) -> np.ndarray:
        """Permuted positions of the columns of span ``index`` (level 0, 1, ... of a one-hot)."""
        return self._columns[index]

    def permuted_columns(self, span_indices: Sequence[int]) -> np.ndarray:
        """Permuted positions of every column of the given spans (in span order)."""
        cols = [self._columns[i] for i in span_indices]
        return np.concatenate(cols).astype(np.int64) if cols else np.zeros(0, dtype=np.int64)

    def block_view(
        self, piece: torch.Tensor, count: int, width: int, transposed: bool = False
    ) -> tuple[torch.Tensor, int]:
        """A one-hot block (``rows x count*width``, or its transpose) as a 3-D tensor, and the
        axis of its levels."""
        if transposed:
            n = piece.shape[1]
            if self.level_major:
                return piece.view(width, count, n), 0
            return piece.view(count, width, n), 1
        n = piece.shape[0]
        if self.level_major:
            return piece.reshape(n, width, count), 1
        return piece.reshape(n, count, width), 2

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[tanh part, linear part, block 1, block 2, ...]`` of ``(rows, permuted columns)``.

        One ``torch.split``: its gradient is a single concatenation, where slicing piece by
        piece would allocate and fill a full-width gradient for every piece.
        """
        sizes = [self.n_tanh, self.n_linear, *(c * w for _, c, w in self.groups)]
        return list(torch.split(x, sizes, dim=1))

    def blocks(
        self, x: torch.Tensor, *, transposed: bool = False
    ) -> list[tuple[torch.Tensor, int]]:
        """3-D views of the one-hot blocks of ``x`` and the axis of their levels.

        ``x`` is ``(rows, permuted columns)``, or ``(permuted columns, rows)`` when
        ``transposed``; views share its memory.
        """
        out = []
        for first, count, width in self.groups:
            end = first + count * width
            piece = x[first:end] if transposed else x[:, first:end]
            out.append(self.block_view(piece, count, width, transposed))
        return out
