// One epoch of SGD for a [n_in, n_hidden, n_out] sigmoid network with the quadratic
// (chapter 1) or cross-entropy (chapter 3) cost, in one call from XLA (through its FFI) on
// the CPU.
//
// It computes the book's updates (BP1-BP4, then w -> decay w - (eta/m) sum_x dC_x/dw for
// each mini-batch, in the given order; decay = 1 - eta lambda / n for L2) in float32. It
// differs from nnjax's pure-JAX epoch only in the order in which floats are added and in
// its own e^x (within about 1 ulp); the tests compare the two.
//
// Why a kernel: at mini-batch 10 a step is two 10x784x30 products, too small for XLA's
// library calls to run near the core's peak, and each is a separate pass over w1. Here:
// - the update of w1 by step s and the product of step s+1 with w1 share one pass: each
//   block of w1 is loaded once, updated, stored and multiplied;
// - the mini-batch is copied into a chunk-interleaved buffer (8 columns of every row side
//   by side) that the inner loop reads at fixed offsets, in tiles that stay in L1;
// - the rows of w1 are split between threads, and one of them copies in the next
//   mini-batch while the calling thread finishes the step (the output layer);
// - when other work holds the cores, so that the threads keep waiting for each other, the
//   rest of the epoch runs on one thread (see run_epoch).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// 8 floats: one AVX2 register (two SSE ones). Measured on an AVX-512 core too, 8 lanes
// ran this kernel faster than 16.
constexpr int LANES = 8;
// GCC/Clang vector extension.
typedef float vfloat __attribute__((vector_size(LANES * sizeof(float))));
typedef float vfloat_unaligned __attribute__((vector_size(LANES * sizeof(float)), aligned(4)));
typedef float vhalf __attribute__((vector_size(LANES * sizeof(float) / 2)));

// The sum of v's lanes: one halving step, then a short tree over the rest.
inline float lane_sum(const vfloat& v) {
  vhalf lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  const vhalf h = lo + hi;
  float s0 = 0.0f, s1 = 0.0f;
  for (int l = 0; l < LANES / 2; l += 2) {
    s0 += h[l];
    s1 += h[l + 1];
  }
  return s0 + s1;
}

// e^x for float x, to about 1 ulp, in plain arithmetic the compiler can vectorise (a loop
// calling std::exp cannot be): x = n ln 2 + r with |r| <= ln(2)/2, e^r by its Taylor series
// to r^7 (truncation error below 2^-27), then 2^n put into the exponent bits.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = std::nearbyint(x * 1.44269504f);
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;  // ln 2 in two parts
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// a[k] = σ(a[k]) = 1 / (1 + e^{-a[k]}) for k < n.
inline void sigmoid_all(float* __restrict a, int64_t n) {
  for (int64_t k = 0; k < n; ++k) a[k] = 1.0f / (1.0f + exp_approx(-a[k]));
}

// Copies the M rows x[rows[i]] (each n_in floats) into `out`, chunk-interleaved:
// out[(c * M + i) * LANES + l] = x[rows[i]][c * LANES + l], zero past n_in.
void interleave(const float* x, int64_t n_in, const int32_t* rows, int M, int chunks,
                vfloat* out) {
  const int full = static_cast<int>(n_in / LANES);
  for (int i = 0; i < M; ++i) {
    const float* src = x + static_cast<int64_t>(rows[i]) * n_in;
    for (int c = 0; c < full; ++c)
      out[c * M + i] = *reinterpret_cast<const vfloat_unaligned*>(src + c * LANES);
    if (full < chunks) {
      float* dst = reinterpret_cast<float*>(out + full * M + i);
      for (int l = 0; l < LANES; ++l) {
        const int64_t k = static_cast<int64_t>(full) * LANES + l;
        dst[l] = k < n_in ? src[k] : 0.0f;
      }
    }
  }
}

// Asks the cache for the next mini-batch's rows (random rows of x are far apart in memory,
// so each would otherwise wait on main memory when it is interleaved).
inline void prefetch_rows(const float* x, int64_t n_in, const int32_t* rows, int m) {
  for (int i = 0; i < m; ++i) {
    const char* row = reinterpret_cast<const char*>(x + static_cast<int64_t>(rows[i]) * n_in);
    for (int64_t b = 0; b < n_in * static_cast<int64_t>(sizeof(float)); b += 64)
      __builtin_prefetch(row + b, 0, 1);
  }
}

