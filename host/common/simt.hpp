#pragma once
// The SIMT lane layer: the few warp operations the warp-cooperative kernels are written against
// (host/align/banded_warp.hpp, host/call/pair_hmm_warp.hpp), with two implementations chosen at
// compile time:
//  * device (nvcc's device pass, __CUDA_ARCH__): one lane per thread; Lanes<T> holds this thread's
//    value, each() runs the body once for this lane, shuffles/reductions are the warp intrinsics;
//  * host (g++ or nvcc's host pass): a CPU emulation that runs the 32 lanes of a warp in lock-step:
//    Lanes<T> holds all 32 values, each() runs the body for lane 0..31 before anything else happens,
//    and a shuffle reads every lane's value as it was before the shuffle (exactly what __shfl_sync
//    returns). DPX operations are emulated with the same integer results.
// A kernel written as phases of each() separated by collective operations therefore computes the same
// values on both, which is what lets CI (no GPU) prove the device algorithm bit-identical with the
// scalar recurrences: the test runs this very source through the emulation.
//
// Rules for kernel code (what makes the two implementations agree):
//  * every lane of the warp calls every collective operation, the same number of times, with the
//    same template arguments (loops around collectives have warp-uniform bounds: use warp_max);
//  * inside each(), a lane reads and writes only element [l] of Lanes values (and memory it owns);
//    lanes talk to each other only through the collectives;
//  * memory written by one lane and read by another in a later phase needs syncwarp() in between
//    (the emulation is in lock-step anyway; the device needs the fence).
// Plain C++: no CUDA header is included (the intrinsics are nvcc builtins).
#include <cstddef>
#include <cstdint>
#if !defined(__CUDA_ARCH__)
#include <vector>
#endif

#include "host/common/hd.hpp"

#if defined(__CUDACC__)
#define OMICSD_UNROLL _Pragma("unroll")
#else
#define OMICSD_UNROLL _Pragma("GCC unroll 16")
#endif

