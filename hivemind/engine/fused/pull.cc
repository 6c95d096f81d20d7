// The pull of every receiver, fused: for each receiver i (edges sorted by receiver),
// sum_j w_ij Log_{x_i}(x_j) and sum_j w_ij over the edges that act, in one pass with nothing
// written to memory between; receivers split over threads. Sphere, hyperbolic (hyperboloid
// model) and Euclidean space; float32 and float64; a batch of runs on one graph in the middle axis.
//
// Layouts: states (N, B, D), senders (E,) int32, receivers (E,) int32 sorted, weights (E, Bw)
// with Bw = 1 or B, confidence (Bc,) with Bc = 1 or B. Results: force (N, B, D), heard (N, B).
// The formulas are those of hivemind/engine/manifolds (the pure-JAX kernel is the oracle).
//
// Why it is shaped this way. One edge at a time with scalar atan2 lost to XLA (which vectorises
// the transcendental across edges): the per-edge arithmetic, not memory, was the cost. So edges
// are taken in chunks of CHUNK (edge, run) items: (1) the coordinate loops (D known at compile
// time for the usual sizes, so each is a few vector instructions) leave per item the direction
// and two scalars in a buffer that stays in L1; (2) the angle (a branch-free polynomial atan2,
// vectorised across the chunk by the compiler) and the confidence gate; (3) the scaled
// directions are summed into their receiver's row, which stays in L1 while its edges pass.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum Manifold : int { kEuclidean = 0, kSphere = 1, kHyperbolic = 2 };

constexpr int CHUNK = 64;      // items per chunk: directions of 64 x D stay in L1
constexpr int PREFETCH = 16;   // edges ahead whose sender row is asked for early (large N: DRAM latency)

template <typename T>
inline T ratio_or_one(T num, T den) {
  return den > std::numeric_limits<T>::min() * T(1e4) ? num / den : T(1);
}

