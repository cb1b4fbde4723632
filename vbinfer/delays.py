"""History ring buffer for delayed coupling.

The buffer holds, for the last ``num_slots`` steps, only what the coupling sends: ``pre(x)``
of the coupled state variables (see :mod:`vbinfer.coupling`). Layout, chosen for speed:

- rows are ``slot * n_nodes + node``, so one lag of one edge is one row;
- columns are ``(n_pre, *batch)`` flattened, batch innermost, so that a batched simulation
  gathers one contiguous vector per edge instead of one scalar per edge and batch member;
- the ring is stored twice (``2 * num_slots`` slots, every write goes to slot ``s`` and
  ``s + num_slots``), so that a read at step ``n`` is a gather at fixed per-edge offsets plus
  one scalar shift, with no modulo per edge.

Lags are ordinary arrays (traced values are fine), so delays and conduction speed can be
vmapped, swept and differentiated. With ``mode="linear"`` a fractional lag ``d`` reads
``(1 - a) h(n - floor(d)) + a h(n - floor(d) - 1)`` with ``a = d - floor(d)``: linear
interpolation between neighbouring slots, differentiable in ``d``.

A lag larger than the buffer supports cannot be read: lags are clipped to ``[0, max_lag]``.
Simulators check concrete lags before tracing and raise; for traced lags they clip and can
warn at run time (``warn_on_clip``).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vbinfer import _ffi
from vbinfer._precision import HIGHEST
from vbinfer._typing import Array

__all__ = [
    "ReadPlan",
    "init_buffer",
    "make_read_plan",
    "num_slots",
    "push",
    "push_and_read",
    "read",
]


def num_slots(max_lag: int, mode: str) -> int:
    """Slots needed for lags up to ``max_lag`` steps (one more for linear interpolation)."""
    return max_lag + (2 if mode == "linear" else 1)


def to_rows(h: Array) -> Array:
    """``(n_pre, n_nodes, *batch) -> (n_nodes, n_pre * prod(batch))``."""
    h = jnp.moveaxis(h, 1, 0)
    return h.reshape(h.shape[0], -1)


def from_rows(rows: Array, n_pre: int, batch: tuple[int, ...]) -> Array:
    """``(n_nodes, n_pre * prod(batch)) -> (n_pre, n_nodes, *batch)``."""
    return jnp.moveaxis(rows.reshape(rows.shape[0], n_pre, *batch), 1, 0)


def init_buffer(h0: Array, slots: int, past: Array | None = None) -> Array:
    """A buffer whose every slot holds ``h0`` (constant history), or the given past.

    Parameters
    ----------
    h0:
        ``(n_pre, n_nodes, *batch)``: ``pre(x)`` at step 0.
    slots:
        Number of ring slots (:func:`num_slots`).
    past:
        Optional ``(slots - 1, n_pre, n_nodes, *batch)``: ``pre(x)`` at steps
        ``-(slots - 1), ..., -1`` (oldest first).

    Returns
    -------
    ``(2 * slots * n_nodes, n_pre * prod(batch))`` buffer with step 0 in slot 0.
    """
    rows0 = to_rows(h0)
    n_nodes = rows0.shape[0]
    if past is None:
        ring = jnp.broadcast_to(rows0[None], (slots, *rows0.shape))
    else:
        past_rows = jax.vmap(to_rows)(past)  # (slots - 1, n_nodes, cols); step -k in slot slots-k
        ring = jnp.concatenate([rows0[None], past_rows], axis=0)
    ring = ring.reshape(slots * n_nodes, -1)
    return jnp.concatenate([ring, ring], axis=0)


def push(buffer: Array, h: Array, step: Array, slots: int) -> Array:
    """Write ``h`` (``(n_pre, n_nodes, *batch)``), the value at ``step``, into the ring."""
    rows = to_rows(h).astype(buffer.dtype)
    n_nodes = rows.shape[0]
    slot = jnp.mod(step, slots)
    buffer = jax.lax.dynamic_update_slice_in_dim(buffer, rows, slot * n_nodes, axis=0)
    return jax.lax.dynamic_update_slice_in_dim(buffer, rows, (slot + slots) * n_nodes, axis=0)


class ReadPlan(NamedTuple):
    """Precomputed gather offsets for one run (built once, outside the step loop).

    Attributes
    ----------
    offsets: ``(n_reads, n_edges)`` int32 row offsets relative to ``slot(n) * n_nodes``
        (one read for integer lags, two for linear interpolation).
    weights: ``(n_reads, n_edges)`` edge weights times interpolation weights.
    """

    offsets: Array
    weights: Array


def clip_lags(lags: Array, max_lag: int, warn: bool = False) -> Array:
    """Clip lags to ``[0, max_lag]``; with ``warn`` report clipping at run time."""
    if warn:

        def _warn(m):
            if float(m) > max_lag:
                warnings.warn(
                    f"a lag of {float(m):.3f} steps exceeds max_lag={max_lag}; it was clipped",
                    RuntimeWarning,
                    stacklevel=2,
                )

        jax.debug.callback(_warn, jnp.max(lags))
    return jnp.clip(lags, 0, max_lag)


def make_read_plan(
    lags: Array, cols: Array, edge_weights: Array, n_nodes: int, slots: int, mode: str
) -> ReadPlan:
    """Gather offsets and weights for every edge.

    Parameters
    ----------
    lags:
        ``(n_edges,)`` lags in steps, already clipped to the buffer (int, or float for linear).
    cols:
        ``(n_edges,)`` sending node of every edge.
    edge_weights:
        ``(n_edges,)`` weights ``W[i, j]``.
    n_nodes, slots, mode:
        Buffer geometry and lag mode.
    """
    if mode == "linear":
        lag0 = jnp.floor(lags)
        frac = (lags - lag0).astype(edge_weights.dtype)
        lag0 = lag0.astype(jnp.int32)
        offsets = jnp.stack([(slots - lag0) * n_nodes + cols, (slots - lag0 - 1) * n_nodes + cols])
        weights = jnp.stack([edge_weights * (1 - frac), edge_weights * frac])
    else:
        offsets = ((slots - lags.astype(jnp.int32)) * n_nodes + cols)[None]
        weights = edge_weights[None]
    return ReadPlan(offsets.astype(jnp.int32), weights)


def gather_rows(buffer: Array, offsets: Array, step: Array, slots: int, n_nodes: int) -> Array:
    """Rows ``buffer[offsets + slot(step) * n_nodes]`` -> ``(len(offsets), cols)``.

    The read goes through a window of the doubled ring that starts at the current slot, so the
    gather indices are the same at every step: reverse mode then keeps no per-step index array.
    """
    start = jnp.mod(step, slots) * n_nodes
    window = jax.lax.dynamic_slice_in_dim(buffer, start, (slots + 1) * n_nodes, axis=0)
    return window.at[offsets].get(mode="promise_in_bounds")


def gather_weighted(buffer: Array, plan: ReadPlan, step: Array, slots: int, n_nodes: int) -> Array:
    """Weighted rows ``sum_r weights[r, e] * buffer[offsets[r, e] + shift]``: ``(n_edges, cols)``."""
    total = None
    for r in range(plan.offsets.shape[0]):
        term = plan.weights[r][:, None] * gather_rows(buffer, plan.offsets[r], step, slots, n_nodes)
        total = term if total is None else total + term
    return total


def _dense_sum_xla(
    buffer: Array, offsets: Array, weights: Array, step: Array, slots: int, n_nodes: int, width: int
) -> Array:
    """``(n_nodes, width)`` delayed sums of a dense plan through XLA's gather."""
    total = None
    for r in range(offsets.shape[0]):
        g = gather_rows(buffer, offsets[r], step, slots, n_nodes)
        w = weights[r].reshape(n_nodes, n_nodes)
        # einsum, not multiply-and-sum: XLA turns it into a batched dot that reads the gathered
        # rows once (the multiply-and-sum form was up to 15x slower with traced weights).
        g = g.reshape(n_nodes, n_nodes, width)
        term = jnp.einsum("ij,ijk->ik", w, g, precision=HIGHEST)
        total = term if total is None else total + term
    return total


