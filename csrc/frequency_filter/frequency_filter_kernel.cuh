// The adaptive frequency filter on CUDA, one thread block per sequence (SPEC section 3).
//
// Transforms are direct real DFTs along the sequence axis with exact integer phases
// ((k * n) mod N indexes a table of cos/sin(2 pi j / N) built in double precision), so the
// transform error is that of a length-N float32 sum, as in the reference's DFT GEMMs.
//
//   energy kernel:  thread per (bin, channel) -> |Y[k, h]|^2, warp per bin sums over h.
//   forward kernel: thread per (bin, channel) -> masked half spectrum in shared memory,
//                   scaled by keep[k] * multiplicity[k] / N (the irfft weights); then warp
//                   per row: the inverse row, dropout, + y, LayerNorm over hidden.
//   backward:       (the filter is linear given the mask: z = M y, M = iDFT diag(keep) DFT)
//                   warp per row: LayerNorm backward -> dy = d(summed), dfiltered =
//                   drop * dy; thread per (bin, channel): the masked transposed inverse of
//                   dfiltered; thread per element: dy += DFT^T of it.
//
// LayerNorm weight/bias gradients are per-warp, then per-sequence partial sums in a fixed
// order (deterministic; the host sums over sequences).
#pragma once

#include <cstdint>

#include "../common/device.cuh"