namespace omicsd::simt {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;

#if defined(__CUDA_ARCH__)

// This thread's lane in its warp (blocks are whole warps of a 1-D launch).
__device__ __forceinline__ int lane_id() { return int(threadIdx.x) & (kWarpSize - 1); }

template <class T>
struct Lanes {
  T v;
  __device__ __forceinline__ T& operator[](int) { return v; }
  __device__ __forceinline__ const T& operator[](int) const { return v; }
};

template <class F>
__device__ __forceinline__ void each(F&& f) {
  f(lane_id());
}

__device__ __forceinline__ void syncwarp() { __syncwarp(kFullMask); }

// Lane l of each group of W lanes receives x from lane (l - 1) mod W of its group.
template <int W, class T>
__device__ __forceinline__ Lanes<T> shfl_rotate_up(const Lanes<T>& x) {
  return {__shfl_sync(kFullMask, x.v, (lane_id() + W - 1) & (W - 1), W)};
}
// Lane l of each group of W lanes receives x from lane src[l] (0..W-1) of its group.
template <int W, class T>
__device__ __forceinline__ Lanes<T> shfl_idx(const Lanes<T>& x, const Lanes<int>& src) {
  return {__shfl_sync(kFullMask, x.v, src.v, W)};
}
// Butterfly inside each group of W lanes: lane l receives x from lane l ^ mask (mask < W).
template <int W, class T>
__device__ __forceinline__ Lanes<T> shfl_xor(const Lanes<T>& x, int mask) {
  return {__shfl_xor_sync(kFullMask, x.v, mask, W)};
}
// The largest value over all 32 lanes, returned to every lane (warp-uniform).
__device__ __forceinline__ int32_t warp_max(const Lanes<int32_t>& x) {
  return __reduce_max_sync(kFullMask, x.v);
}

// DPX (hardware on sm_90, emulated by the CUDA library elsewhere).
__device__ __forceinline__ int32_t vimax3_s32(int32_t a, int32_t b, int32_t c) {
  return __vimax3_s32(a, b, c);
}
__device__ __forceinline__ int32_t viaddmax_s32(int32_t a, int32_t b, int32_t c) {
  return __viaddmax_s32(a, b, c);
}
__device__ __forceinline__ uint32_t vimax3_s16x2(uint32_t a, uint32_t b, uint32_t c) {
  return __vimax3_s16x2(a, b, c);
}
__device__ __forceinline__ uint32_t viaddmax_s16x2(uint32_t a, uint32_t b, uint32_t c) {
  return __viaddmax_s16x2(a, b, c);
}

#else  // the CPU emulation

template <class T>
struct Lanes {
  T v[kWarpSize];
  T& operator[](int l) { return v[l]; }
  const T& operator[](int l) const { return v[l]; }
};

// Runs the body for every lane, in lane order, before the next operation: lock-step.
template <class F>
inline void each(F&& f) {
  for (int l = 0; l < kWarpSize; ++l) f(l);
}

inline void syncwarp() {}

template <int W, class T>
inline Lanes<T> shfl_rotate_up(const Lanes<T>& x) {
  static_assert(W >= 1 && W <= kWarpSize && (W & (W - 1)) == 0, "group width: a power of two <= 32");
  Lanes<T> r;
  for (int l = 0; l < kWarpSize; ++l) r[l] = x[(l & ~(W - 1)) | ((l + W - 1) & (W - 1))];
  return r;
}
template <int W, class T>
inline Lanes<T> shfl_idx(const Lanes<T>& x, const Lanes<int>& src) {
  static_assert(W >= 1 && W <= kWarpSize && (W & (W - 1)) == 0, "group width: a power of two <= 32");
  Lanes<T> r;
  // __shfl_sync takes the source lane modulo the width.
  for (int l = 0; l < kWarpSize; ++l) r[l] = x[(l & ~(W - 1)) | (src[l] & (W - 1))];
  return r;
}
template <int W, class T>
inline Lanes<T> shfl_xor(const Lanes<T>& x, int mask) {
  static_assert(W >= 1 && W <= kWarpSize && (W & (W - 1)) == 0, "group width: a power of two <= 32");
  Lanes<T> r;
  // A source outside the lane's group reads the lane's own value, as __shfl_xor_sync does.
  for (int l = 0; l < kWarpSize; ++l) {
    const int s = l ^ mask;
    r[l] = (s & ~(W - 1)) == (l & ~(W - 1)) ? x[s] : x[l];
  }
  return r;
}
inline int32_t warp_max(const Lanes<int32_t>& x) {
  int32_t m = x[0];
  for (int l = 1; l < kWarpSize; ++l) m = x[l] > m ? x[l] : m;
  return m;
}

// DPX emulation, exact: the 32-bit forms add with two's-complement wrap-around as the hardware does
// (kernels keep their values far from the limits anyway); the 16x2 forms work on each signed half.
inline int32_t vimax3_s32(int32_t a, int32_t b, int32_t c) {
  const int32_t m = a > b ? a : b;
  return m > c ? m : c;
}
inline int32_t viaddmax_s32(int32_t a, int32_t b, int32_t c) {
  const int32_t s = int32_t(uint32_t(a) + uint32_t(b));
  return s > c ? s : c;
}
namespace detail {
inline int16_t half(uint32_t x, int k) { return int16_t(uint16_t(x >> (16 * k))); }
inline uint32_t pack(int16_t lo, int16_t hi) {
  return uint32_t(uint16_t(lo)) | (uint32_t(uint16_t(hi)) << 16);
}
}  // namespace detail
inline uint32_t vimax3_s16x2(uint32_t a, uint32_t b, uint32_t c) {
  int16_t r[2];
  for (int k = 0; k < 2; ++k) {
    const int16_t x = detail::half(a, k), y = detail::half(b, k), z = detail::half(c, k);
    const int16_t m = x > y ? x : y;
    r[k] = m > z ? m : z;
  }
  return detail::pack(r[0], r[1]);
}
inline uint32_t viaddmax_s16x2(uint32_t a, uint32_t b, uint32_t c) {
  int16_t r[2];
  for (int k = 0; k < 2; ++k) {
    const int16_t s = int16_t(uint16_t(uint16_t(detail::half(a, k)) + uint16_t(detail::half(b, k))));
    const int16_t z = detail::half(c, k);
    r[k] = s > z ? s : z;
  }
  return detail::pack(r[0], r[1]);
}

// How the lane-vector CPU backends launch emulated warps, as the CUDA backends launch kernels: `order`
// lists the items grouped by shape (shape_of(item); 0: an item the scalar code runs alone), and each
// unit is one warp's worth of consecutive items of one shape (items_per_warp(shape) of them), or a
// single item of shape 0.
struct WarpUnit {
  size_t begin, end;  // positions in `order`
  int32_t shape;
};
template <class ShapeOf, class ItemsPerWarp>
std::vector<WarpUnit> warp_units(const std::vector<uint32_t>& order, ShapeOf&& shape_of,
                                 ItemsPerWarp&& items_per_warp) {
  std::vector<WarpUnit> units;
  for (size_t a = 0; a < order.size();) {
    const int32_t shape = shape_of(order[a]);
    size_t b = a;
    while (b < order.size() && shape_of(order[b]) == shape) ++b;
    const size_t per = shape == 0 ? 1 : size_t(items_per_warp(shape));
    for (size_t u = a; u < b; u += per) units.push_back({u, u + per < b ? u + per : b, shape});
    a = b;
  }
  return units;
}

#endif

}  // namespace omicsd::simt
