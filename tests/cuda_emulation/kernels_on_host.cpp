// The csrc/ kernels compiled for the host over block_emulator.h, float32 inputs, with a C
// ABI for ctypes (tests/ops/test_cuda_kernels_emulated.py). Each entry point fills the
// kernel's argument struct as its launcher in csrc/ does and launches the same grid.
#include "block_emulator.h"

#include "frequency_filter/frequency_filter_kernel.cuh"
#include "input_stage/input_stage_kernel.cuh"

using namespace asrec;

namespace {

InputStageArgs<float> input_stage_args(const int64_t* item_seq, const float* item_weight, const float* position_rows,
                                       const float* norm_weight, const float* norm_bias, const float* logit,
                                       const float* level, const float* scale, int batch, int seq_len, int hidden,
                                       float eps, const int64_t* rng, float dropout_p, int dropping, float inv_sqrt_len,
                                       float mix) {
  InputStageArgs<float> args{};
  args.item_seq = item_seq;
  args.item_weight = item_weight;
  args.position_rows = position_rows;
  args.norm_weight = norm_weight;
  args.norm_bias = norm_bias;
  args.smoothing_logit = logit;
  args.init_level = level;
  args.smoothed_scale = scale;
  args.batch = batch;
  args.seq_len = seq_len;
  args.hidden = hidden;
  args.eps = eps;
  args.rng = rng;
  args.dropout_p = dropout_p;
  args.dropping = dropping != 0;
  args.inv_sqrt_len = inv_sqrt_len;
  args.mix = mix;
  return args;
}

FilterArgs<float> filter_args(const float* y, int sequences, int seq_len, int hidden, float eps, const int64_t* rng,
                              float dropout_p, int dropping) {
  FilterArgs<float> args{};
  args.y = y;
  args.sequences = sequences;
  args.seq_len = seq_len;
  args.hidden = hidden;
  args.bins = seq_len / 2 + 1;
  args.eps = eps;
  args.rng = rng;
  args.dropout_p = dropout_p;
  args.dropping = dropping != 0;
  return args;
}

}  // namespace

extern "C" {

float emulated_dropout_factor(uint64_t seed, uint64_t offset, float p) {
  return dropout_factor(seed, offset, p, 1.0f / (1.0f - p));
}

// The kernels' form: the Philox state (seed, offset) read through a pointer, element `element`.
float emulated_dropout_factor_at(const int64_t* rng, uint64_t element, float p) {
  return dropout_factor(rng, element, p, 1.0f / (1.0f - p));
}

void emulated_input_stage_fwd(const int64_t* item_seq, const float* item_weight, const float* position_rows,
                              const float* norm_weight, const float* norm_bias, const float* logit,
                              const float* level, const float* scale, float* out, int batch, int seq_len, int hidden,
                              float eps, const int64_t* rng, float dropout_p, int dropping, float inv_sqrt_len,
                              float mix) {
  auto args = input_stage_args(item_seq, item_weight, position_rows, norm_weight, norm_bias, logit, level, scale,
                               batch, seq_len, hidden, eps, rng, dropout_p, dropping, inv_sqrt_len, mix);
  args.rows = out;
  emulator::launch(input_stage_fwd_kernel<float>, batch, kBlockThreads, args);
}

void emulated_input_stage_bwd(const int64_t* item_seq, const float* item_weight, const float* position_rows,
                              const float* norm_weight, const float* norm_bias, const float* logit,
                              const float* level, const float* scale, const float* grad, float* dembedded,
                              float* parts, int batch, int seq_len, int hidden, float eps, const int64_t* rng,
                              float dropout_p, int dropping, float inv_sqrt_len, float mix) {
  auto args = input_stage_args(item_seq, item_weight, position_rows, norm_weight, norm_bias, logit, level, scale,
                               batch, seq_len, hidden, eps, rng, dropout_p, dropping, inv_sqrt_len, mix);
  args.grad = grad;
  args.rows = dembedded;
  args.parts = parts;
  emulator::launch(input_stage_bwd_kernel<float>, batch, kBlockThreads, args);
}

void emulated_frequency_energy(const float* y, float* energy, int sequences, int seq_len, int hidden) {
  auto args = filter_args(y, sequences, seq_len, hidden, 0.0f, nullptr, 0.0f, 0);
  args.energy = energy;
  emulator::launch(frequency_energy_kernel<float>, sequences, kBlockThreads, args);
}

void emulated_frequency_filter_fwd(const float* y, const float* keep, const float* norm_weight,
                                   const float* norm_bias, float* out, int sequences, int seq_len, int hidden,
                                   float eps, const int64_t* rng, float dropout_p, int dropping) {
  auto args = filter_args(y, sequences, seq_len, hidden, eps, rng, dropout_p, dropping);
  args.keep = keep;
  args.norm_weight = norm_weight;
  args.norm_bias = norm_bias;
  args.out = out;
  emulator::launch(frequency_filter_fwd_kernel<float>, sequences, kBlockThreads, args);
}

void emulated_frequency_filter_bwd(const float* y, const float* grad, const float* keep, const float* norm_weight,
                                   float* dy, float* dfiltered, float* parts, int sequences, int seq_len, int hidden,
                                   float eps, const int64_t* rng, float dropout_p, int dropping) {
  auto args = filter_args(y, sequences, seq_len, hidden, eps, rng, dropout_p, dropping);
  args.grad = grad;
  args.keep = keep;
  args.norm_weight = norm_weight;
  args.dy = dy;
  args.dfiltered = dropping ? dfiltered : dy;  // as the launcher: the scratch aliases dy when not dropping
  args.parts = parts;
  emulator::launch(frequency_filter_bwd_kernel<float>, sequences, kBlockThreads, args);
}

}  // extern "C"
