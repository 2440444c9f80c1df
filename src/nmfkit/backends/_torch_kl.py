"""KL coordinate descent on torch tensors: ``solver="cd", beta_loss=1`` on the torch backend.

The same Newton coordinate descent as :mod:`nmfkit.solvers._kl_kernels` (Hsieh & Dhillon
2011): components in the same order, one-dimensional Newton steps on exact derivatives, the
same safeguard, the same multiplicative-update warm-up. Given the fixed factor, the rows of the
updated factor F (k, N) do not interact, so for component t every row's Newton step is
independent: the first and second derivatives of all N rows come at once from X's non-zeros
(one ``index_add_`` each over the row index of every stored value), and F[t] and the
maintained (FᵀB) at the non-zeros are updated in O(nnz). That is the schedule of the numpy
kernel (component-outer, all rows at once) and gives the numba kernel's result as well
(row-outer: the same updates, since rows are independent) up to summation order.

Safeguard without host synchronisation. A Newton step s₀ < 0 is accepted after j halvings,
j the first in 0..29 with d(s₀·2⁻ʲ) ≤ 0 (d the exact change of the row's objective), and
dropped (s = 0) when there is none. The row's objective along the line is convex and d(0) = 0,
so {s : d(s) ≤ 0} is an interval containing 0 and "d(s₀·2⁻ʲ) ≤ 0" is monotone in j: every row
finds its j by bisection in 5 passes over the non-zeros (31 outcomes), always run, instead of
the numpy kernel's loop that stops once no row is pending (a Python ``if`` on device values).
Nothing in the per-component loop reads a device value on the host. On the CPU, where such a
read costs nothing, the bisection runs only over the non-zeros of the rows whose step is a
decrease (18–67 %, mean 32 %, of the rows per component in a 5000×2000 sparse KL fit), and
not at all when there is none.

Precision: F and B stay in their dtype (float32 stays float32), but the sweep accumulates in
float64 by default, as the numpy/numba kernel does: (FᵀB) at the non-zeros, the derivatives
and the safeguard's objective change. In float32 the first derivative (a difference of two
nearly equal sums near the optimum) and the safeguard's Σ X log(1 + s·b/wh) lose most of their
digits; measured on a 40×25 test matrix after 30 iterations, float32 accumulation ended
4e-4 relative above the float64 objective, float64 accumulation 2e-7 (as numpy's float32
fit). ``solver_options={"kl_float64": False}`` accumulates in F's dtype instead (for GPUs
with slow float64; the warm-up's multiplicative updates always run in F's dtype).
"""

from __future__ import annotations

import torch

from ._torch_csr import csr as _csr
from ._torch_csr import quiet_sparse as _quiet_sparse

__all__ = ["TorchKL"]

_MAX_HALVINGS = 30  # as _kl_kernels: accept after at most 29 halvings, else no step
_BISECT_PASSES = 5  # 2**5 >= _MAX_HALVINGS + 1 outcomes
_BLOCK_ELEMENTS = 1 << 22  # temporary (block, k) gathers in the sampled product


class _Side:
    """X (or Xᵀ) as the KL kernels read it: row, column and value of each positive stored
    entry, row-major, and the CSR row pointers (for the warm-up's sparse products)."""

    def __init__(self, rows, cols, data, shape, acc=None):
        self.rows, self.cols, self.data, self.shape = rows, cols, data, shape
        self.data_acc = data if acc in (None, data.dtype) else data.to(acc)
        counts = torch.bincount(rows, minlength=shape[0])
        self.crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
        torch.cumsum(counts, 0, out=self.crow[1:])

    def csr(self, values):
        return _csr(self.crow, self.cols, values, self.shape)