@functools.partial(jax.custom_jvp, nondiff_argnums=(4, 5, 6))
def _dense_sum_ffi(
    buffer: Array, offsets: Array, weights: Array, step: Array, slots: int, n_nodes: int, width: int
) -> Array:
    """As :func:`_dense_sum_xla`, through the compiled kernel of :mod:`vbinfer._ffi`.

    Derivatives: the kernel is bilinear in (buffer, weights). Under any differentiation the
    value and its tangent are computed with the XLA path, so forward, reverse and nested modes
    (Hessians) all work; the compiled kernel serves runs that are not differentiated.
    """
    if not _ffi.available():
        raise RuntimeError(f"vbinfer's compiled delay kernel is unavailable: {_ffi.build_error()}")
    n_reads = offsets.shape[0]
    start = (jnp.mod(step, slots) * n_nodes).astype(jnp.int32)
    call = jax.ffi.ffi_call(
        _ffi.target_name(buffer.dtype),
        jax.ShapeDtypeStruct((n_nodes, width), buffer.dtype),
        vmap_method="broadcast_all",
    )
    return call(
        buffer,
        offsets.reshape(n_reads, n_nodes, n_nodes).astype(jnp.int32),
        weights.reshape(n_reads, n_nodes, n_nodes).astype(buffer.dtype),
        start,
    )