// For rows r = 0..R-1 of w (stride `stride`, `chunks` vectors each): w_r -= sum_i
// coef[r][i] * xprev_i, then acc[r][i] = <w_r, xcur_i> as lane-wise partial sums.
template <int M, int R>
inline void rows_update_and_dot(float* __restrict w, int64_t stride, int c0, int c1, float decay,
                                const vfloat* __restrict xprev, const float* coef,
                                const vfloat* __restrict xcur, vfloat (*acc)[M]) {
  vfloat a[R][M];
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < M; ++i) a[r][i] = vfloat{};
  for (int c = c0; c < c1; ++c) {
    const vfloat* xp = xprev + c * M;
    const vfloat* xc = xcur + c * M;
    vfloat wv[R];
    for (int r = 0; r < R; ++r) {
      // Two partial sums per row keep the dependent multiply-adds short.
      vfloat even = vfloat{}, odd = vfloat{};
      for (int i = 0; i < M; i += 2) even += coef[r * M + i] * xp[i];
      for (int i = 1; i < M; i += 2) odd += coef[r * M + i] * xp[i];
      vfloat* wp = reinterpret_cast<vfloat*>(w + r * stride) + c;
      wv[r] = *wp * decay - (even + odd);
      *wp = wv[r];
    }
    for (int i = 0; i < M; ++i) {
      const vfloat xi = xc[i];
      for (int r = 0; r < R; ++r) a[r][i] += wv[r] * xi;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < M; ++i) acc[r][i] = a[r][i];
}

struct Net {
  int64_t n_in, hidden, n_out, chunks;
  std::vector<vfloat> w1;  // hidden rows of `chunks` vectors, zero-padded past n_in
  float *b1, *w2, *b2;
};

// Chunks of columns per tile: the tile's 2M rows of x (2 * TILE * M * 64 bytes) stay in
// L1 while every row of w1 passes over them.
constexpr int TILE = 32;

// One pass over rows [j0, j1) of w1: applies the pending update (coef, rows xprev) and
// computes z1[i][j] = <w1_j, xcur_i>.
template <int M>
void layer1_pass(Net& net, int64_t j0, int64_t j1, float decay, const vfloat* xprev,
                 const float* coef, const vfloat* xcur, float* z1) {
  float* w = reinterpret_cast<float*>(net.w1.data());
  const int64_t stride = net.chunks * LANES, H = net.hidden;
  for (int i = 0; i < M; ++i)
    for (int64_t j = j0; j < j1; ++j) z1[i * H + j] = 0.0f;
  vfloat acc[1][M];
  for (int c0 = 0; c0 < net.chunks; c0 += TILE) {
    const int c1 = std::min<int>(c0 + TILE, static_cast<int>(net.chunks));
    for (int64_t j = j0; j < j1; ++j) {
      rows_update_and_dot<M, 1>(w + j * stride, stride, c0, c1, decay, xprev, coef + j * M, xcur,
                                acc);
      for (int i = 0; i < M; ++i) z1[i * H + j] += lane_sum(acc[0][i]);
    }
  }
}

// The rest of step s once z1 is known: the hidden activations, the output layer, BP1-BP3,
// the updates of b1, w2 and b2, and coef[j * M + i] = (eta/m) delta1[i][j], the update of
// w1 that the next layer1_pass applies (BP4).
struct SmallLayers {
  const int M;
  const bool cross_entropy;  // else the quadratic cost
  std::vector<float> a1, d2, d1, gw;
  SmallLayers(const Net& net, int m, bool cross_entropy)
      : M(m), cross_entropy(cross_entropy), a1(M * net.hidden), d2(M * net.n_out),
        d1(M * net.hidden), gw(net.hidden) {}

