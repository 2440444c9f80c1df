"""Statistics of the data computed once per fit: the one validated view's minimum, maximum
and squared norm.

A fit reads these of X in several places, each the natural owner of its check or its use:
the sign check (min), the magnitude check and the unit scale (max: the engine, the fit plan,
the error on the data's scale, the explained variance), the objective and the explained
variance (‖X‖²). Each was a pass over X: on the dense benchmark X (10000×2000 float32, 80 MB)
nine passes of 4–16 ms, about a sixth of a 12-iteration fit. Within ``remembered(X)`` the
numpy backend computes each statistic of that array once and answers the later calls from
the first, for that very object only (identity, not equality: an array derived from X — a
scaled copy, a block — is computed as before). The scope keeps nothing beyond the call: it
holds X, which the caller holds anyway, and forgets it on exit.
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["remembered", "statistic"]

_TABLE: contextvars.ContextVar = contextvars.ContextVar("nmfkit_data_statistics",
                                                        default=None)


@contextlib.contextmanager
def remembered(X):
    """Within this scope, ``statistic(X, name, compute)`` computes once per name; nested
    scopes add their array to the outer scope's."""
    table = _TABLE.get()
    if table is not None:
        table.setdefault(id(X), (X, {}))
        yield
        return
    token = _TABLE.set({id(X): (X, {})})
    try:
        yield
    finally:
        _TABLE.reset(token)


def statistic(a, name: str, compute):
    """``compute()``, remembered for ``a`` when ``a`` is an array of an enclosing
    ``remembered`` scope."""
    table = _TABLE.get()
    entry = None if table is None else table.get(id(a))
    if entry is None or entry[0] is not a:
        return compute()
    values = entry[1]
    if name not in values:
        values[name] = compute()
    return values[name]
