// The fused input stage (SPEC sections 1-2) on CUDA: host-side launchers.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>

namespace asrec {

struct InputStageSettings {
  float eps;
  const int64_t* rng;  // (seed, offset) on the device; read by the kernels only when dropping
  float dropout_p;
  bool dropping;
  float inv_sqrt_len;  // 1 / sqrt(L), L = next_fast_len(2N - 1)
  float mix;           // the config's A
};

// Tensors as checked and converted by input_stage.cpp: item_seq (B, N) int64; item_weight
// (V, H) float32/bfloat16/float16; position_rows (N, H), norm_weight, norm_bias,
// init_level, smoothed_scale (H,), smoothing_logit (1,), all float32; all contiguous.
struct InputStageTensors {
  at::Tensor item_seq, item_weight, position_rows, norm_weight, norm_bias, smoothing_logit, init_level,
      smoothed_scale;
};

// Shared memory of the backward kernel (the forward needs none) for one sequence, in bytes.
size_t input_stage_bwd_shared_bytes(int64_t hidden);

// -> out (B, N, H) float32: the smoothed embeddings.
void launch_input_stage_fwd(const InputStageTensors& tensors, const InputStageSettings& settings, at::Tensor& out);

// grad (B, N, H) float32 -> dembedded (B, N, H) float32, the gradient of the embedding sum;
// parts (5, B, H) float32, per-sequence partial sums of the gradients of alpha, init_level,
// smoothed_scale, the LayerNorm weight and bias.
void launch_input_stage_bwd(const InputStageTensors& tensors, const at::Tensor& grad,
                            const InputStageSettings& settings, at::Tensor& dembedded, at::Tensor& parts);

}  // namespace asrec
