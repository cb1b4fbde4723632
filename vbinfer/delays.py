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
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

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
    return _push_rows(buffer, rows, step, slots, rows.shape[0])


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

    ``push`` followed by ``read`` as one JAX primitive that is linear in ``(buffer, h)``, with
    its own transpose. Differentiated by JAX op by op, every read creates a cotangent the size
    of the whole buffer (zeros, a scatter into a window, a pad and an add at every step), so a
    gradient costs time in proportion to ``max_lag * n_nodes`` per step. The transpose here adds
    the read's cotangent into the incoming buffer cotangent with one scatter-add over the edges
    and takes the pushed rows out of it, work in proportion to the number of edges, in place
    (the compiled kernel of :mod:`vbinfer._ffi` for dense plans on CPU).

    Every transformation works: forward mode (``jax.jvp``, ``jax.jacfwd``), reverse mode,
    forward over reverse (``jax.hessian``), reverse over reverse, ``jax.vmap`` and
    ``jax.checkpoint``. Derivatives flow to ``buffer``, ``h`` and ``plan.weights`` (hence to
    connection weights and, with linear lags, to conduction speed and tract lengths); the
    weights' terms go through XLA's gather.

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
    new, total = _push_read_p.bind(
        buffer,
        to_rows(h).astype(buffer.dtype),
        jnp.asarray(step, jnp.int32),
        jnp.asarray(plan.offsets, jnp.int32),
        jnp.asarray(plan.weights, buffer.dtype),
        jnp.asarray(receivers, jnp.int32),
        geom=(slots, n_nodes, rows is None, kernel),
        levels=(),
    )
    return new, from_rows(total, n_pre, batch)


def _receivers(plan: ReadPlan, n_nodes: int) -> Array:
    """Receiving node of every edge of a dense plan (edges ordered ``i * n_nodes + j``)."""
    return jnp.repeat(jnp.arange(n_nodes, dtype=jnp.int32), n_nodes)


# Two primitives, each the other's transpose:
#   push_read(buffer, h_rows; step, offsets, weights, receivers) -> (new_buffer, sums)
#   push_read_transpose(ct_new, ct_sums; step, offsets, weights, receivers) -> (ct_buffer, ct_h)
# Both are linear in their first two operands for fixed weights. Their derivatives in the
# weights (bilinear terms) are written with jnp, which JAX differentiates and transposes itself.
#
# vmap: every batching adds a "level" (outermost first); ``levels[k][i]`` says whether operand i
# has an axis for level k (its leading axes are those of its levels, in order). Operands that a
# vmap does not batch stay unbatched, so the step index stays a scalar and the push stays a
# dynamic-update-slice (a batched index would turn it into a scatter). Outputs carry every level.
_push_read_p = Primitive("vbinfer_push_read")
_push_read_p.multiple_results = True
_push_read_t_p = Primitive("vbinfer_push_read_transpose")
_push_read_t_p.multiple_results = True

Levels = tuple[tuple[bool, ...], ...]


def _vmap_levels(fn, levels: Levels):
    """``fn`` vmapped over ``levels`` (outermost first): argument i has axis 0 at level k iff
    ``levels[k][i]``; outputs get every level."""
    for lev in reversed(levels):
        fn = jax.vmap(fn, in_axes=tuple(0 if b else None for b in lev), out_axes=0)
    return fn


def _level_sizes(args, levels: Levels) -> tuple[int, ...]:
    sizes = []
    for k, lev in enumerate(levels):
        i = lev.index(True)
        axis = sum(levels[q][i] for q in range(k))
        sizes.append(args[i].shape[axis])
    return tuple(sizes)


def _start(step: Array, slots: int, n_nodes: int) -> Array:
    return jnp.mod(step, slots) * n_nodes


def _push_rows(buffer: Array, h_rows: Array, step: Array, slots: int, n_nodes: int) -> Array:
    start = _start(step, slots, n_nodes)
    buffer = jax.lax.dynamic_update_slice_in_dim(buffer, h_rows, start, axis=0)
    return jax.lax.dynamic_update_slice_in_dim(buffer, h_rows, start + slots * n_nodes, axis=0)


def _read_rows(buffer, step, offsets, weights, receivers, geom) -> Array:
    """``(n_nodes, width)`` delayed sums of one instance (no leading axes)."""
    slots, n_nodes, dense, kernel = geom
    plan = ReadPlan(offsets, weights)
    width = buffer.shape[-1]
    rows = None if dense else receivers
    return to_rows(read(buffer, plan, step, slots, n_nodes, 1, (width,), rows, kernel))


def _push_read_one(buffer, h_rows, step, offsets, weights, receivers, geom):
    slots, n_nodes = geom[0], geom[1]
    new = _push_rows(buffer, h_rows, step, slots, n_nodes)
    return new, _read_rows(new, step, offsets, weights, receivers, geom)


def _push_read_t_one(ct_new, ct_total, step, offsets, weights, receivers, geom):
    slots, n_nodes, dense, kernel = geom
    start = _start(step, slots, n_nodes)
    args = (ct_new, offsets, weights, start, ct_total)
    if dense and kernel == "ffi":
        return jax.lax.platform_dependent(
            *args,
            cpu=lambda *a: _dense_adjoint_ffi(*a, n_nodes),
            default=lambda *a: _adjoint_xla(*a, receivers, slots, n_nodes),
        )
    return _adjoint_xla(*args, receivers, slots, n_nodes)


