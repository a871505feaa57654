// The fused input stage on CUDA, one thread block per sequence (SPEC sections 1-2):
//
//   e   = item_weight[item_seq[n]] + position[n]           gather
//   y   = drop(p)(LN(e))                                   LayerNorm over hidden, dropout
//   out = mix * (alpha^(n+1) v0 + s[n] v1) + (1 - mix) y   s[n] = (1-alpha)/sqrt(L) * EMA(y)[n]
//
// LayerNorm reduces over hidden and the smoothing recurs along the sequence, so a block
// owns one sequence: warps take rows for the LayerNorm, then threads take channels for the
// recurrence. The rows pass through the block's own output rows (global memory, L1/L2
// resident), ordered by __syncthreads, which makes a block's global writes visible to its
// threads.
//
// Backward recomputes y, runs the recurrence forward (the EMA e[n]) and backward (the
// adjoint lam[n] = sum_{m >= n} alpha^(m-n) G[m]) per channel, then the dropout and
// LayerNorm backward per row. Parameter gradients are per-sequence partial sums written
// to `parts` (no atomics: the host's sum over sequences is deterministic).
#pragma once

#include <cstdint>

#include "../common/device.cuh"

namespace asrec {

template <typename scalar_t>
struct InputStageArgs {
  const int64_t* item_seq;       // (B, N)
  const scalar_t* item_weight;   // (V, H)
  const float* position_rows;    // (N, H)
  const float* norm_weight;      // (H,)
  const float* norm_bias;        // (H,)
  const float* smoothing_logit;  // (1,)
  const float* init_level;       // (H,)
  const float* smoothed_scale;   // (H,)
  const float* grad;             // (B, N, H) backward only
  float* rows;                   // (B, N, H): forward output / backward d(embedding sum)
  float* parts;                  // (5, B, H) backward only
  int batch, seq_len, hidden;
  float eps;
  const int64_t* rng;            // (2,) Philox (seed, offset), read only when dropping
  float dropout_p;
  bool dropping;
  float inv_sqrt_len, mix;
};

struct EmbeddingRowStats {
  int64_t item;  // the row's item id
  float mean, rstd;
};

template <typename scalar_t>
__device__ __forceinline__ float embedding_sum(const InputStageArgs<scalar_t>& args, int64_t item, int n, int h) {
  return to_float(args.item_weight[item * args.hidden + h]) + args.position_rows[n * args.hidden + h];
}

// LayerNorm statistics of row n of this sequence's embedding sums (the calling warp's lanes
// stride over hidden; every lane gets the result).
template <typename scalar_t>
__device__ EmbeddingRowStats embedding_row_stats(const InputStageArgs<scalar_t>& args, int64_t sequence, int n,
                                                 int lane) {
  const int64_t item = args.item_seq[sequence * args.seq_len + n];
  float sum = 0.0f;
  for (int h = lane; h < args.hidden; h += kWarpSize) sum += embedding_sum(args, item, n, h);
  const float mean = warp_sum(sum) / args.hidden;
  float squares = 0.0f;
  for (int h = lane; h < args.hidden; h += kWarpSize) {
    const float centred = embedding_sum(args, item, n, h) - mean;
    squares += centred * centred;
  }
  const float rstd = 1.0f / sqrtf(warp_sum(squares) / args.hidden + args.eps);
  return {item, mean, rstd};
}

__device__ __forceinline__ int64_t element_offset(int64_t sequence, int n, int h, int seq_len, int hidden) {
  return (sequence * seq_len + n) * hidden + h;  // the Triton kernels' dropout counter for this element
}

template <typename scalar_t>
__device__ __forceinline__ float element_dropout(const InputStageArgs<scalar_t>& args, int64_t sequence, int n,
                                                 int h, float keep_scale) {
  return args.dropping
             ? dropout_factor(args.rng,
                              static_cast<uint64_t>(element_offset(sequence, n, h, args.seq_len, args.hidden)),
                              args.dropout_p, keep_scale)
             : 1.0f;
}

// y = drop(LN(e)) for every row of the sequence into rows_out (N, H), warps taking rows.
template <typename scalar_t>
__device__ void smoothing_input_rows(const InputStageArgs<scalar_t>& args, int64_t sequence, float* rows_out) {
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const float keep_scale = 1.0f / (1.0f - args.dropout_p);
  for (int n = warp; n < args.seq_len; n += kBlockWarps) {
    const EmbeddingRowStats stats = embedding_row_stats(args, sequence, n, lane);
    for (int h = lane; h < args.hidden; h += kWarpSize) {
      const float normed = (embedding_sum(args, stats.item, n, h) - stats.mean) * stats.rstd;
      const float y = normed * args.norm_weight[h] + args.norm_bias[h];
      rows_out[n * args.hidden + h] = y * element_dropout(args, sequence, n, h, keep_scale);
    }
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kBlockThreads) input_stage_fwd_kernel(InputStageArgs<scalar_t> args) {
  const int64_t sequence = blockIdx.x;
  float* rows = args.rows + sequence * args.seq_len * args.hidden;
  smoothing_input_rows(args, sequence, rows);
  __syncthreads();
  const float alpha = sigmoid(args.smoothing_logit[0]);
  const float log_alpha = logf(alpha);
  const float ema_factor = (1.0f - alpha) * args.inv_sqrt_len;
  for (int h = threadIdx.x; h < args.hidden; h += blockDim.x) {
    const float level = args.init_level[h], scale = args.smoothed_scale[h];
    float ema = 0.0f;
    for (int n = 0; n < args.seq_len; ++n) {
      const float y = rows[n * args.hidden + h];
      ema = alpha * ema + y;
      const float fsm = power_from_log(n + 1, log_alpha) * level + ema * ema_factor * scale;
      rows[n * args.hidden + h] = args.mix * fsm + (1.0f - args.mix) * y;
    }
  }
}

// Shared memory of the backward kernel: per-warp partial sums of the LayerNorm weight and bias
// gradients, (warps, 2, H) floats (the host's byte count: input_stage_bwd_shared_bytes).
__host__ __device__ inline size_t input_stage_bwd_shared_floats(int64_t hidden) {
  return 2 * static_cast<size_t>(kBlockWarps) * hidden;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kBlockThreads) input_stage_bwd_kernel(InputStageArgs<scalar_t> args) {
  extern __shared__ float norm_grad_parts[];  // (warps, 2, H)
  const int64_t sequence = blockIdx.x;
  const int hidden = args.hidden, seq_len = args.seq_len;
  const int64_t sequence_base = sequence * seq_len * hidden;
  float* rows = args.rows + sequence_base;  // y, then the EMA, then dy, then d(embedding sum)
  const float* grad = args.grad + sequence_base;
  for (int i = threadIdx.x; i < 2 * kBlockWarps * hidden; i += blockDim.x) norm_grad_parts[i] = 0.0f;
  smoothing_input_rows(args, sequence, rows);
  __syncthreads();

  // per channel: the EMA forward, then the adjoint backward with the smoothing's gradients
  const float alpha = sigmoid(args.smoothing_logit[0]);
  const float log_alpha = logf(alpha);
  const float ema_factor = (1.0f - alpha) * args.inv_sqrt_len;
  const float mix = args.mix;
  const int64_t part_stride = static_cast<int64_t>(args.batch) * hidden;
  for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
    const float level = args.init_level[h], scale = args.smoothed_scale[h];
    float ema = 0.0f;
    for (int n = 0; n < seq_len; ++n) {
      ema = alpha * ema + rows[n * hidden + h];
      rows[n * hidden + h] = ema;
    }
    float adjoint_next = 0.0f;  // lam[n + 1]
    float dalpha = 0.0f, dlevel = 0.0f, dscale = 0.0f;
    for (int n = seq_len - 1; n >= 0; --n) {
      const float g = grad[n * hidden + h];
      const float e = rows[n * hidden + h];
      const float adjoint = mix * ema_factor * scale * g + alpha * adjoint_next;
      const float decay = power_from_log(n, log_alpha);  // alpha^n
      dalpha += mix * level * static_cast<float>(n + 1) * decay * g - mix * args.inv_sqrt_len * scale * g * e
                + adjoint_next * e;
      dlevel += mix * decay * alpha * g;
      dscale += mix * ema_factor * e * g;
      rows[n * hidden + h] = (1.0f - mix) * g + adjoint;  // dy
      adjoint_next = adjoint;
    }
    args.parts[sequence * hidden + h] = dalpha;
    args.parts[part_stride + sequence * hidden + h] = dlevel;
    args.parts[2 * part_stride + sequence * hidden + h] = dscale;
  }
  __syncthreads();

  // per row: dropout and LayerNorm backward
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  float* dweight_part = norm_grad_parts + (2 * warp) * hidden;
  float* dbias_part = norm_grad_parts + (2 * warp + 1) * hidden;
  const float keep_scale = 1.0f / (1.0f - args.dropout_p);
  for (int n = warp; n < seq_len; n += kBlockWarps) {
    const EmbeddingRowStats stats = embedding_row_stats(args, sequence, n, lane);
    float dnormed_sum = 0.0f, dnormed_dot = 0.0f;
    for (int h = lane; h < hidden; h += kWarpSize) {
      const float normed = (embedding_sum(args, stats.item, n, h) - stats.mean) * stats.rstd;
      const float dy = rows[n * hidden + h] * element_dropout(args, sequence, n, h, keep_scale);
      rows[n * hidden + h] = dy;  // through the dropout: the second pass does not redraw it
      const float dnormed = dy * args.norm_weight[h];
      dweight_part[h] += dy * normed;
      dbias_part[h] += dy;
      dnormed_sum += dnormed;
      dnormed_dot += dnormed * normed;
    }
    const float mean_dnormed = warp_sum(dnormed_sum) / hidden;
    const float mean_dnormed_dot = warp_sum(dnormed_dot) / hidden;
    for (int h = lane; h < hidden; h += kWarpSize) {
      const float normed = (embedding_sum(args, stats.item, n, h) - stats.mean) * stats.rstd;
      const float dnormed = rows[n * hidden + h] * args.norm_weight[h];
      rows[n * hidden + h] = stats.rstd * (dnormed - mean_dnormed - normed * mean_dnormed_dot);
    }
  }
  __syncthreads();
  for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
    float dweight = 0.0f, dbias = 0.0f;
    for (int w = 0; w < kBlockWarps; ++w) {  // fixed order: deterministic
      dweight += norm_grad_parts[(2 * w) * hidden + h];
      dbias += norm_grad_parts[(2 * w + 1) * hidden + h];
    }
    args.parts[3 * part_stride + sequence * hidden + h] = dweight;
    args.parts[4 * part_stride + sequence * hidden + h] = dbias;
  }
}

}  // namespace asrec
