// Counter-based dropout bits: Philox4x32-10, first output word, as Triton's tl.rand draws it.
//
// The keep bit of element `offset` is a pure function of (seed, offset), so a backward
// kernel regenerates its forward's mask instead of storing it. The arithmetic follows
// Triton's `tl.rand(seed, offset)` (key = seed split lo/hi, counter = (offset lo, offset
// hi, 0, 0), ten rounds, the first word mapped to [0, 1) through a sign-folded int32), so
// the CUDA and Triton kernels draw the same mask for the same seed and element offsets.
// Plain C++ on the host (tests/ops/test_cuda_kernels_emulated.py compiles it with the system
// compiler and compares it with Triton), `__host__ __device__` under nvcc.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ASREC_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define ASREC_HOST_DEVICE inline
#endif

namespace asrec {

ASREC_HOST_DEVICE uint32_t philox_mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// The first 32-bit word of Philox4x32-10 at counter (offset, 0, 0) under key `seed`.
ASREC_HOST_DEVICE uint32_t philox_first_word(uint64_t seed, uint64_t offset) {
  constexpr uint32_t kRoundA = 0xD2511F53u, kRoundB = 0xCD9E8D57u;
  constexpr uint32_t kKeyA = 0x9E3779B9u, kKeyB = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(offset), c1 = static_cast<uint32_t>(offset >> 32), c2 = 0u, c3 = 0u;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    const uint32_t previous_c0 = c0, previous_c2 = c2;
    c0 = philox_mulhi(kRoundB, previous_c2) ^ c1 ^ k0;
    c2 = philox_mulhi(kRoundA, previous_c0) ^ c3 ^ k1;
    c1 = kRoundB * previous_c2;
    c3 = kRoundA * previous_c0;
    k0 += kKeyA;
    k1 += kKeyB;
  }
  return c0;
}

// [0, 1) from 32 random bits: the int32 reading folded to non-negative (~x == -x - 1, with
// no signed overflow at INT32_MIN), times the largest float scale that keeps it below 1.
ASREC_HOST_DEVICE float uniform_from_bits(uint32_t bits) {
  const int32_t value = static_cast<int32_t>(bits);
  const int32_t folded = value < 0 ? ~value : value;
  return static_cast<float>(folded) * 4.6566127342e-10f;
}

// Inverted-dropout factor of element `offset`: keep_scale (1 / (1 - p)) where kept, 0 where dropped.
ASREC_HOST_DEVICE float dropout_factor(uint64_t seed, uint64_t offset, float p, float keep_scale) {
  return uniform_from_bits(philox_first_word(seed, offset)) >= p ? keep_scale : 0.0f;
}

// The same under a call's Philox state `rng` = (seed, offset), read from device memory (a
// (2,) int64 tensor drawn on the device per call, asrec.ops._common.dropout_rng): element
// `element` draws at counter offset + element, as the Triton kernels' _dropout_scale does.
// Read through a pointer, never passed by value, so a launch captured in a CUDA graph
// reads the state the tensor holds at each replay.
ASREC_HOST_DEVICE float dropout_factor(const int64_t* rng, uint64_t element, float p, float keep_scale) {
  return dropout_factor(static_cast<uint64_t>(rng[0]), static_cast<uint64_t>(rng[1]) + element, p, keep_scale);
}

}  // namespace asrec