// atan(a) for a in [0, 1], branch-free so that a loop of it vectorises. Cephes' atanf (float, within
// 2 ulp over [0, 1]) and atan (double, 1 ulp), with the one range reduction [0, 1] needs.
inline float atan01(float a) {
  const bool big = a > 0.41421356237309503f;  // tan(pi/8)
  const float x = big ? (a - 1.0f) / (a + 1.0f) : a;
  const float z = x * x;
  const float p = (((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z - 3.33329491539e-1f) * z;
  return (big ? 0.78539816339744831f : 0.0f) + (p * x + x);
}

inline double atan01(double a) {
  const bool big = a > 0.66;
  const double x = big ? (a - 1.0) / (a + 1.0) : a;
  const double z = x * x;
  const double p = (((-8.750608600031904122785e-1 * z - 1.615753718733365076637e1) * z - 7.500855792314704667340e1) * z -
                    1.228866684490136173410e2) * z - 6.485021904942025371773e1;
  const double q = ((((z + 2.485846490142306297962e1) * z + 1.650270098316988542046e2) * z + 4.328810604912902668951e2) * z +
                    4.853903996359136964868e2) * z + 1.945506571482613964425e2;
  const double r = x * (z * p / q) + x;
  return big ? 0.78539816339744830962 + (r + 3.061616997868382943065e-17) : r;
}

// atan2(a, b) for a, b >= 0 (an angle in [0, pi/2]), from atan01 and one reflection.
template <typename T>
inline T atan2_quarter(T a, T b) {
  const T hi = std::max(a, b), lo = std::min(a, b);
  const T t = atan01(hi > T(0) ? lo / hi : T(0));
  return a > b ? T(1.57079632679489661923) - t : t;
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define HIVEMIND_VECTORS 1
#endif
#endif
#ifndef HIVEMIND_VECTORS
#define HIVEMIND_VECTORS 0
#endif

#if HIVEMIND_VECTORS
// The first `width` of D coordinates (the largest power of two <= D, at most 128 bytes) as one
// GCC/Clang vector, lowered to AVX-512, AVX2, NEON or scalar code as the target allows; the
// kernels take the rest as scalars. Builds without __builtin_shufflevector take the plain loops.
template <typename T, int D>
struct Lanes {
  static constexpr int floor2(int v) { return v < 2 ? 1 : 2 * floor2(v / 2); }
  static constexpr int width = floor2(D);  // the largest power of two <= D
  static constexpr bool ok = D >= 2 && width * sizeof(T) <= 128;
  typedef T type __attribute__((vector_size((ok ? width : 2) * sizeof(T))));
};

template <typename T, int W, size_t... I>
inline typename Lanes<T, W / 2>::type fold(typename Lanes<T, W>::type v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, I...) + __builtin_shufflevector(v, v, (I + W / 2)...);
}

// The sum of the lanes as a tree (log2 W dependent adds, not W).
template <typename T, int W>
inline T hsum(typename Lanes<T, W>::type v) {
  if constexpr (W == 2) {
    return v[0] + v[1];
  } else {
    return hsum<T, W / 2>(fold<T, W>(v, std::make_index_sequence<W / 2>{}));
  }
}
#endif

struct Item {
  int64_t row;  // receiver * B + run: where the force goes
  int64_t run;
};

template <typename T>
struct Chunk {
  std::vector<T> dir;  // CHUNK x D: the direction each item pulls along, before its scale
  T a[CHUNK], b[CHUNK], w[CHUNK];
  Item at[CHUNK];
  int size = 0;
  explicit Chunk(int64_t d) : dir(CHUNK * d) {}
};

template <typename T, int M, int DC>
struct Kernel {
  const T* x;
  const int32_t* snd;
  const int32_t* rcv;
  const T* w;
  const T* conf;
  T* f;
  T* h;
  int64_t n, b, d_rt, bw, bc;
  bool bounded;

  int64_t dim() const { return DC > 0 ? DC : d_rt; }

  // The same kernel with the dimension known at compile time (DC = 0: the runtime loops).
  template <int D>
  Kernel<T, M, D> at_dim() const {
    return {x, snd, rcv, w, conf, f, h, n, b, d_rt, bw, bc, bounded};
  }

  // (1) The coordinates of one item: the direction it pulls along (before its scale) into u,
  // and the sums of squares its scale needs into a and bb. The sphere uses Kahan's pair form
  // (pure JAX's log_pair): with dl = y - x and e = y + x, theta = 2 atan2(|dl|, |e|) and
  // Log_x(y) = theta / (|dl||e|/2) (dl + |dl|^2/2 x); its two sums are independent of each
  // other, where <x, y - x> and then |proj| would be a chain of two reductions.
  inline void geometry(const T* xi, const T* xj, T* u, T& a, T& bb) const {
#if HIVEMIND_VECTORS
    if constexpr (Lanes<T, DC>::ok) {
      // The first P coordinates as one vector, the last DC - P (the time or extra coordinate of
      // S^n and H^n in R^{n+1}: DC = 2^k + 1 is the usual size) as scalars.
      constexpr int P = Lanes<T, DC>::width;
      using Vec = typename Lanes<T, DC>::type;
      Vec x0, x1;
      std::memcpy(&x0, xi, sizeof(Vec));
      std::memcpy(&x1, xj, sizeof(Vec));
      const Vec dl = x1 - x0;
      const Vec sq = dl * dl;
      T ss = hsum<T, P>(sq), ee = 0;
      Vec e{};
      if constexpr (M == kSphere) e = x1 + x0;
      if constexpr (M == kSphere) ee = hsum<T, P>(e * e);
      for (int k = P; k < DC; ++k) {
        const T dk = xj[k] - xi[k], ek = xj[k] + xi[k];
        ss += dk * dk;
        ee += ek * ek;
      }
      T half;
      if constexpr (M == kEuclidean) {
        a = ss;
        half = 0;
      } else if constexpr (M == kSphere) {
        a = ss;
        bb = ee;
        half = -T(0.5) * a;
      } else {
        // Hyperboloid: q = |y - x|_L^2 = 4 sinh^2(d/2) (time coordinate first); Log_x(y) = f (dl - q/2 x).
        Vec sign{};  // the Minkowski form, -+...+: the time part is never added to be taken away
        sign += T(1);
        sign[0] = T(-1);
        a = hsum<T, P>(sq * sign);
        for (int k = P; k < DC; ++k) a += (xj[k] - xi[k]) * (xj[k] - xi[k]);
        a = std::max(a, T(0));
        half = T(0.5) * a;
      }
      const Vec out = dl - half * x0;
      std::memcpy(u, &out, sizeof(Vec));
      for (int k = P; k < DC; ++k) u[k] = (xj[k] - xi[k]) - half * xi[k];
      return;
    }
#endif
    const int64_t d = dim();
    T ss = 0, ee = 0, q = 0;
#pragma omp simd reduction(+ : ss, ee, q)
    for (int64_t k = 0; k < d; ++k) {
      const T dl = xj[k] - xi[k], e = xj[k] + xi[k];
      ss += dl * dl;
      ee += e * e;
      q += (k == 0 ? -dl : dl) * dl;
    }
    if (M == kEuclidean) {
      a = ss;
      for (int64_t k = 0; k < d; ++k) u[k] = xj[k] - xi[k];
    } else if (M == kSphere) {
      a = ss;
      bb = ee;
      const T half = T(0.5) * ss;
      for (int64_t k = 0; k < d; ++k) u[k] = (xj[k] - xi[k]) + half * xi[k];
    } else {
      a = std::max(q, T(0));
      const T half = T(0.5) * a;
      for (int64_t k = 0; k < d; ++k) u[k] = (xj[k] - xi[k]) - half * xi[k];
    }
  }

  // (2) and (3): the scale and gate of every item in the chunk, then the sums into receivers.
  // (2) From the sums of squares (a, bb) of m items: each one's geodesic distance and the scale
  // that turns its direction into Log_x(y). Both kernels use it.
  static void scales(int m, const T* a, const T* bb, T* scale, T* dist) {
    if (M == kEuclidean) {
#pragma omp simd
      for (int q = 0; q < m; ++q) {
        scale[q] = T(1);
        dist[q] = std::sqrt(a[q]);
      }
    } else if (M == kSphere) {
#pragma omp simd
      for (int q = 0; q < m; ++q) {
        const T da = std::sqrt(a[q]), e = std::sqrt(bb[q]);
        const T angle = T(2) * atan2_quarter(da, e);
        scale[q] = ratio_or_one(angle, T(0.5) * da * e);
        dist[q] = angle;
      }
    } else {
      for (int q = 0; q < m; ++q) {  // asinh has no vector form here: the hyperbolic case is scalar
        const T qq = a[q];
        const T r = qq > T(0) ? std::sqrt(qq) : T(0);
        const T dd = T(2) * std::asinh(r / T(2));
        scale[q] = ratio_or_one(dd, r * std::sqrt(T(1) + qq / T(4)));
        dist[q] = dd;
      }
    }
  }

  // (2), the gate, and (3): the sums into receivers.
  void flush(Chunk<T>& ch) const {
    const int m = ch.size;
    T scale[CHUNK], dist[CHUNK];
    scales(m, ch.a, ch.b, scale, dist);
    if (bounded) {
      for (int q = 0; q < m; ++q) {
        const T bound = conf[bc == 1 ? 0 : ch.at[q].run];
        ch.w[q] = dist[q] < bound ? ch.w[q] : T(0);
      }
    }
    const int64_t d = dim();
    for (int q = 0; q < m; ++q) {
      const T s = ch.w[q] * scale[q];
      T* fi = f + ch.at[q].row * d;
      const T* u = ch.dir.data() + q * d;
#if HIVEMIND_VECTORS
      if constexpr (Lanes<T, DC>::ok) {
        using Vec = typename Lanes<T, DC>::type;
        Vec acc, v;
        std::memcpy(&acc, fi, sizeof(Vec));
        std::memcpy(&v, u, sizeof(Vec));
        acc += s * v;
        std::memcpy(fi, &acc, sizeof(Vec));
        for (int k = Lanes<T, DC>::width; k < DC; ++k) fi[k] += s * u[k];
      } else
#endif
      {
        for (int64_t k = 0; k < d; ++k) fi[k] += s * u[k];
      }
      h[ch.at[q].row] += ch.w[q];
    }
    ch.size = 0;
  }

  // Receivers [r0, r1), whose edges are [e0, e1): zero their rows, then sum their edges.
  // Returns false on an index out of range or receivers out of order (an error, not a crash).
  bool rows(int64_t r0, int64_t r1, int64_t e0, int64_t e1) const {
    const int64_t d = dim();
    std::fill(f + r0 * b * d, f + r1 * b * d, T(0));
    std::fill(h + r0 * b, h + r1 * b, T(0));
    Chunk<T> ch(d);
    int32_t previous = static_cast<int32_t>(r0);
    for (int64_t k = e0; k < e1; ++k) {
      const int32_t i = rcv[k], j = snd[k];
      if (i < previous || i >= r1 || j < 0 || j >= n) return false;
      previous = i;
      if (k + PREFETCH < e1) {
        const int32_t ahead = snd[k + PREFETCH];
        if (ahead >= 0 && ahead < n) __builtin_prefetch(x + static_cast<int64_t>(ahead) * b * d);
      }
      for (int64_t r = 0; r < b; ++r) {
        const int q = ch.size;
        const int64_t row = static_cast<int64_t>(i) * b + r;
        geometry(x + row * d, x + (static_cast<int64_t>(j) * b + r) * d, ch.dir.data() + q * d, ch.a[q], ch.b[q]);
        ch.w[q] = w[k * bw + (bw == 1 ? 0 : r)];
        ch.at[q] = {row, r};
        if (++ch.size == CHUNK) flush(ch);
      }
    }
    if (ch.size) flush(ch);
    return true;
  }

  // Geodesic distances of pairs (a[p], b[p]), p in [p0, p1), of every run into out (P, B): what the
  // records need (the loss and the clusters over the edges, the dispersion over a sample's pairs),
  // with the pull's sums and formulas. Returns false on an index out of range.
  bool distances(const int32_t* a, const int32_t* b2, T* out, int64_t p0, int64_t p1) const {
    const int64_t d = dim();
    std::vector<T> scratch(d);
    T s1[CHUNK], s2[CHUNK], scale[CHUNK], dist[CHUNK];
    int64_t at[CHUNK];
    int m = 0;
    auto flush_distances = [&]() {
      scales(m, s1, s2, scale, dist);
      for (int q = 0; q < m; ++q) out[at[q]] = dist[q];
      m = 0;
    };
    for (int64_t p = p0; p < p1; ++p) {
      const int32_t i = a[p], j = b2[p];
      if (i < 0 || i >= n || j < 0 || j >= n) return false;
      for (int64_t r = 0; r < b; ++r) {
        geometry(x + (static_cast<int64_t>(i) * b + r) * d, x + (static_cast<int64_t>(j) * b + r) * d, scratch.data(),
                 s1[m], s2[m]);
        at[m] = p * b + r;
        if (++m == CHUNK) flush_distances();
      }
    }
    if (m) flush_distances();
    return true;
  }
};

// Calls f(std::integral_constant<int, D>{}) with D the dimension as a compile-time constant: vector
// code for the usual dimensions (2^k coordinates, or 2^k + 1: S^n and H^n live in R^{n+1}),
// D = 0 (the runtime loops) for the rest.
template <typename F>
auto with_dim(int64_t d, F&& f) {
  switch (d) {
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 9: return f(std::integral_constant<int, 9>{});
    case 16: return f(std::integral_constant<int, 16>{});
    case 17: return f(std::integral_constant<int, 17>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 33: return f(std::integral_constant<int, 33>{});
    default: return f(std::integral_constant<int, 0>{});
  }
}

// Calls f(std::integral_constant<int, M>{}) for the manifold's code M; an unknown code is an error.
template <typename F>
ffi::Error with_manifold(int64_t manifold, F&& f) {
  switch (manifold) {
    case kEuclidean: return f(std::integral_constant<int, kEuclidean>{});
    case kSphere: return f(std::integral_constant<int, kSphere>{});
    case kHyperbolic: return f(std::integral_constant<int, kHyperbolic>{});
    default: return ffi::Error::InvalidArgument("unknown manifold");
  }
}

// The parts of one call, claimed one at a time by whoever is free: the calling thread and the
// tasks it hands XLA's own thread pool (threads of our own would compete with XLA's, which spin
// between ops). The caller takes parts too and waits only for parts others have begun, so a
// pool with no free thread (or none at all) cannot stall it; a task that starts after every
// part is taken touches only this shared state, which it keeps alive.
struct Parts {
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> ok{true};
  int64_t count = 0;
  std::function<bool(int64_t)> run;
  void work() {
    for (int64_t p; (p = next.fetch_add(1)) < count;) {
      if (!run(p)) ok = false;
      done.fetch_add(1);
    }
  }
};

// Runs run(0) .. run(t - 1) on the calling thread and t - 1 tasks of XLA's pool; false if any did.
// ``run`` is kept by the shared state: it must hold its data by value.
bool run_parts(ffi::ThreadPool& pool, int64_t t, std::function<bool(int64_t)> run) {
  auto parts = std::make_shared<Parts>();
  parts->count = t;
  parts->run = std::move(run);
  for (int64_t p = 1; p < t; ++p) pool.Schedule([parts] { parts->work(); });
  parts->work();
  while (parts->done.load() < t) std::this_thread::yield();
  return parts->ok;
}

template <typename T, int M>
ffi::Error Launch(const Kernel<T, M, 0>& k, int64_t e, int64_t threads, ffi::ThreadPool& pool) {
  // Threads pay off only with enough work: a few thousand pair evaluations each.
  const int64_t work = (e + k.n) * k.b * k.d_rt;
  const int64_t t = e == 0 ? 1 : std::max<int64_t>(1, std::min<int64_t>(threads, work / 65536));
  // Split by edges, at receiver boundaries: part p takes receivers [row[p], row[p + 1]).
  std::vector<int64_t> row(t + 1), edge(t + 1);
  row[0] = 0;
  row[t] = k.n;
  for (int64_t p = 1; p < t; ++p) {
    const int32_t at = k.rcv[(e * p) / t];
    row[p] = std::clamp<int64_t>(at, row[p - 1], k.n);
  }
  for (int64_t p = 1; p < t; ++p) edge[p] = std::lower_bound(k.rcv, k.rcv + e, static_cast<int32_t>(row[p])) - k.rcv;
  edge[0] = 0;  // every edge is looked at: one out of range or order is an error, not a silent skip
  edge[t] = e;
  const bool ok = run_parts(pool, t, [k, row, edge](int64_t p) {
    return with_dim(k.d_rt, [&](auto dc) { return k.template at_dim<dc>().rows(row[p], row[p + 1], edge[p], edge[p + 1]); });
  });
  if (!ok) return ffi::Error::InvalidArgument("receivers must be sorted and every index within the states");
  return ffi::Error::Success();
}

template <ffi::DataType DT>
ffi::Error PullImpl(ffi::Buffer<DT> states, ffi::Buffer<ffi::S32> senders, ffi::Buffer<ffi::S32> receivers,
                    ffi::Buffer<DT> weights, ffi::Buffer<DT> confidence, ffi::ResultBuffer<DT> force,
                    ffi::ResultBuffer<DT> heard, int64_t manifold, int64_t bounded, int64_t threads,
                    ffi::ThreadPool pool) {
  using T = ffi::NativeType<DT>;
  auto dims = states.dimensions();
  if (dims.size() != 3) return ffi::Error::InvalidArgument("states must be (N, B, D)");
  const int64_t n = dims[0], b = dims[1], d = dims[2];
  const int64_t e = senders.element_count();
  const int64_t bw = e > 0 ? weights.element_count() / e : 1;
  const int64_t bc = confidence.element_count();
  if (receivers.element_count() != e) return ffi::Error::InvalidArgument("senders and receivers differ in length");
  if ((bw != 1 && bw != b) || (bc != 1 && bc != b)) return ffi::Error::InvalidArgument("weights or confidence batch");
  if (n >= INT32_MAX) return ffi::Error::InvalidArgument("more agents than int32 indices reach");
  return with_manifold(manifold, [&](auto m) {
    constexpr int M = decltype(m)::value;
    Kernel<T, M, 0> k{states.typed_data(), senders.typed_data(), receivers.typed_data(), weights.typed_data(),
                      confidence.typed_data(), force->typed_data(), heard->typed_data(),
                      n, b, d, bw, bc, bounded != 0};
    return Launch<T, M>(k, e, threads, pool);
  });
}

template <ffi::DataType DT>
ffi::Error DistImpl(ffi::Buffer<DT> states, ffi::Buffer<ffi::S32> first, ffi::Buffer<ffi::S32> second,
                    ffi::ResultBuffer<DT> dist, int64_t manifold, int64_t threads, ffi::ThreadPool pool) {
  using T = ffi::NativeType<DT>;
  auto dims = states.dimensions();
  if (dims.size() != 3) return ffi::Error::InvalidArgument("states must be (N, B, D)");
  const int64_t n = dims[0], b = dims[1], d = dims[2];
  const int64_t pairs = first.element_count();
  if (second.element_count() != pairs) return ffi::Error::InvalidArgument("the two index arrays differ in length");
  const int32_t* ia = first.typed_data();
  const int32_t* ib = second.typed_data();
  T* out = dist->typed_data();
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, pairs * b * d / 65536));
  return with_manifold(manifold, [&](auto mc) {
    constexpr int M = decltype(mc)::value;
    Kernel<T, M, 0> k{states.typed_data(), nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, n, b, d, 1, 1, false};
    const bool ok = run_parts(pool, t, [k, ia, ib, out, pairs, t](int64_t p) {
      return with_dim(k.d_rt, [&](auto dc) {
        return k.template at_dim<dc>().distances(ia, ib, out, pairs * p / t, pairs * (p + 1) / t);
      });
    });
    return ok ? ffi::Error::Success() : ffi::Error::InvalidArgument("every index must be within the states");
  });
}

}  // namespace