@functools.partial(_dense_sum_ffi.defjvp, symbolic_zeros=True)
def _dense_sum_ffi_jvp(slots, n_nodes, width, primals, tangents):
    buffer, offsets, weights, step = primals
    d_buffer, _, d_weights, _ = tangents
    # The primal under differentiation goes through XLA too: a compiled call inside a JVP rule
    # does not survive nested differentiation (jax.hessian over a scan), XLA's gather does.
    out = _dense_sum_xla(buffer, offsets, weights, step, slots, n_nodes, width)
    zero = jax.custom_derivatives.SymbolicZero
    tangent = jnp.zeros_like(out)
    if not isinstance(d_buffer, zero):
        tangent = tangent + _dense_sum_xla(d_buffer, offsets, weights, step, slots, n_nodes, width)
    if not isinstance(d_weights, zero):
        tangent = tangent + _dense_sum_xla(buffer, offsets, d_weights, step, slots, n_nodes, width)
    return out, tangent


def read(
    buffer: Array,
    plan: ReadPlan,
    step: Array,
    slots: int,
    n_nodes: int,
    n_pre: int,
    batch: tuple[int, ...],
    rows: Array | None = None,
    kernel: str = "xla",
) -> Array:
    """Delayed, weighted input summed per receiving node.

    Parameters
    ----------
    buffer, plan, step, slots, n_nodes:
        The ring buffer, the read plan, the current step and the buffer geometry.
    n_pre, batch:
        Shape of the stored values, ``(n_pre, n_nodes, *batch)``.
    rows:
        ``None`` for a dense plan (edges ordered ``i * n_nodes + j``), or ``(n_edges,)``
        receiving nodes of a sparse plan (sorted).
    kernel:
        ``"xla"`` (gather then weighted sum) or ``"ffi"`` (the compiled fused kernel of
        :mod:`vbinfer._ffi`, dense plans on CPU; elsewhere the XLA path). Same results up to
        the order of the floating-point sum.

    Returns
    -------
    ``(n_pre, n_nodes, *batch)``: ``sum_j W[i, j] h_j(step - d_ij)``.
    """
    width = n_pre * math.prod(batch)
    if rows is None:
        args = (buffer, plan.offsets, plan.weights, step, slots, n_nodes, width)
        if kernel == "ffi":
            total = jax.lax.platform_dependent(
                *args[:4],
                cpu=lambda *a: _dense_sum_ffi(*a, slots, n_nodes, width),
                default=lambda *a: _dense_sum_xla(*a, slots, n_nodes, width),
            )
        else:
            total = _dense_sum_xla(*args)
    else:
        g = gather_weighted(buffer, plan, step, slots, n_nodes)
        total = jax.ops.segment_sum(g, rows, num_segments=n_nodes, indices_are_sorted=True)
    return from_rows(total, n_pre, batch)