def _sides(nx, X, dtype, acc=None):
    """(_Side of X, _Side of Xᵀ) from a dense or sparse CSR torch X (positive entries only);
    values in ``dtype``, and in ``acc`` for the Newton sweeps."""
    if nx.issparse(X):
        rows, cols = nx.sparse_coords(X)
        data = nx.sparse_data(X)
    else:
        rows, cols = torch.nonzero(X > 0, as_tuple=True)  # row-major, as CSR
        data = X[rows, cols]
    keep = data > 0  # stored zeros carry no KL term (setup: one synchronisation is fine)
    if not bool(keep.all()):
        rows, cols, data = rows[keep], cols[keep], data[keep]
    rows, cols, data = rows.to(torch.int64), cols.to(torch.int64), data.to(dtype)
    n, m = X.shape
    perm = torch.argsort(cols * n + rows)  # column-major order: Xᵀ row by row
    return (_Side(rows, cols, data, (n, m), acc),
            _Side(cols[perm], rows[perm], data[perm], (m, n), acc))


def _sampled(F, B, side):
    """(FᵀB) at the side's non-zeros, in their order: O(nnz·k), by SDDMM
    (``torch.sparse.sampled_addmm``), else gathers in blocks."""
    try:
        with _quiet_sparse():
            S = side.csr(torch.zeros(side.data.shape[0], dtype=F.dtype, device=F.device))
            return torch.sparse.sampled_addmm(S, F.T, B, beta=0.0).values()
    except (RuntimeError, NotImplementedError):
        pass
    nnz = side.data.shape[0]
    k = F.shape[0]
    out = torch.empty(nnz, dtype=F.dtype, device=F.device)
    Ft, Bt = F.T, B.T
    block = max(1, _BLOCK_ELEMENTS // max(k, 1))
    for s in range(0, nnz, block):
        r, c = side.rows[s:s + block], side.cols[s:s + block]
        torch.sum(Ft[r] * Bt[c], dim=1, out=out[s:s + block])
    return out


def _rowsum(rows, values, N):
    """Σ of ``values`` (one per non-zero, in row ``rows``) per row: a length-N vector."""
    out = torch.zeros(N, dtype=values.dtype, device=values.device)
    return out.index_add_(0, rows, values)


def _may_sync(device) -> bool:
    """Whether reading a device value on the host is free (the CPU: no queue to drain)."""
    return device.type == "cpu"


def _safeguard(s, pending, w, c, l2, rows, bt, wh, data, neg_inf):
    """The step of each row after the safeguard's halvings, by bisection (module docstring).

    ``rows, bt, wh, data`` may cover only the non-zeros of the pending rows (the CPU path
    compacts them); rows that are not pending keep ``s``.
    """
    N = s.shape[0]
    acc = s.dtype
    # the answer lies in [lo, hi]; hi = _MAX_HALVINGS means "no step"
    lo = torch.zeros(N, dtype=torch.int64, device=s.device)
    hi = torch.where(pending, _MAX_HALVINGS, 0)
    for _b in range(_BISECT_PASSES):
        mid = torch.div(lo + hi, 2, rounding_mode="floor")
        trial = s * torch.exp2(-mid.to(acc))
        arg = 1.0 + trial[rows] * bt / wh
        ok = arg > 0
        lg = torch.where(ok, torch.log(torch.where(ok, arg, torch.ones_like(arg))), neg_inf)
        d = trial * c + l2 * (trial * w + 0.5 * trial * trial) - _rowsum(rows, data * lg, N)
        accept = d <= 0
        active = lo < hi
        hi = torch.where(active & accept, mid, hi)
        lo = torch.where(active & ~accept, mid + 1, lo)
    return torch.where(lo >= _MAX_HALVINGS, torch.zeros_like(s), s * torch.exp2(-lo.to(acc)))


def kl_cd_update_torch(F, B, side: _Side, hsum, l1: float, l2: float, order,
                       newton_steps: int, floor: float) -> None:
    """One KL coordinate-descent sweep over the components of F (k, N), in place.

    Parameters
    ----------
    F : tensor (k, N), the factor being updated (Wᵀ or H).
    B : tensor (k, M), the fixed factor (H or Wᵀ).
    side : the non-zeros of X (N × M) or Xᵀ, from :func:`_sides`.
    hsum : tensor (k,), the row sums of B.
    l1, l2 : L1 and L2 penalty weights on F.
    order : sequence of int, the components in the order they are updated.
    newton_steps : Newton steps per variable.
    floor : the smallest value (FᵀB) may take at a non-zero.
    """
    N = F.shape[1]
    rows, data = side.rows, side.data_acc
    acc = data.dtype  # the accumulation dtype (see TorchKL)
    wh = _sampled(F.to(acc), B.to(acc), side).clamp_(min=floor)
    neg_inf = torch.tensor(-float("inf"), dtype=acc, device=F.device)
    compact = _may_sync(F.device)
    for t in order:
        t = int(t)
        w = F[t].to(acc)
        bt = B[t][side.cols].to(acc)
        c = hsum[t].to(acc) + l1
        for _ in range(newton_steps):
            q = data / wh
            g = c + l2 * w - _rowsum(rows, bt * q, N)
            h = l2 + _rowsum(rows, bt * bt * q / wh, N)
            pos = h > 0
            s = torch.where(pos, -g / torch.where(pos, h, torch.ones_like(h)),
                            torch.where(g > 0, -w, torch.zeros_like(w)))
            s = torch.maximum(s, -w)
            pending = s < 0
            if not compact:  # every non-zero, every pass: no host synchronisation
                s = _safeguard(s, pending, w, c, l2, rows, bt, wh, data, neg_inf)
            elif bool(pending.any()):  # CPU: only the non-zeros of the pending rows
                sel = pending[rows].nonzero().squeeze(1)
                s = _safeguard(s, pending, w, c, l2, rows[sel], bt[sel], wh[sel], data[sel],
                               neg_inf)
            w += s
            wh.add_(s[rows] * bt).clamp_(min=floor)
        F[t] = w


class TorchKL:
    """The KL state of ``solver="cd"`` on torch: X's non-zeros both ways and the floor.

    Built by :class:`nmfkit.solvers.cd.CoordinateDescent` when the data are on a device;
    :meth:`half_step` is its KL half-step there (same warm-up, same component order).
    """

    def __init__(self, nx, X, dtype, options=None):
        acc = torch.float64 if (options or {}).get("kl_float64", True) else dtype
        self.X, self.Xt = _sides(nx, X, dtype, acc)
        data = self.X.data
        scale = float(data.double().mean()) if data.numel() else 1.0
        fi = torch.finfo(dtype)
        self.floor = fi.eps * max(scale, fi.tiny)

    def mu(self, F, B, side, l1, l2, frozen) -> None:
        """One multiplicative update of F (k, N) for KL, O(nnz·k):
        F ⊙ (Q Bᵀ)ᵀ / (B1 + l1 + l2 F), Q = X / (FᵀB) at X's non-zeros."""
        wh = _sampled(F, B, side).clamp_(min=self.floor)
        with _quiet_sparse():
            num = (side.csr(side.data / wh) @ B.T).T
        den = B.sum(dim=1)[:, None] + l1
        if l2:
            den = den + l2 * F
        num = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)),
                          torch.ones_like(num))
        for t in frozen:  # frozen components keep their values exactly
            num[t] = 1.0
        F *= num

    def half_step(self, which: str, F, B, l1, l2, frozen, order, warm: bool,
                  newton_steps: int) -> None:
        """Update F (k, N) in place for fixed B: Wᵀ (``which="W"``, X row by row) or H (Xᵀ).
        ``warm``: one multiplicative update (the warm-up); else one Newton CD sweep over the
        components in ``order`` (None: all, in order; frozen ones are left out by the caller)."""
        side = self.X if which == "W" else self.Xt
        if warm:
            self.mu(F, B, side, l1, l2, frozen)
            return
        order = range(F.shape[0]) if order is None else [int(t) for t in order]
        kl_cd_update_torch(F, B, side, B.sum(dim=1, dtype=self.X.data_acc.dtype), l1, l2,
                           order, newton_steps, self.floor)