def _impl(one, *args, geom, levels):
    return list(_vmap_levels(functools.partial(one, geom=geom), levels)(*args))


def _abstract(*args, geom, levels):
    """Both primitives: first output shaped like the first operand's instance, the second
    ``(n_nodes, width)`` (sums, or the cotangent of ``h``), each with every level's axis in
    front."""
    lead = _level_sizes(args, levels)
    first, dtype = args[0], args[0].dtype
    width = first.shape[-1]
    return [
        jax.core.ShapedArray((*lead, *first.shape[-2:]), dtype),
        jax.core.ShapedArray((*lead, geom[1], width), dtype),
    ]


def _is_zero(t) -> bool:
    return type(t) is ad.Zero


def _zero_like(x):
    return ad.Zero(jax.typeof(x).to_tangent_aval())


def _linear_jvp(prim, primals, tangents, geom, levels, weights_term):
    """JVP of a primitive linear in its first two operands and in the weights (operand 4)."""
    out = prim.bind(*primals, geom=geom, levels=levels)
    _, _, step, offsets, weights, receivers = primals
    da, db, dw = tangents[0], tangents[1], tangents[4]
    if _is_zero(da) and _is_zero(db):
        t_out = [_zero_like(out[0]), _zero_like(out[1])]
    else:
        da = ad.instantiate_zeros(da)
        db = ad.instantiate_zeros(db)
        args = (da, db, step, offsets, weights, receivers)
        t_out = list(prim.bind(*args, geom=geom, levels=levels))
    if not _is_zero(dw):
        extra = weights_term(primals, out, dw, geom, levels)
        t_out = [
            e if _is_zero(t) else (t if e is None else t + e)
            for t, e in zip(t_out, extra, strict=True)
        ]
        t_out = [_zero_like(o) if t is None else t for t, o in zip(t_out, out, strict=True)]
    return out, t_out


def _push_read_weights_term(primals, out, dw, geom, levels):
    """``d sums / d weights . dw``: the read of the pushed buffer with weights ``dw``."""
    _, _, step, offsets, _, receivers = primals
    fn = lambda b, s, o, w, r: _read_rows(b, s, o, w, r, (*geom[:3], "xla"))  # noqa: E731
    lv = tuple((True, *lev[2:]) for lev in levels)  # the pushed buffer has every level
    return None, _vmap_levels(fn, lv)(out[0], step, offsets, dw, receivers)


def _push_read_t_weights_term(primals, out, dw, geom, levels):
    """``d (ct_buffer, ct_h) / d weights . dw``: the scatter of ``dw``-weighted cotangents."""
    slots, n_nodes = geom[0], geom[1]

    def fn(c, t, s, o, w, r):
        return _adjoint_xla(
            jnp.zeros_like(c), o, w, _start(s, slots, n_nodes), t, r, slots, n_nodes
        )

    ct_new, ct_total, step, offsets, _, receivers = primals
    return list(_vmap_levels(fn, levels)(ct_new, ct_total, step, offsets, dw, receivers))


def _push_read_jvp(primals, tangents, *, geom, levels):
    return _linear_jvp(_push_read_p, primals, tangents, geom, levels, _push_read_weights_term)


def _push_read_t_jvp(primals, tangents, *, geom, levels):
    return _linear_jvp(_push_read_t_p, primals, tangents, geom, levels, _push_read_t_weights_term)


def _linear_transpose(prim_t, cts, a, b, step, offsets, weights, receivers, *, geom, levels):
    """Transpose in the two linear operands: the other primitive on the cotangents, summed over
    the levels that an operand does not have."""
    if ad.is_undefined_primal(weights):
        raise NotImplementedError(
            "vbinfer push_and_read: transposing in the weights and the buffer at once"
        )
    ct0, ct1 = (jnp.zeros(c.aval.shape, c.aval.dtype) if _is_zero(c) else c for c in cts)
    lv = tuple((True, True, *lev[2:]) for lev in levels)  # cotangents carry every level
    ra, rb = prim_t.bind(ct0, ct1, step, offsets, weights, receivers, geom=geom, levels=lv)

    def reduce(ct, operand: int):
        missing = tuple(k for k, lev in enumerate(levels) if not lev[operand])
        return jnp.sum(ct, axis=missing) if missing else ct

    return [
        reduce(ra, 0) if ad.is_undefined_primal(a) else None,
        reduce(rb, 1) if ad.is_undefined_primal(b) else None,
        None,
        None,
        None,
        None,
    ]


def _batch(prim, args, dims, *, geom, levels):
    args = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims, strict=True)]
    new_level = tuple(d is not None for d in dims)
    return prim.bind(*args, geom=geom, levels=(new_level, *levels)), [0, 0]


for _prim, _one in ((_push_read_p, _push_read_one), (_push_read_t_p, _push_read_t_one)):
    _prim.def_impl(functools.partial(_impl, _one))
    _prim.def_abstract_eval(_abstract)
    mlir.register_lowering(_prim, mlir.lower_fun(functools.partial(_impl, _one), True))
    batching.primitive_batchers[_prim] = functools.partial(_batch, _prim)
ad.primitive_jvps[_push_read_p] = _push_read_jvp
ad.primitive_jvps[_push_read_t_p] = _push_read_t_jvp
ad.primitive_transposes[_push_read_p] = functools.partial(_linear_transpose, _push_read_t_p)
ad.primitive_transposes[_push_read_t_p] = functools.partial(_linear_transpose, _push_read_p)


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
