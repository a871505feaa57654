// asrec_cuda::frequency_energy / frequency_filter_fwd / frequency_filter_bwd: argument checks, outputs;
// asrec_cuda::frequency_filter_shared_memory: the shared memory they need.
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <limits>

#include "../common/checks.h"
#include "frequency_filter.h"

namespace asrec {

namespace {

// y: (S, N, H) CUDA, a kernel dtype, contiguous, N * H below 2^31.
void check_sequences(const at::Tensor& y, const char* op) {
  check_cuda(y, op, "y");
  check_rank(y, 3, op, "y");
  check_floating(y, op, "y");
  check_contiguous(y, op, "y");
  TORCH_CHECK(y.size(1) >= 1 && y.size(2) >= 1, "asrec_cuda::", op, ": y must have seq_len >= 1 and hidden >= 1, got ",
              y.sizes());
  TORCH_CHECK(y.size(1) * y.size(2) < std::numeric_limits<int32_t>::max(), "asrec_cuda::", op,
              ": seq_len * hidden must be below 2^31, got shape ", y.sizes());
}

void check_keep(const at::Tensor& keep, const at::Tensor& y, const char* op) {
  check_same_device(keep, y, op, "keep");
  TORCH_CHECK(keep.scalar_type() == at::kFloat, "asrec_cuda::", op, ": keep must be float32 0/1, got ",
              keep.scalar_type());
  check_contiguous(keep, op, "keep");
  check_shape(keep, {y.size(0), y.size(1) / 2 + 1}, op, "keep");
}

at::Tensor checked_norm_parameter(const at::Tensor& tensor, const at::Tensor& y, const char* op, const char* name) {
  check_same_device(tensor, y, op, name);
  check_floating(tensor, op, name);
  check_shape(tensor, {y.size(2)}, op, name);
  return as_float_parameter(tensor);
}

FilterSettings filter_settings(const char* op, const at::Tensor& rng, const at::Tensor& y, double eps,
                               double dropout_p, bool dropping) {
  check_dropout(dropout_p, op);
  return {static_cast<float>(eps), checked_rng(rng, y, dropping, op), static_cast<float>(dropout_p), dropping};
}

}  // namespace

// y (S, N, H) -> (S, N // 2 + 1) float32 bin energies.
at::Tensor frequency_energy(const at::Tensor& y) {
  const char* op = "frequency_energy";
  check_sequences(y, op);
  const c10::cuda::OptionalCUDAGuard guard(y.device());
  at::Tensor energy = at::empty({y.size(0), y.size(1) / 2 + 1}, y.options().dtype(at::kFloat));
  launch_frequency_energy(y, energy);
  return energy;
}

// y (S, N, H), keep (S, N // 2 + 1) float32 0/1 -> (S, N, H) in y's dtype.
at::Tensor frequency_filter_fwd(const at::Tensor& y, const at::Tensor& keep, const at::Tensor& norm_weight,
                                const at::Tensor& norm_bias, const at::Tensor& rng, double eps, double dropout_p,
                                bool dropping) {
  const char* op = "frequency_filter_fwd";
  check_sequences(y, op);
  check_keep(keep, y, op);
  const c10::cuda::OptionalCUDAGuard guard(y.device());
  const at::Tensor weight = checked_norm_parameter(norm_weight, y, op, "norm_weight");
  const at::Tensor bias = checked_norm_parameter(norm_bias, y, op, "norm_bias");
  const FilterSettings settings = filter_settings(op, rng, y, eps, dropout_p, dropping);
  at::Tensor out = at::empty_like(y);
  launch_frequency_filter_fwd(y, keep, weight, bias, settings, out);
  return out;
}

// -> (dy (S, N, H), parts (2, S, H)), float32; see frequency_filter.h.
std::tuple<at::Tensor, at::Tensor> frequency_filter_bwd(const at::Tensor& y, const at::Tensor& grad,
                                                        const at::Tensor& keep, const at::Tensor& norm_weight,
                                                        const at::Tensor& rng, double eps, double dropout_p,
                                                        bool dropping) {
  const char* op = "frequency_filter_bwd";
  check_sequences(y, op);
  check_keep(keep, y, op);
  check_same_device(grad, y, op, "grad");
  check_floating(grad, op, "grad");
  check_shape(grad, y.sizes(), op, "grad");
  const c10::cuda::OptionalCUDAGuard guard(y.device());
  const at::Tensor weight = checked_norm_parameter(norm_weight, y, op, "norm_weight");
  const FilterSettings settings = filter_settings(op, rng, y, eps, dropout_p, dropping);
  const at::Tensor grad_float = grad.to(at::kFloat).contiguous();
  const auto float_options = y.options().dtype(at::kFloat);
  at::Tensor dy = at::empty(y.sizes(), float_options);
  at::Tensor dfiltered = dropping ? at::empty(y.sizes(), float_options) : dy;
  at::Tensor parts = at::empty({2, y.size(0), y.size(2)}, float_options);
  launch_frequency_filter_bwd(y, grad_float, keep, weight, settings, dy, dfiltered, parts);
  return {dy, parts};
}

// The most shared memory per block any filter kernel needs at this shape, in bytes (the
// backward's: it holds the forward's pieces and more; the dispatch compares it with the
// device's limit before choosing this backend).
int64_t frequency_filter_shared_memory(int64_t seq_len, int64_t hidden) {
  TORCH_CHECK(seq_len >= 0 && hidden >= 0, "asrec_cuda::frequency_filter_shared_memory: seq_len and hidden must be "
              ">= 0, got ", seq_len, " and ", hidden);
  return static_cast<int64_t>(std::max({frequency_energy_shared_bytes(seq_len, hidden),
                                        frequency_filter_fwd_shared_bytes(seq_len, hidden),
                                        frequency_filter_bwd_shared_bytes(seq_len, hidden)}));
}

}  // namespace asrec
