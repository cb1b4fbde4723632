// Fused delayed coupling for vbinfer: out[v, i, :] = sum_r sum_k w[v, r, i, k] *
// buf[v, start[v] + off[v, r, i, k], :].
//
// One call per integrator step reads, for every receiving node i and each of its K incoming
// edges (R reads per edge: 1 for integer lags, 2 for linear interpolation), one contiguous row
// of the history ring buffer (rows = slot * n_nodes + node, columns = n_pre * batch) and
// accumulates it with the edge weight. XLA's CPU gather materialises the (N * K, width)
// gathered rows before the weighted sum; this kernel streams them instead, skips zero weights
// and splits the receiving nodes over XLA's intra-op thread pool.
//
// Leading axes (a vmap over the simulator, vmap_method="broadcast_all") are flattened into v.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES (int64_t(1) << 20)
#endif

// Columns [c0, c0 + C) of receiver i: C accumulators held in registers (C is a compile-time
// constant, up to 512 bytes: eight AVX-512 vectors), so each gathered row segment is read once
// and the output written once. The row segment PF edges ahead is prefetched: the history rows
// an edge reads are scattered over a buffer larger than the caches, and the hardware
// prefetcher cannot guess the next one.
template <typename T, int64_t C, bool PREFETCH>
inline void SumChunk(const T* buf, const int32_t* off, const T* w, int64_t start, int64_t R,
                     int64_t N, int64_t K, int64_t width, int64_t i, int64_t c0, T* out) {
  constexpr int64_t PF = 4;
  constexpr int64_t LINE = 64 / sizeof(T);
  T acc[C] = {};
  for (int64_t r = 0; r < R; ++r) {
    const int32_t* offr = off + (r * N + i) * K;
    const T* wr = w + (r * N + i) * K;
    for (int64_t k = 0; k < K; ++k) {
      if (PREFETCH && k + PF < K) {
        const T* next = buf + (start + offr[k + PF]) * width + c0;
        for (int64_t c = 0; c < C; c += LINE) __builtin_prefetch(next + c);
      }
      const T wk = wr[k];
      if (wk == T(0)) continue;
      const T* __restrict src = buf + (start + offr[k]) * width + c0;
      for (int64_t c = 0; c < C; ++c) acc[c] += wk * src[c];
    }
  }
  std::copy(acc, acc + C, out + i * width + c0);
}

// The last cw < C columns from c0: one pass over the edges with a runtime width.
template <typename T, int64_t C, bool PREFETCH>
inline void SumPartial(const T* buf, const int32_t* off, const T* w, int64_t start, int64_t R,
                       int64_t N, int64_t K, int64_t width, int64_t i, int64_t c0, int64_t cw,
                       T* out) {
  constexpr int64_t PF = 4;
  T acc[C] = {};
  for (int64_t r = 0; r < R; ++r) {
    const int32_t* offr = off + (r * N + i) * K;
    const T* wr = w + (r * N + i) * K;
    for (int64_t k = 0; k < K; ++k) {
      if (PREFETCH && k + PF < K) __builtin_prefetch(buf + (start + offr[k + PF]) * width + c0);
      const T wk = wr[k];
      if (wk == T(0)) continue;
      const T* __restrict src = buf + (start + offr[k]) * width + c0;
      for (int64_t c = 0; c < cw; ++c) acc[c] += wk * src[c];
    }
  }
  std::copy(acc, acc + cw, out + i * width + c0);
}

// Receivers [i0, i1): the columns in chunks of 512, 256, 128 and 64 bytes, largest first, then
// the rest in one pass. Wider chunks read each gathered row in fewer passes (on the 2-core
// CI-kind machine, 512-byte chunks ran the 164-node, 256-wide sum 1.3-1.5x faster than
// 128-byte chunks).
template <typename T, bool PREFETCH>
void SumRowsImpl(const T* buf, const int32_t* off, const T* w, int64_t start, int64_t R,
                 int64_t N, int64_t K, int64_t width, T* out, int64_t i0, int64_t i1) {
  constexpr int64_t C8 = 512 / sizeof(T), C4 = C8 / 2, C2 = C8 / 4, C1 = C8 / 8;
  for (int64_t i = i0; i < i1; ++i) {
    if (width == 1) {
      T acc = T(0);
      for (int64_t r = 0; r < R; ++r) {
        const int32_t* offr = off + (r * N + i) * K;
        const T* wr = w + (r * N + i) * K;
        for (int64_t k = 0; k < K; ++k) acc += wr[k] * buf[start + offr[k]];
      }
      out[i] = acc;
      continue;
    }
    int64_t c0 = 0;
    for (; c0 + C8 <= width; c0 += C8) {
      SumChunk<T, C8, PREFETCH>(buf, off, w, start, R, N, K, width, i, c0, out);
    }
    if (c0 + C4 <= width) {
      SumChunk<T, C4, PREFETCH>(buf, off, w, start, R, N, K, width, i, c0, out);
      c0 += C4;
    }
    if (c0 + C2 <= width) {
      SumChunk<T, C2, PREFETCH>(buf, off, w, start, R, N, K, width, i, c0, out);
      c0 += C2;
    }
    if (c0 + C1 <= width) {
      SumChunk<T, C1, PREFETCH>(buf, off, w, start, R, N, K, width, i, c0, out);
      c0 += C1;
    }
    if (c0 < width) {
      SumPartial<T, C1, PREFETCH>(buf, off, w, start, R, N, K, width, i, c0, width - c0, out);
    }
  }
}