// The libraries are built with hidden symbols (each portable variant keeps its own copy of every
// inline function); these are what the engine looks up.
#define HIVEMIND_EXPORT extern "C" __attribute__((visibility("default")))
HIVEMIND_EXPORT XLA_FFI_Error* HivemindDistF32(XLA_FFI_CallFrame*);
HIVEMIND_EXPORT XLA_FFI_Error* HivemindDistF64(XLA_FFI_CallFrame*);
HIVEMIND_EXPORT XLA_FFI_Error* HivemindPullF32(XLA_FFI_CallFrame*);
HIVEMIND_EXPORT XLA_FFI_Error* HivemindPullF64(XLA_FFI_CallFrame*);

// Which portable variant this CPU runs (asked of the baseline library, before loading another):
// 4 = x86-64-v4 (AVX-512), 3 = x86-64-v3 (AVX2, FMA), 1 = the baseline; 0 off x86-64. libgcc's
// and compiler-rt's checks include the OS's consent (XGETBV) to the AVX and AVX-512 registers.
HIVEMIND_EXPORT int HivemindCpuLevel() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
                  __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  return v4 ? 4 : v3 ? 3 : 1;
#else
  return 0;
#endif
}

#define HIVEMIND_DIST_BIND(DT)              \
  ffi::Ffi::Bind()                          \
      .Arg<ffi::Buffer<DT>>()               \
      .Arg<ffi::Buffer<ffi::S32>>()         \
      .Arg<ffi::Buffer<ffi::S32>>()         \
      .Ret<ffi::Buffer<DT>>()               \
      .Attr<int64_t>("manifold")            \
      .Attr<int64_t>("threads")             \
      .Ctx<ffi::ThreadPool>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(HivemindDistF32, DistImpl<ffi::F32>, HIVEMIND_DIST_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(HivemindDistF64, DistImpl<ffi::F64>, HIVEMIND_DIST_BIND(ffi::F64));

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
      .Attr<int64_t>("threads")             \
      .Ctx<ffi::ThreadPool>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(HivemindPullF32, PullImpl<ffi::F32>, HIVEMIND_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(HivemindPullF64, PullImpl<ffi::F64>, HIVEMIND_BIND(ffi::F64));
