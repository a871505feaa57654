// Device helpers shared by the asrec CUDA kernels: loads in float32, warp sums, the
// layout of one thread block per sequence.
//
// The kernel headers include only this file, so that tests/cuda_emulation can compile
// them for the host, over an emulated thread block, where no GPU exists.
#pragma once

#if defined(__CUDACC__)
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime.h>
#endif

#include "philox.h"

namespace asrec {

constexpr int kWarpSize = 32;
constexpr int kBlockThreads = 256;  // one block per sequence: 8 warps
constexpr int kBlockWarps = kBlockThreads / kWarpSize;

template <typename T>
__device__ __forceinline__ float to_float(T value) {
  return static_cast<float>(value);
}

// Sum over the 32 lanes of a warp, every lane gets the total. A fixed butterfly: the
// same inputs give the same bits on every run (deterministic).
__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// alpha^n for integer n >= 0 from log(alpha); alpha^0 = 1 even when alpha underflowed to 0.
__device__ __forceinline__ float power_from_log(int n, float log_alpha) {
  return n == 0 ? 1.0f : expf(static_cast<float>(n) * log_alpha);
}

__device__ __forceinline__ float sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

}  // namespace asrec