  void step(Net& net, const float* z1, const int32_t* labels, const int32_t* rows, float scale,
            float decay, float* coef) {
    const int64_t H = net.hidden, O = net.n_out;
    for (int i = 0; i < M; ++i)
      for (int64_t j = 0; j < H; ++j) a1[i * H + j] = z1[i * H + j] + net.b1[j];
    sigmoid_all(a1.data(), M * H);
    float* out = d2.data();
    for (int i = 0; i < M; ++i)
      for (int64_t o = 0; o < O; ++o) {
        float z = net.b2[o];
        for (int64_t j = 0; j < H; ++j) z += net.w2[o * H + j] * a1[i * H + j];
        out[i * O + o] = z;
      }
    sigmoid_all(out, M * O);
    for (int i = 0; i < M; ++i)
      for (int64_t o = 0; o < O; ++o) {
        const float target = labels[rows[i]] == o ? 1.0f : 0.0f;
        const float a = out[i * O + o];
        // BP1: (a - y) sigma'(z) for the quadratic cost; cross-entropy cancels sigma'(z).
        d2[i * O + o] = cross_entropy ? a - target : (a - target) * a * (1.0f - a);
      }
    for (int i = 0; i < M; ++i) {
      float* d = &d1[i * H];
      for (int64_t j = 0; j < H; ++j) d[j] = 0.0f;
      for (int64_t o = 0; o < O; ++o) {
        const float e = d2[i * O + o];
        for (int64_t j = 0; j < H; ++j) d[j] += e * net.w2[o * H + j];
      }
      for (int64_t j = 0; j < H; ++j) d[j] *= a1[i * H + j] * (1.0f - a1[i * H + j]);  // BP2
    }
    for (int64_t o = 0; o < O; ++o) {  // BP3 and BP4 for the output layer
      float gb = 0.0f;
      std::fill(gw.begin(), gw.end(), 0.0f);
      for (int i = 0; i < M; ++i) {
        const float e = d2[i * O + o];
        gb += e;
        for (int64_t j = 0; j < H; ++j) gw[j] += e * a1[i * H + j];
      }
      net.b2[o] -= scale * gb;
      for (int64_t j = 0; j < H; ++j)
        net.w2[o * H + j] = net.w2[o * H + j] * decay - scale * gw[j];
    }
    for (int64_t j = 0; j < H; ++j) {  // BP3 for the hidden layer; w1's update is pending
      float gb = 0.0f;
      for (int i = 0; i < M; ++i) {
        gb += d1[i * H + j];
        coef[j * M + i] = scale * d1[i * H + j];
      }
      net.b1[j] -= scale * gb;
    }
  }
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A reusable barrier for a few threads that each own a core: spins briefly (a few µs,
// longer than a step's waits when every thread has its core), then yields, so that threads
// that end up sharing a core (another process took one) still make progress: with 4,000
// spins that case ran an epoch 6x slower than with 300. wait() returns the time it spent
// yielding (zero when the others arrive within the spins).
using Clock = std::chrono::steady_clock;

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  Clock::duration wait() {
    const int generation = generation_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return Clock::duration::zero();
    }
    Clock::time_point start;
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins < 300) {
        cpu_relax();
      } else {
        if (spins == 300) start = Clock::now();
        std::this_thread::yield();
      }
    }
    return start == Clock::time_point{} ? Clock::duration::zero() : Clock::now() - start;
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> generation_{0};
};

// All the steps of the epoch for mini-batch size M, on `threads` threads. Pass s applies
// step s-1's update to w1 and computes step s's z1 (rows of w1 split between the threads);
// then the calling thread finishes step s while the others copy in mini-batch s+1. The
// last pass only applies the update. The split changes no arithmetic: every thread count
// gives the same bits.
//
// With `watch`, the calling thread adds up the time it spends yielding at the barrier. Once
// that is more than a third of the time since the start (judged after the first 10 ms, so
// that one stall of a millisecond does not count), another process holds a core that a
// thread needs, and waits last scheduler slices: on 2 busy cores, two threads ran an
// epoch up to 30x slower than one; with one core busy, 2-4x. Then it makes the next pass
// the last and returns early: it returns the steps done; the caller runs the rest on one
// thread.
// 0 < `stop_after` < steps does the same after that many steps, whatever the waits (for
// tests).
// Running the steps in two calls gives the same updates as in one: each call ends by
// applying its last step's update, and the next starts from those weights.