# ------------------------------------------------------------------ push and read, in-place adjoint
def push_and_read(
    buffer: Array,
    h: Array,
    step: Array,
    plan: ReadPlan,
    slots: int,
    n_nodes: int,
    n_pre: int,
    batch: tuple[int, ...],
    rows: Array | None = None,
    kernel: str = "xla",
) -> tuple[Array, Array]:
    """Write ``h``, the value at ``step``, into the ring, then read the delayed sums at ``step``.

    ``push`` followed by ``read``, with a hand-written reverse-mode derivative. Differentiated
    by JAX, every read creates a cotangent the size of the whole buffer (zeros, a scatter into
    a window, a pad and an add at every step), so a gradient costs time in proportion to
    ``max_lag * n_nodes`` per step. The adjoint here adds the read's cotangent into the
    incoming buffer cotangent with one scatter-add over the edges and takes the pushed rows
    out of it, work in proportion to the number of edges, in place.

    Reverse mode only: ``jax.jvp``, ``jax.jacfwd`` and ``jax.hessian`` (forward over
    reverse) raise ``TypeError``; higher-order reverse mode works. Derivatives flow to
    ``buffer``, ``h`` and ``plan.weights`` (hence to connection weights and, with linear lags,
    to conduction speed and tract lengths).

    Parameters
    ----------
    buffer, h, step:
        The ring buffer, ``(n_pre, n_nodes, *batch)`` values at ``step``, the step.
    plan, slots, n_nodes, n_pre, batch, rows, kernel:
        As :func:`read`.

    Returns
    -------
    buffer, sums:
        The updated buffer and ``(n_pre, n_nodes, *batch)`` delayed sums at ``step``.
    """
    receivers = _receivers(plan, n_nodes) if rows is None else rows
    new, total = _push_read(
        buffer,
        h,
        step,
        plan.offsets,
        plan.weights,
        receivers,
        (slots, n_nodes, n_pre, tuple(batch), rows is None, kernel),
    )
    return new, from_rows(total, n_pre, batch)


def _receivers(plan: ReadPlan, n_nodes: int) -> Array:
    """Receiving node of every edge of a dense plan (edges ordered ``i * n_nodes + j``)."""
    return jnp.repeat(jnp.arange(n_nodes, dtype=jnp.int32), n_nodes)


def _push_read_impl(buffer, h, step, offsets, weights, receivers, static):
    slots, n_nodes, n_pre, batch, dense, kernel = static
    new = push(buffer, h, step, slots)
    plan = ReadPlan(offsets, weights)
    total = read(
        new, plan, step, slots, n_nodes, n_pre, batch, None if dense else receivers, kernel
    )
    return new, to_rows(total)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _push_read(buffer, h, step, offsets, weights, receivers, static):
    return _push_read_impl(buffer, h, step, offsets, weights, receivers, static)


def _push_read_fwd(buffer, h, step, offsets, weights, receivers, static):
    slots, n_nodes = static[0], static[1]
    out = _push_read_impl(
        buffer.value, h.value, step.value, offsets.value, weights.value, receivers.value, static
    )
    gathered = None
    if weights.perturbed:  # the weights' cotangent needs the rows read, one per edge and read
        gathered = jnp.stack(
            [
                gather_rows(out[0], offsets.value[r], step.value, slots, n_nodes)
                for r in range(offsets.value.shape[0])
            ]
        )
    return out, (step.value, offsets.value, weights.value, receivers.value, gathered)


