// The adaptive frequency filter (SPEC section 3) on CUDA: host-side launchers.
//
// S = batch * groups sequences of shape (N, H), K = N // 2 + 1 half-spectrum bins. The
// keep-mask between the two passes (lower median per sequence, linear quantile over each
// group's batch, strict >) is computed by the caller on the device from the energies
// (asrec.reference.frequency_filter.frequency_keep_mask, the reference's own code).
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>

namespace asrec {

struct FilterSettings {
  float eps;
  const int64_t* rng;  // (seed, offset) on the device; read by the kernels only when dropping
  float dropout_p;
  bool dropping;
};

// Shared memory of each kernel for one (seq_len, hidden) sequence, in bytes.
size_t frequency_energy_shared_bytes(int64_t seq_len, int64_t hidden);
size_t frequency_filter_fwd_shared_bytes(int64_t seq_len, int64_t hidden);
size_t frequency_filter_bwd_shared_bytes(int64_t seq_len, int64_t hidden);

// y (S, N, H) contiguous -> energy (S, K) float32: sum_h |Y[k, h]|^2.
void launch_frequency_energy(const at::Tensor& y, at::Tensor& energy);

// y (S, N, H); keep (S, K) float32 0/1; norm_weight, norm_bias (H,) float32 -> out (S, N, H), y's dtype:
// LN(drop(irfft(keep * rfft(y))) + y).
void launch_frequency_filter_fwd(const at::Tensor& y, const at::Tensor& keep, const at::Tensor& norm_weight,
                                 const at::Tensor& norm_bias, const FilterSettings& settings, at::Tensor& out);

// grad (S, N, H) float32 -> dy (S, N, H) float32 and parts (2, S, H) float32, per-sequence
// partial sums of the LayerNorm weight and bias gradients. dfiltered: (S, N, H) float32
// scratch for the dropped gradient of the inverse transform (may alias dy when not dropping).
void launch_frequency_filter_bwd(const at::Tensor& y, const at::Tensor& grad, const at::Tensor& keep,
                                 const at::Tensor& norm_weight, const FilterSettings& settings, at::Tensor& dy,
                                 at::Tensor& dfiltered, at::Tensor& parts);

}  // namespace asrec