namespace asrec {

template <typename scalar_t>
struct FilterArgs {
  const scalar_t* y;          // (S, N, H)
  const float* keep;          // (S, K) 0/1
  const float* norm_weight;   // (H,)
  const float* norm_bias;     // (H,)
  const float* grad;          // (S, N, H) backward only
  scalar_t* out;              // (S, N, H) forward only
  float* energy;              // (S, K) energy kernel only
  float* dy;                  // (S, N, H) backward only
  float* dfiltered;           // (S, N, H) backward only (== dy when not dropping)
  float* parts;               // (2, S, H) backward only
  int sequences, seq_len, hidden, bins;
  float eps;
  const int64_t* rng;         // (2,) Philox (seed, offset), read only when dropping
  float dropout_p;
  bool dropping;
};

// Shared memory layout, in floats: twiddles cos[N], sin[N]; then per kernel what it needs.
__host__ __device__ inline size_t twiddle_floats(int64_t seq_len) { return 2 * static_cast<size_t>(seq_len); }
__host__ __device__ inline size_t spectrum_floats(int64_t seq_len, int64_t hidden) {
  return 2 * static_cast<size_t>(seq_len / 2 + 1) * hidden;  // Re and Im, (K, H) each
}
__host__ __device__ inline size_t warp_rows_floats(int64_t hidden) { return static_cast<size_t>(kBlockWarps) * hidden; }

// A block's shared memory, carved in one order by every kernel (the host's byte counts in
// frequency_filter_{fwd,bwd}.cu add up the same pieces): twiddles cos[N], sin[N]; the
// spectrum Re, Im (K, H) each; per-warp rows (warps, H); per-warp LayerNorm gradient sums
// (warps, 2, H). A kernel uses the prefix it needs.
struct FilterShared {
  float *twiddle_cos, *twiddle_sin, *real, *imag, *rows, *norm_grad_parts;
};

__device__ __forceinline__ FilterShared filter_shared(float* shared, int seq_len, int hidden) {
  FilterShared layout;
  layout.twiddle_cos = shared;
  layout.twiddle_sin = shared + seq_len;
  layout.real = shared + twiddle_floats(seq_len);
  layout.imag = layout.real + spectrum_floats(seq_len, hidden) / 2;
  layout.rows = layout.real + spectrum_floats(seq_len, hidden);
  layout.norm_grad_parts = layout.rows + warp_rows_floats(hidden);
  return layout;
}

// cos/sin(2 pi j / N), j < N, rounded once from double precision.
__device__ __forceinline__ void load_twiddles(float* twiddle_cos, float* twiddle_sin, int seq_len) {
  for (int j = threadIdx.x; j < seq_len; j += blockDim.x) {
    double sine, cosine;
    sincospi(2.0 * j / seq_len, &sine, &cosine);
    twiddle_cos[j] = static_cast<float>(cosine);
    twiddle_sin[j] = static_cast<float>(sine);
  }
}

// (Re, Im) of bin k, channel h: sum_n cos(2 pi k n / N) x[n], -sum_n sin(...) x[n].
template <typename T>
__device__ __forceinline__ void dft_bin(const T* x, int seq_len, int hidden, int k, int h, const float* twiddle_cos,
                                        const float* twiddle_sin, float& real, float& imag) {
  real = 0.0f;
  imag = 0.0f;
  int phase = 0;  // (k * n) mod N
  for (int n = 0; n < seq_len; ++n) {
    const float value = to_float(x[n * hidden + h]);
    real += twiddle_cos[phase] * value;
    imag -= twiddle_sin[phase] * value;
    phase += k;
    if (phase >= seq_len) phase -= seq_len;
  }
}

// The irfft weight of bin k: multiplicity (1 for bins 0 and N/2, else 2) over N.
__device__ __forceinline__ float inverse_weight(int k, int seq_len) {
  return (k == 0 || 2 * k == seq_len ? 1.0f : 2.0f) / static_cast<float>(seq_len);
}

// keep[k] * inverse_weight(k) * (Re, Im)[k, h] for every (k, h) of this sequence, into shared memory.
template <typename scalar_t>
__device__ void weighted_masked_spectrum(const FilterArgs<scalar_t>& args, const scalar_t* y, const float* keep,
                                         const float* twiddle_cos, const float* twiddle_sin, float* real,
                                         float* imag) {
  const int hidden = args.hidden;
  for (int index = threadIdx.x; index < args.bins * hidden; index += blockDim.x) {
    const int k = index / hidden, h = index - k * hidden;
    float bin_real, bin_imag;
    dft_bin(y, args.seq_len, hidden, k, h, twiddle_cos, twiddle_sin, bin_real, bin_imag);
    const float weight = keep[k] * inverse_weight(k, args.seq_len);
    real[index] = bin_real * weight;
    imag[index] = bin_imag * weight;
  }
}

// Row n of the inverse transform at channel h: sum_k cos(2 pi k n / N) Re[k, h] - sin(...) Im[k, h].
__device__ __forceinline__ float inverse_row_element(const float* real, const float* imag, int n, int h,
                                                     int seq_len, int hidden, int bins, const float* twiddle_cos,
                                                     const float* twiddle_sin) {
  float value = 0.0f;
  int phase = 0;  // (k * n) mod N
  for (int k = 0; k < bins; ++k) {
    value += twiddle_cos[phase] * real[k * hidden + h] - twiddle_sin[phase] * imag[k * hidden + h];
    phase += n;
    if (phase >= seq_len) phase -= seq_len;
  }
  return value;
}

template <typename scalar_t>
__device__ __forceinline__ float filter_dropout(const FilterArgs<scalar_t>& args, int64_t base, int n, int h,
                                                float keep_scale) {
  // the element offset base + n * H + h is the Triton kernels' dropout counter for this element
  return args.dropping ? dropout_factor(args.rng, static_cast<uint64_t>(base + n * args.hidden + h),
                                        args.dropout_p, keep_scale)
                       : 1.0f;
}

struct RowNorm {
  float mean, rstd;
};

// Row n of drop(irfft(masked spectrum)) + y into row (H,) floats (this warp's buffer; each lane
// its own channels), and its LayerNorm statistics.
template <typename scalar_t>
__device__ RowNorm filtered_residual_row(const FilterArgs<scalar_t>& args, const scalar_t* y, int64_t base, int n,
                                         const float* real, const float* imag, const float* twiddle_cos,
                                         const float* twiddle_sin, float* row, int lane) {
  const int hidden = args.hidden;
  const float keep_scale = 1.0f / (1.0f - args.dropout_p);
  float sum = 0.0f;
  for (int h = lane; h < hidden; h += kWarpSize) {
    const float filtered = inverse_row_element(real, imag, n, h, args.seq_len, hidden, args.bins, twiddle_cos,
                                               twiddle_sin)
                           * filter_dropout(args, base, n, h, keep_scale);
    row[h] = filtered + to_float(y[n * hidden + h]);
    sum += row[h];
  }
  const float mean = warp_sum(sum) / hidden;
  float squares = 0.0f;
  for (int h = lane; h < hidden; h += kWarpSize) {
    const float centred = row[h] - mean;
    squares += centred * centred;
  }
  return {mean, 1.0f / sqrtf(warp_sum(squares) / hidden + args.eps)};
}

template <typename scalar_t>
__global__ void __launch_bounds__(kBlockThreads) frequency_energy_kernel(FilterArgs<scalar_t> args) {
  extern __shared__ float shared[];
  const int seq_len = args.seq_len, hidden = args.hidden;
  const FilterShared layout = filter_shared(shared, seq_len, hidden);
  float *twiddle_cos = layout.twiddle_cos, *twiddle_sin = layout.twiddle_sin;
  float* bin_energy = layout.real;  // (K, H) energies in the spectrum's place
  const int64_t sequence = blockIdx.x;
  const scalar_t* y = args.y + sequence * seq_len * hidden;
  load_twiddles(twiddle_cos, twiddle_sin, seq_len);
  __syncthreads();
  for (int index = threadIdx.x; index < args.bins * hidden; index += blockDim.x) {
    const int k = index / hidden, h = index - k * hidden;
    float real, imag;
    dft_bin(y, seq_len, hidden, k, h, twiddle_cos, twiddle_sin, real, imag);
    bin_energy[index] = real * real + imag * imag;
  }
  __syncthreads();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  for (int k = warp; k < args.bins; k += kBlockWarps) {
    float sum = 0.0f;
    for (int h = lane; h < hidden; h += kWarpSize) sum += bin_energy[k * hidden + h];
    sum = warp_sum(sum);
    if (lane == 0) args.energy[sequence * args.bins + k] = sum;
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kBlockThreads) frequency_filter_fwd_kernel(FilterArgs<scalar_t> args) {
  extern __shared__ float shared[];
  const int seq_len = args.seq_len, hidden = args.hidden;
  const FilterShared layout = filter_shared(shared, seq_len, hidden);
  float *twiddle_cos = layout.twiddle_cos, *twiddle_sin = layout.twiddle_sin;
  float *real = layout.real, *imag = layout.imag, *rows = layout.rows;
  const int64_t sequence = blockIdx.x;
  const int64_t base = sequence * seq_len * hidden;
  const scalar_t* y = args.y + base;
  load_twiddles(twiddle_cos, twiddle_sin, seq_len);
  __syncthreads();
  weighted_masked_spectrum(args, y, args.keep + sequence * args.bins, twiddle_cos, twiddle_sin, real, imag);
  __syncthreads();
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  float* row = rows + warp * hidden;
  for (int n = warp; n < seq_len; n += kBlockWarps) {
    const RowNorm norm = filtered_residual_row(args, y, base, n, real, imag, twiddle_cos, twiddle_sin, row, lane);
    for (int h = lane; h < hidden; h += kWarpSize) {
      const float normed = (row[h] - norm.mean) * norm.rstd;
      args.out[base + n * hidden + h] = static_cast<scalar_t>(normed * args.norm_weight[h] + args.norm_bias[h]);
    }
  }
}

template <typename scalar_t>
__global__ void __launch_bounds__(kBlockThreads) frequency_filter_bwd_kernel(FilterArgs<scalar_t> args) {
  extern __shared__ float shared[];
  const int seq_len = args.seq_len, hidden = args.hidden;
  const FilterShared layout = filter_shared(shared, seq_len, hidden);
  float *twiddle_cos = layout.twiddle_cos, *twiddle_sin = layout.twiddle_sin;
  float *real = layout.real, *imag = layout.imag;  // the masked spectrum, then its gradient
  float *rows = layout.rows, *norm_grad_parts = layout.norm_grad_parts;
  const int64_t sequence = blockIdx.x;
  const int64_t base = sequence * seq_len * hidden;
  const scalar_t* y = args.y + base;
  const float* grad = args.grad + base;
  const float* keep = args.keep + sequence * args.bins;
  float* dy = args.dy + base;
  float* dfiltered = args.dfiltered + base;
  load_twiddles(twiddle_cos, twiddle_sin, seq_len);
  for (int i = threadIdx.x; i < 2 * kBlockWarps * hidden; i += blockDim.x) norm_grad_parts[i] = 0.0f;
  __syncthreads();
  weighted_masked_spectrum(args, y, keep, twiddle_cos, twiddle_sin, real, imag);
  __syncthreads();

  // per row: recompute the forward row, LayerNorm backward -> dy, dfiltered
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  float* row = rows + warp * hidden;
  float* dweight_part = norm_grad_parts + (2 * warp) * hidden;
  float* dbias_part = norm_grad_parts + (2 * warp + 1) * hidden;
  const float keep_scale = 1.0f / (1.0f - args.dropout_p);
  for (int n = warp; n < seq_len; n += kBlockWarps) {
    const RowNorm norm = filtered_residual_row(args, y, base, n, real, imag, twiddle_cos, twiddle_sin, row, lane);
    float dnormed_sum = 0.0f, dnormed_dot = 0.0f;
    for (int h = lane; h < hidden; h += kWarpSize) {
      const float normed = (row[h] - norm.mean) * norm.rstd;
      row[h] = normed;  // the second pass reads it back (each lane its own channels)
      const float g = grad[n * hidden + h];
      dweight_part[h] += g * normed;
      dbias_part[h] += g;
      const float dnormed = g * args.norm_weight[h];
      dnormed_sum += dnormed;
      dnormed_dot += dnormed * normed;
    }
    const float mean_dnormed = warp_sum(dnormed_sum) / hidden;
    const float mean_dnormed_dot = warp_sum(dnormed_dot) / hidden;
    for (int h = lane; h < hidden; h += kWarpSize) {
      const float normed = row[h];
      const float dnormed = grad[n * hidden + h] * args.norm_weight[h];
      const float dsummed = norm.rstd * (dnormed - mean_dnormed - normed * mean_dnormed_dot);
      dy[n * hidden + h] = dsummed;
      if (args.dropping) dfiltered[n * hidden + h] = dsummed * filter_dropout(args, base, n, h, keep_scale);
    }
  }
  __syncthreads();

  // per (bin, channel): keep * irfft weight * (DFT^-T dfiltered), over the spectrum's storage
  for (int index = threadIdx.x; index < args.bins * hidden; index += blockDim.x) {
    const int k = index / hidden, h = index - k * hidden;
    float bin_real, bin_imag;
    dft_bin(dfiltered, seq_len, hidden, k, h, twiddle_cos, twiddle_sin, bin_real, bin_imag);
    const float weight = keep[k] * inverse_weight(k, seq_len);
    real[index] = bin_real * weight;
    imag[index] = bin_imag * weight;
  }
  __syncthreads();

  // per element: dy += DFT^T (masked gradient spectrum): the same sums as the inverse rows
  for (int index = threadIdx.x; index < seq_len * hidden; index += blockDim.x) {
    const int n = index / hidden, h = index - n * hidden;
    dy[index] += inverse_row_element(real, imag, n, h, seq_len, hidden, args.bins, twiddle_cos, twiddle_sin);
  }
  for (int h = threadIdx.x; h < hidden; h += blockDim.x) {
    float dweight = 0.0f, dbias = 0.0f;
    for (int w = 0; w < kBlockWarps; ++w) {  // fixed order: deterministic
      dweight += norm_grad_parts[(2 * w) * hidden + h];
      dbias += norm_grad_parts[(2 * w + 1) * hidden + h];
    }
    const int64_t stride = static_cast<int64_t>(args.sequences) * hidden;
    args.parts[sequence * hidden + h] = dweight;
    args.parts[stride + sequence * hidden + h] = dbias;
  }
}

}  // namespace asrec
