"""Capping a long series for evidence: a fixed number of points, evenly spaced, the ends kept
(a log's epoch-0 curve, a record's curve in a note)."""
from __future__ import annotations


def even_sample(points: list, cap: int) -> list:
    """At most ``cap`` of ``points``, evenly spaced, the first and the last kept."""
    if len(points) <= cap:
        return list(points)
    step = (len(points) - 1) / (cap - 1)
    return [points[round(i * step)] for i in range(cap)]