using Layer1Fn = void (*)(Net&, int64_t, int64_t, float, const vfloat*, const float*,
                          const vfloat*, float*);

int64_t run_epoch(Net& net, Layer1Fn layer1_pass, int M, const float* x, const int32_t* y,
                  const int32_t* idx, int64_t steps, float eta, float decay, int threads,
                  bool watch, int64_t stop_after, bool cross_entropy) {
  const int64_t H = net.hidden;
  const int chunks = static_cast<int>(net.chunks);
  const float scale = eta / M;
  std::vector<vfloat> buffers[2] = {std::vector<vfloat>(net.chunks * M),
                                    std::vector<vfloat>(net.chunks * M)};
  std::vector<float> z1(M * H), coef(H * M, 0.0f);
  SmallLayers small(net, M, cross_entropy);
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, H)));
  Barrier barrier(threads);
  // The pass that only applies the last update: `steps`, or earlier if `watch` stops early.
  // Only the calling thread writes it, before a barrier; the others read it after one.
  std::atomic<int64_t> end{steps};
  // x rows of step s live in buffers[s % 2]; the pass before step 0 has coef = 0.
  auto batch = [&](int64_t s) { return buffers[s % 2].data(); };
  auto fill = [&](int64_t s) {
    if (s >= steps) return;
    interleave(x, net.n_in, idx + s * M, M, chunks, batch(s));
    if (s + 1 < steps) prefetch_rows(x, net.n_in, idx + (s + 1) * M, M);
  };
  auto rows_of = [&](int t, int64_t* j0, int64_t* j1) {
    *j0 = H * t / threads;
    *j1 = H * (t + 1) / threads;
  };
  auto worker = [&](int t) {
    int64_t j0, j1;
    rows_of(t, &j0, &j1);
    for (int64_t s = 0;; ++s) {
      barrier.wait();  // coef and mini-batch s are ready
      const int64_t last = end.load(std::memory_order_relaxed);
      const vfloat* prev = s > 0 ? batch(s - 1) : batch(0);
      layer1_pass(net, j0, j1, s > 0 ? decay : 1.0f, prev, coef.data(),
                  s < last ? batch(s) : prev, z1.data());
      barrier.wait();  // z1 is complete; batch(s - 1) is free
      if (s == last) break;
      if (t == 1) fill(s + 1);  // unused if the next pass is the last: harmless
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  int64_t j0, j1;
  rows_of(0, &j0, &j1);
  fill(0);
  const Clock::time_point start = Clock::now();
  Clock::duration waited{};
  for (int64_t s = 0;; ++s) {
    waited += barrier.wait();
    const int64_t last = end.load(std::memory_order_relaxed);
    const vfloat* prev = s > 0 ? batch(s - 1) : batch(0);
    layer1_pass(net, j0, j1, s > 0 ? decay : 1.0f, prev, coef.data(),
                s < last ? batch(s) : prev, z1.data());
    waited += barrier.wait();
    if (s == last) break;
    if (threads == 1) fill(s + 1);
    small.step(net, z1.data(), y, idx + s * M, scale, decay, coef.data());
    if (s + 1 < last && s + 1 == stop_after) end.store(s + 1, std::memory_order_relaxed);
    if (watch && s + 1 < last) {
      const Clock::duration elapsed = Clock::now() - start;
      if (elapsed > std::chrono::milliseconds(10) && 3 * waited > elapsed)
        end.store(s + 1, std::memory_order_relaxed);
    }
  }
  for (auto& thread : pool) thread.join();
  return end.load(std::memory_order_relaxed);
}

// layer1_pass for mini-batch size m (compiled for each m, so that its loops over the
// mini-batch unroll), or null if m > 32.
template <int M = 1>
Layer1Fn pick(int64_t m) {
  if constexpr (M > 32) {
    return nullptr;
  } else {
    return m == M ? &layer1_pass<M> : pick<M + 1>(m);
  }
}

ffi::Error SgdEpochImpl(ffi::Buffer<ffi::F32> w1_in, ffi::Buffer<ffi::F32> b1_in,
                        ffi::Buffer<ffi::F32> w2_in, ffi::Buffer<ffi::F32> b2_in,
                        ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::S32> y,
                        ffi::Buffer<ffi::S32> batches, ffi::Buffer<ffi::F32> eta,
                        ffi::Buffer<ffi::F32> decay,
                        ffi::ResultBuffer<ffi::F32> w1, ffi::ResultBuffer<ffi::F32> b1,
                        ffi::ResultBuffer<ffi::F32> w2, ffi::ResultBuffer<ffi::F32> b2,
                        ffi::Result<ffi::BufferR0<ffi::S32>> threads_used, int64_t threads,
                        bool watch, int64_t stop_after, bool cross_entropy) {
  Net net;
  net.hidden = w1_in.dimensions()[0];
  net.n_in = w1_in.dimensions()[1];
  net.n_out = w2_in.dimensions()[0];
  net.chunks = (net.n_in + LANES - 1) / LANES;
  const int64_t n = x.dimensions()[0], steps = batches.dimensions()[0];
  const int64_t m = batches.dimensions()[1];
  if (x.dimensions()[1] != net.n_in || w2_in.dimensions()[1] != net.hidden)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "nnjax sgd epoch: shape mismatch");
  const Layer1Fn layer1 = pick(m);
  if (layer1 == nullptr)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "nnjax sgd epoch: mini-batch > 32");
  const int32_t* idx = batches.typed_data();
  for (int64_t k = 0; k < steps * m; ++k)
    if (idx[k] < 0 || idx[k] >= n)
      return ffi::Error(ffi::ErrorCode::kInvalidArgument, "nnjax sgd epoch: bad index");

  net.w1.assign(net.hidden * net.chunks, vfloat{});
  for (int64_t j = 0; j < net.hidden; ++j)
    std::memcpy(net.w1.data() + j * net.chunks, w1_in.typed_data() + j * net.n_in,
                sizeof(float) * net.n_in);
  net.b1 = b1->typed_data();
  net.w2 = w2->typed_data();
  net.b2 = b2->typed_data();
  std::memcpy(net.b1, b1_in.typed_data(), sizeof(float) * net.hidden);
  std::memcpy(net.w2, w2_in.typed_data(), sizeof(float) * net.n_out * net.hidden);
  std::memcpy(net.b2, b2_in.typed_data(), sizeof(float) * net.n_out);

  const int t = static_cast<int>(std::max<int64_t>(1, std::min(threads, net.hidden)));
  const int64_t done = run_epoch(net, layer1, static_cast<int>(m), x.typed_data(),
                                 y.typed_data(), idx, steps, eta.typed_data()[0],
                                 decay.typed_data()[0], t, watch && t > 1, stop_after,
                                 cross_entropy);
  if (done < steps)
    run_epoch(net, layer1, static_cast<int>(m), x.typed_data(), y.typed_data(),
              idx + done * m, steps - done, eta.typed_data()[0], decay.typed_data()[0], 1,
              false, -1, cross_entropy);
  threads_used->typed_data()[0] = done < steps ? 1 : t;

  for (int64_t j = 0; j < net.hidden; ++j)
    std::memcpy(w1->typed_data() + j * net.n_in, net.w1.data() + j * net.chunks,
                sizeof(float) * net.n_in);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(NnjaxSgdEpoch, SgdEpochImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w1 (hidden, n_in)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b1 (hidden,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w2 (n_out, hidden)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b2 (n_out,)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x (n, n_in)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // y (n,)
                                  .Arg<ffi::Buffer<ffi::S32>>()  // batches (steps, m)
                                  .Arg<ffi::Buffer<ffi::F32>>()  // eta ()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // decay () of the weights
                                  .Ret<ffi::Buffer<ffi::F32>>()  // w1
                                  .Ret<ffi::Buffer<ffi::F32>>()  // b1
                                  .Ret<ffi::Buffer<ffi::F32>>()  // w2
                                  .Ret<ffi::Buffer<ffi::F32>>()  // b2
                                  .Ret<ffi::BufferR0<ffi::S32>>()  // threads at the end
                                  .Attr<int64_t>("threads")
                                  .Attr<bool>("watch")
                                  .Attr<int64_t>("stop_after")
                                  .Attr<bool>("cross_entropy"));