def _push_read_bwd(static, res, cts):
    slots, n_nodes = static[0], static[1]
    step, offsets, weights, receivers, gathered = res
    ct_buffer, ct_total = cts
    zero = jax.custom_derivatives.SymbolicZero
    if isinstance(ct_buffer, zero):
        ct_buffer = jnp.zeros(ct_buffer.shape, ct_buffer.dtype)
    dense, kernel = static[4], static[5]
    if isinstance(ct_total, zero):
        ct_total = jnp.zeros(ct_total.shape, ct_total.dtype)
    start = jnp.mod(step, slots) * n_nodes
    args = (ct_buffer, offsets, weights, start, ct_total)
    if dense and kernel == "ffi":
        ct_buffer, ct_rows = jax.lax.platform_dependent(
            *args,
            cpu=lambda *a: _dense_adjoint_ffi(*a, n_nodes),
            default=lambda *a: _adjoint_xla(*a, receivers, slots, n_nodes),
        )
    else:
        ct_buffer, ct_rows = _adjoint_xla(*args, receivers, slots, n_nodes)
    if gathered is not None:
        ct_edges = ct_total[receivers]
        ct_weights = jnp.sum(gathered * ct_edges[None], axis=-1).astype(weights.dtype)
    else:
        ct_weights = jnp.zeros_like(weights)
    n_pre, batch = static[2], static[3]
    ct_h = from_rows(ct_rows, n_pre, batch)
    return ct_buffer, ct_h, None, None, ct_weights, None


_push_read.defvjp(_push_read_fwd, _push_read_bwd, symbolic_zeros=True)


def _adjoint_xla(ct_buffer, offsets, weights, start, ct_total, receivers, slots, n_nodes):
    """The adjoint of push then read, with XLA's scatter: ``(ct_buffer, ct_rows)``."""
    ct_edges = ct_total[receivers]  # (n_edges, width): the cotangent each edge receives
    for r in range(offsets.shape[0]):
        ct_buffer = ct_buffer.at[offsets[r] + start].add(weights[r][:, None] * ct_edges)
    # push: the two copies of the pushed rows pass their cotangent on, and were overwritten
    second = start + slots * n_nodes
    ct_rows = jax.lax.dynamic_slice_in_dim(ct_buffer, start, n_nodes, axis=0)
    ct_rows = ct_rows + jax.lax.dynamic_slice_in_dim(ct_buffer, second, n_nodes, axis=0)
    blank = jnp.zeros_like(ct_rows)
    ct_buffer = jax.lax.dynamic_update_slice_in_dim(ct_buffer, blank, start, axis=0)
    ct_buffer = jax.lax.dynamic_update_slice_in_dim(ct_buffer, blank, second, axis=0)
    return ct_buffer, ct_rows


def _dense_adjoint_ffi(
    ct_buffer: Array, offsets: Array, weights: Array, start: Array, ct_total: Array, n_nodes: int
) -> tuple[Array, Array]:
    """:func:`_adjoint_xla` for dense plans through the compiled kernel of :mod:`vbinfer._ffi`
    (CPU), in place on ``ct_buffer``."""
    n_reads = offsets.shape[0]
    call = jax.ffi.ffi_call(
        _ffi.target_name(ct_buffer.dtype, transpose=True),
        (
            jax.ShapeDtypeStruct(ct_buffer.shape, ct_buffer.dtype),
            jax.ShapeDtypeStruct(ct_total.shape, ct_buffer.dtype),
        ),
        vmap_method="broadcast_all",
        input_output_aliases={0: 0},
    )
    return call(
        ct_buffer,
        offsets.reshape(n_reads, n_nodes, n_nodes).astype(jnp.int32),
        weights.reshape(n_reads, n_nodes, n_nodes).astype(ct_buffer.dtype),
        jnp.asarray(start, jnp.int32),
        ct_total.astype(ct_buffer.dtype),
    )