// Prefetching pays only when the buffer does not fit in a core's L2 cache (1 MiB assumed).
template <typename T>
void SumRows(const T* buf, const int32_t* off, const T* w, int64_t start, int64_t R, int64_t N,
             int64_t K, int64_t width, T* out, int64_t i0, int64_t i1, int64_t rows) {
  if (rows * width * int64_t(sizeof(T)) > PREFETCH_BYTES) {
    SumRowsImpl<T, true>(buf, off, w, start, R, N, K, width, out, i0, i1);
  } else {
    SumRowsImpl<T, false>(buf, off, w, start, R, N, K, width, out, i0, i1);
  }
}

template <ffi::DataType DT>
ffi::Error DelayedSumImpl(ffi::ThreadPool pool, ffi::Buffer<DT> buf, ffi::Buffer<ffi::S32> off,
                          ffi::Buffer<DT> w, ffi::Buffer<ffi::S32> start,
                          ffi::ResultBuffer<DT> out) {
  using T = ffi::NativeType<DT>;
  // Shapes (..., rows, width), (..., R, N, K), (..., R, N, K), (...): leading axes flattened.
  auto bd = buf.dimensions();
  auto od = off.dimensions();
  auto wd = w.dimensions();
  if (bd.size() < 2 || od.size() < 3 || wd.size() != od.size()) {
    return ffi::Error::InvalidArgument("delayed_sum: bad ranks");
  }
  const int64_t rows = bd[bd.size() - 2], width = bd[bd.size() - 1];
  const int64_t R = od[od.size() - 3], N = od[od.size() - 2], K = od[od.size() - 1];
  const int64_t V = start.element_count();
  for (size_t a = 0; a < od.size(); ++a) {
    if (od[a] != wd[a]) return ffi::Error::InvalidArgument("delayed_sum: offsets != weights");
  }
  if (buf.element_count() != V * rows * width || off.element_count() != V * R * N * K ||
      out->element_count() != V * N * width) {
    return ffi::Error::InvalidArgument("delayed_sum: inconsistent leading axes");
  }
  const T* b = buf.typed_data();
  const int32_t* o = off.typed_data();
  const T* ww = w.typed_data();
  const int32_t* s = start.typed_data();
  T* res = out->typed_data();
  const int64_t work = N * K * R * std::max<int64_t>(width, 4);
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), 8));
  for (int64_t v = 0; v < V; ++v) {
    const T* bv = b + v * rows * width;
    const int32_t* ov = o + v * R * N * K;
    const T* wv = ww + v * R * N * K;
    T* rv = res + v * N * width;
    const int64_t sv = s[v];
    if (threads == 1 || work < 32768) {
      SumRows<T>(bv, ov, wv, sv, R, N, K, width, rv, 0, N, rows);
      continue;
    }
    // Split the receiving nodes into chunks that this thread and pool tasks take in turn.
    // A task that starts late finds no chunk left and returns at once (it holds the shared
    // counters, never the caller's stack), so a busy pool cannot block the call.
    struct Shared {
      std::atomic<int64_t> next{0};
      std::atomic<int64_t> done{0};
    };
    auto shared = std::make_shared<Shared>();
    const int64_t chunks = std::min<int64_t>(N, threads * 4);
    auto work = [=](Shared& sh) {
      for (int64_t c = sh.next.fetch_add(1); c < chunks; c = sh.next.fetch_add(1)) {
        SumRows<T>(bv, ov, wv, sv, R, N, K, width, rv, N * c / chunks, N * (c + 1) / chunks,
                   rows);
        sh.done.fetch_add(1, std::memory_order_release);
      }
    };
    for (int64_t p = 1; p < threads; ++p) {
      pool.Schedule([shared, work] { work(*shared); });
    }
    work(*shared);
    while (shared->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(VbinferDelayedSumF32, DelayedSumImpl<ffi::F32>,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(VbinferDelayedSumF64, DelayedSumImpl<ffi::F64>,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::F64>>());

// ---------------------------------------------------------------------------------- transpose
// The adjoint of one step's push and delayed sum, in place: first ct_buf[v, start[v] +
// off[v, r, i, k], :] += w[v, r, i, k] * ct_out[v, i, :] (the read), then the rows of the
// pushed slot (rows start .. start + N and their copy half a buffer further) are summed into
// ct_rows and zeroed (the push). ct_buf is aliased to the first result
// (input_output_aliases), so the backward pass of a step touches only the rows that the step
// read and wrote, never the whole buffer; doing the push here too keeps XLA from copying the
// buffer to order a read of those rows before their zeroing.
// Several receivers write the same history row (one sender, one lag).

namespace {

// Edges k in [k0, k1) of every receiver: in a dense plan k is the sending node, and the rows a
// sender's edges write (its history rows) belong to no other sender, so threads that own
// disjoint sender ranges never write the same row.
template <typename T>
void ScatterRows(T* ct, const int32_t* off, const T* w, const T* ct_out, int64_t start, int64_t R,
                 int64_t N, int64_t K, int64_t width, int64_t k0, int64_t k1) {
  if (width == 1) {  // one column (an unbatched run): no inner loop, which cost 2x here
    for (int64_t i = 0; i < N; ++i) {
      const T src = ct_out[i];
      for (int64_t r = 0; r < R; ++r) {
        const int32_t* offr = off + (r * N + i) * K;
        const T* wr = w + (r * N + i) * K;
        for (int64_t k = k0; k < k1; ++k) ct[start + offr[k]] += wr[k] * src;
      }
    }
    return;
  }
  for (int64_t i = 0; i < N; ++i) {
    const T* src = ct_out + i * width;
    for (int64_t r = 0; r < R; ++r) {
      const int32_t* offr = off + (r * N + i) * K;
      const T* wr = w + (r * N + i) * K;
      for (int64_t k = k0; k < k1; ++k) {
        const T wk = wr[k];
        if (wk == T(0)) continue;
        T* __restrict dst = ct + (start + offr[k]) * width;
        for (int64_t c = 0; c < width; ++c) dst[c] += wk * src[c];
      }
    }
  }
}

template <ffi::DataType DT>
ffi::Error DelayedSumTransposeImpl(ffi::Buffer<DT> ct_buf,
                                   ffi::Buffer<ffi::S32> off, ffi::Buffer<DT> w,
                                   ffi::Buffer<ffi::S32> start, ffi::Buffer<DT> ct_out,
                                   ffi::ResultBuffer<DT> result, ffi::ResultBuffer<DT> ct_rows) {
  using T = ffi::NativeType<DT>;
  auto bd = ct_buf.dimensions();
  auto od = off.dimensions();
  if (bd.size() < 2 || od.size() < 3 || w.dimensions().size() != od.size()) {
    return ffi::Error::InvalidArgument("delayed_sum_transpose: bad ranks");
  }
  const int64_t rows = bd[bd.size() - 2], width = bd[bd.size() - 1];
  const int64_t R = od[od.size() - 3], N = od[od.size() - 2], K = od[od.size() - 1];
  const int64_t V = start.element_count();
  if (ct_buf.element_count() != V * rows * width || off.element_count() != V * R * N * K ||
      w.element_count() != V * R * N * K || ct_out.element_count() != V * N * width ||
      result->element_count() != V * rows * width ||
      ct_rows->element_count() != V * N * width || rows % 2 != 0) {
    return ffi::Error::InvalidArgument("delayed_sum_transpose: inconsistent shapes");
  }
  T* res = result->typed_data();
  if (res != ct_buf.typed_data()) {  // not aliased (XLA may copy): start from the input
    std::copy(ct_buf.typed_data(), ct_buf.typed_data() + V * rows * width, res);
  }
  const int32_t* o = off.typed_data();
  const T* ww = w.typed_data();
  const int32_t* s = start.typed_data();
  const T* co = ct_out.typed_data();
  // One thread: a step's adjoint is a few tens of microseconds here, and splitting it over
  // sender ranges (rows of different senders never overlap) measured no faster on 2 cores.
  for (int64_t v = 0; v < V; ++v) {
    ScatterRows<T>(res + v * rows * width, o + v * R * N * K, ww + v * R * N * K,
                   co + v * N * width, s[v], R, N, K, width, 0, K);
  }
  // the push: the pushed rows' cotangent (both copies) goes to ct_rows; they were overwritten
  T* out_rows = ct_rows->typed_data();
  for (int64_t v = 0; v < V; ++v) {
    T* first = res + v * rows * width + s[v] * width;
    T* second = first + (rows / 2) * width;
    T* dst = out_rows + v * N * width;
    for (int64_t e = 0; e < N * width; ++e) {
      dst[e] = first[e] + second[e];
      first[e] = T(0);
      second[e] = T(0);
    }
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(VbinferDelayedSumTransposeF32, DelayedSumTransposeImpl<ffi::F32>,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(VbinferDelayedSumTransposeF64, DelayedSumTransposeImpl<ffi::F64>,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>()
                                  .Ret<ffi::Buffer<ffi::F64>>());
