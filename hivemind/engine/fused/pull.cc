// The pull of every receiver, fused: for each receiver i (edges sorted by receiver, CSR offsets),
// sum_j w_ij Log_{x_i}(x_j) and sum_j w_ij over the edges that act, in one pass with nothing
// written between; receivers split over threads. Sphere, hyperbolic (hyperboloid model) and
// Euclidean space; float32 and float64; a batch of runs on one graph in the middle axis.
//
// Layouts: states (N, B, D), senders (E,) int32, offsets (N + 1,) int32, weights (E, Bw) with
// Bw = 1 or B, confidence (Bc,) with Bc = 1 or B. Results: force (N, B, D), heard (N, B).
// The formulas are those of hivemind/engine/manifolds (the pure-JAX kernel is the oracle).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum Manifold : int64_t { kEuclidean = 0, kSphere = 1, kHyperbolic = 2 };

template <typename T>
inline T small_angle() {
  // (120 eps)^(1/4): below it sin(t)/t and sinh(t)/t are 1 -/+ t^2/6 to working precision.
  return std::pow(T(120) * std::numeric_limits<T>::epsilon(), T(0.25));
}

template <typename T>
inline T ratio_or_one(T num, T den) {
  return den > std::numeric_limits<T>::min() * T(1e4) ? num / den : T(1);
}

// Log_x(y) into `out` (D coordinates); returns the geodesic distance.
template <typename T>
inline T log_map(int64_t manifold, const T* x, const T* y, T* out, int64_t d) {
  if (manifold == kEuclidean) {
    T s = 0;
    for (int64_t k = 0; k < d; ++k) {
      out[k] = y[k] - x[k];
      s += out[k] * out[k];
    }
    return s > 0 ? std::sqrt(s) : T(0);
  }
  if (manifold == kSphere) {
    // u = proj_x(y - x), from the small difference; angle atan2(|u|, 1 + <x, y - x>).
    T c = 0;
    for (int64_t k = 0; k < d; ++k) c += x[k] * (y[k] - x[k]);
    T ss = 0;
    for (int64_t k = 0; k < d; ++k) {
      out[k] = (y[k] - x[k]) - c * x[k];
      ss += out[k] * out[k];
    }
    T s = ss > 0 ? std::sqrt(ss) : T(0);
    T angle = std::atan2(s, T(1) + c);
    T f = ratio_or_one(angle, s);
    for (int64_t k = 0; k < d; ++k) out[k] *= f;
    return angle;
  }
  // Hyperboloid: q = |y - x|_L^2 = 4 sinh^2(d/2); Log_x(y) = f ((y - x) - q/2 x).
  T q = 0;
  for (int64_t k = 0; k < d; ++k) {
    T diff = y[k] - x[k];
    q += (k == 0 ? -diff : diff) * diff;
  }
  q = std::max(q, T(0));
  T r = q > 0 ? std::sqrt(q) : T(0);
  T dist = T(2) * std::asinh(r / T(2));
  T f = ratio_or_one(dist, r * std::sqrt(T(1) + q / T(4)));
  T half = T(0.5) * q;
  for (int64_t k = 0; k < d; ++k) out[k] = f * ((y[k] - x[k]) - half * x[k]);
  return dist;
}

template <ffi::DataType DT>
ffi::Error PullImpl(ffi::Buffer<DT> states, ffi::Buffer<ffi::S32> senders, ffi::Buffer<ffi::S32> offsets,
                    ffi::Buffer<DT> weights, ffi::Buffer<DT> confidence, ffi::ResultBuffer<DT> force,
                    ffi::ResultBuffer<DT> heard, int64_t manifold, int64_t bounded, int64_t threads) {
  using T = ffi::NativeType<DT>;
  auto dims = states.dimensions();
  if (dims.size() != 3) return ffi::Error::InvalidArgument("states must be (N, B, D)");
  const int64_t n = dims[0], b = dims[1], d = dims[2];
  const int64_t e = senders.element_count();
  const int64_t bw = e > 0 ? weights.element_count() / e : 1;
  const int64_t bc = confidence.element_count();
  if (offsets.element_count() != n + 1) return ffi::Error::InvalidArgument("offsets must have N + 1 entries");
  if ((bw != 1 && bw != b) || (bc != 1 && bc != b)) return ffi::Error::InvalidArgument("weights or confidence batch");
  const T* x = states.typed_data();
  const int32_t* snd = senders.typed_data();
  const int32_t* off = offsets.typed_data();
  const T* w = weights.typed_data();
  const T* conf = confidence.typed_data();
  T* f = force->typed_data();
  T* h = heard->typed_data();

  auto rows = [&](int64_t lo, int64_t hi) {
    std::vector<T> log(d);
    for (int64_t i = lo; i < hi; ++i) {
      for (int64_t r = 0; r < b; ++r) {
        const T* xi = x + (i * b + r) * d;
        T* fi = f + (i * b + r) * d;
        std::fill(fi, fi + d, T(0));
        T heard_i = 0;
        const T bound = conf[bc == 1 ? 0 : r];
        for (int32_t k = off[i]; k < off[i + 1]; ++k) {
          const T wk = w[k * bw + (bw == 1 ? 0 : r)];
          const T* xj = x + (static_cast<int64_t>(snd[k]) * b + r) * d;
          T dist = log_map<T>(manifold, xi, xj, log.data(), d);
          if (bounded && !(dist < bound)) continue;
          for (int64_t c = 0; c < d; ++c) fi[c] += wk * log[c];
          heard_i += wk;
        }
        h[i * b + r] = heard_i;
      }
    }
  };
  // Threads pay off only with enough work: a few thousand pair evaluations each.
  int64_t work = (e + n) * b * d;
  int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, work / 65536));
  if (t == 1) {
    rows(0, n);
    return ffi::Error::Success();
  }
  // Split receivers so that each thread gets about the same number of edges.
  std::vector<std::thread> pool;
  int64_t start = 0;
  for (int64_t k = 1; k <= t; ++k) {
    int64_t target = (static_cast<int64_t>(off[n]) * k) / t;
    int64_t end = k == t ? n : std::lower_bound(off, off + n + 1, static_cast<int32_t>(target)) - off;
    end = std::max(end, start);
    if (k == t) {
      rows(start, end);
    } else {
      pool.emplace_back(rows, start, end);
    }
    start = end;
  }
  for (auto& th : pool) th.join();
  return ffi::Error::Success();
}

}  // namespace

#define HIVEMIND_BIND(DT)                   \
  ffi::Ffi::Bind()                          \
      .Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<ffi::S32>>()         \
      .Arg<ffi::Buffer<ffi::S32>>()         \
      .Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>()               \
      .Ret<ffi::Buffer<DT>>()               \
      .Attr<int64_t>("manifold")            \
      .Attr<int64_t>("bounded")             \
      .Attr<int64_t>("threads")

XLA_FFI_DEFINE_HANDLER_SYMBOL(HivemindPullF32, PullImpl<ffi::F32>, HIVEMIND_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(HivemindPullF64, PullImpl<ffi::F64>, HIVEMIND_BIND(ffi::F64));
