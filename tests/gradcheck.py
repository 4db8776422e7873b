"""Finite-difference checks of analytic gradients (test helper).

:func:`check_gradient` compares central differences of ``fn(*inputs)`` (a scalar or a
vector of outputs; e.g. ``fn(positions, cell)``) with the analytic derivatives the caller
gives: partial derivatives of chosen entries of each input, and derivatives along given
directions (e.g. a uniform scaling of atoms and box, for the virial).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

Entry = tuple[int, ...]


def central_difference(
    fn: Callable[..., ArrayLike], inputs: Sequence[np.ndarray], direction: Sequence[np.ndarray], eps: float
) -> np.ndarray:
    """``(fn(x + eps d) - fn(x - eps d)) / (2 eps)`` for inputs x and a direction d (one array per input)."""
    plus = [x + eps * d for x, d in zip(inputs, direction)]
    minus = [x - eps * d for x, d in zip(inputs, direction)]
    return (np.asarray(fn(*plus), dtype=np.float64) - np.asarray(fn(*minus), dtype=np.float64)) / (2 * eps)


def _cases(
    x: list[np.ndarray],
    grads: Optional[Sequence[Optional[np.ndarray]]],
    entries: Optional[Sequence[Optional[Sequence[Entry]]]],
    directions: Sequence[tuple[Sequence[np.ndarray], ArrayLike]],
) -> list[tuple[str, list[np.ndarray], np.ndarray]]:
    """(name, direction, analytic derivative) of every derivative :func:`check_gradient` checks."""
    grads = list(grads) if grads is not None else [None] * len(x)
    cases: list[tuple[str, list[np.ndarray], np.ndarray]] = []
    for a, g in enumerate(grads):
        if g is None:
            continue
        g = np.asarray(g, dtype=np.float64)
        chosen = None if entries is None else entries[a]
        if chosen is None:
            chosen = list(np.ndindex(x[a].shape))
        for entry in chosen:
            direction = [np.zeros_like(v) for v in x]
            direction[a][tuple(entry)] = 1.0
            cases.append((f"input {a} entry {tuple(entry)}", direction, g[(Ellipsis,) + tuple(entry)]))
    for k, (direction, analytic) in enumerate(directions):
        cases.append(
            (
                f"direction {k}",
                [np.asarray(d, dtype=np.float64) for d in direction],
                np.asarray(analytic, dtype=np.float64),
            )
        )
    return cases


def check_gradient(
    fn: Callable[..., ArrayLike],
    inputs: Sequence[ArrayLike],
    grads: Optional[Sequence[Optional[np.ndarray]]] = None,
    *,
    eps: float,
    entries: Optional[Sequence[Optional[Sequence[Entry]]]] = None,
    directions: Sequence[tuple[Sequence[np.ndarray], ArrayLike]] = (),
    rtol: float = 0.0,
    atol: ArrayLike = 0.0,
    floor: float = 0.0,
    relative_to: str = "analytic",
) -> float:
    """Assert that central differences of ``fn`` match analytic derivatives.

    Args:
        fn: ``fn(*inputs)`` -> a scalar or an array of outputs [K].
        inputs: the point (float64 arrays, not modified).
        grads: analytic gradient of each input (``grads[a][..., *entry]`` is the derivative
            of every output w.r.t. ``inputs[a][entry]``; a leading output axis [K] is
            allowed); None for an input that is not differentiated.
        eps: the step.
        entries: per input, the entries to differentiate (None: all of its entries when
            its gradient is given).
        directions: ``(direction, analytic)`` pairs: one array per input and the analytic
            derivative of ``fn`` along it.
        rtol, atol, floor, relative_to: each difference must satisfy
            ``|numerical - analytic| <= atol + rtol * max(|reference|, floor)``, the
            reference being the ``"analytic"`` or the ``"numerical"`` derivative; ``atol``
            may be an array over the outputs.

    Returns:
        The largest ``|numerical - analytic| / bound`` (<= 1 when the check passes).
    """
    x = [np.array(v, dtype=np.float64) for v in inputs]
    cases = _cases(x, grads, entries, directions)
    assert cases, "nothing to check"
    if relative_to not in ("analytic", "numerical"):
        raise ValueError(f"relative_to must be 'analytic' or 'numerical', not {relative_to!r}")
    worst, failures = 0.0, []
    for name, direction, analytic in cases:
        numerical = central_difference(fn, x, direction, eps)
        reference = analytic if relative_to == "analytic" else numerical
        bound = atol + rtol * np.maximum(np.abs(reference), floor)
        err = np.abs(numerical - analytic)
        ratio = float(np.max(err / np.maximum(bound, np.finfo(np.float64).tiny)))
        worst = max(worst, ratio)
        if not np.all(err <= bound):
            failures.append(f"{name}: numerical {numerical}, analytic {analytic}, bound {bound}")
    assert not failures, f"{len(failures)} of {len(cases)} derivatives off (step {eps}):\n" + "\n".join(failures[:10])
    return worst
