// asrec_cuda::input_stage_fwd / input_stage_bwd: argument checks, conversions, outputs;
// asrec_cuda::input_stage_shared_memory: the shared memory they need.
#include <c10/cuda/CUDAGuard.h>

#include <limits>

#include "../common/checks.h"
#include "input_stage.h"

namespace asrec {

namespace {

// Checks every argument of the input stage and returns the tensors in the launchers' layout.
InputStageTensors checked_input_stage(const char* op, const at::Tensor& item_seq, const at::Tensor& item_weight,
                                      const at::Tensor& position_weight, const at::Tensor& norm_weight,
                                      const at::Tensor& norm_bias, const at::Tensor& smoothing_logit,
                                      const at::Tensor& init_level, const at::Tensor& smoothed_scale,
                                      double dropout_p) {
  check_cuda(item_weight, op, "item_weight");
  check_rank(item_weight, 2, op, "item_weight");
  check_floating(item_weight, op, "item_weight");
  check_contiguous(item_weight, op, "item_weight");
  check_same_device(item_seq, item_weight, op, "item_seq");
  check_rank(item_seq, 2, op, "item_seq");
  TORCH_CHECK(item_seq.scalar_type() == at::kLong || item_seq.scalar_type() == at::kInt, "asrec_cuda::", op,
              ": item_seq must hold int32 or int64 ids, got ", item_seq.scalar_type());
  const int64_t seq_len = item_seq.size(1), hidden = item_weight.size(1);
  TORCH_CHECK(seq_len * hidden < std::numeric_limits<int32_t>::max(), "asrec_cuda::", op,
              ": seq_len * hidden must be below 2^31, got ", seq_len, " * ", hidden);
  check_same_device(position_weight, item_weight, op, "position_weight");
  check_floating(position_weight, op, "position_weight");
  TORCH_CHECK(position_weight.dim() == 2 && position_weight.size(0) >= seq_len && position_weight.size(1) == hidden,
              "asrec_cuda::", op, ": position_weight must be (>= ", seq_len, ", ", hidden, "), got ",
              position_weight.sizes());
  const std::pair<const at::Tensor*, const char*> per_channel[] = {
      {&norm_weight, "norm_weight"}, {&norm_bias, "norm_bias"}, {&init_level, "init_level"},
      {&smoothed_scale, "smoothed_scale"}};
  for (const auto& [tensor, name] : per_channel) {
    check_same_device(*tensor, item_weight, op, name);
    check_floating(*tensor, op, name);
    TORCH_CHECK(tensor->numel() == hidden, "asrec_cuda::", op, ": ", name, " must have ", hidden,
                " elements (one per channel), got shape ", tensor->sizes());
  }
  check_same_device(smoothing_logit, item_weight, op, "smoothing_logit");
  check_floating(smoothing_logit, op, "smoothing_logit");
  TORCH_CHECK(smoothing_logit.numel() == 1, "asrec_cuda::", op, ": smoothing_logit must have one element, got shape ",
              smoothing_logit.sizes());
  check_dropout(dropout_p, op);
  return {item_seq.to(at::kLong).contiguous(),
          item_weight,
          position_weight.narrow(0, 0, seq_len).to(at::kFloat).contiguous(),
          as_float_parameter(norm_weight).view({hidden}),
          as_float_parameter(norm_bias).view({hidden}),
          as_float_parameter(smoothing_logit).view({1}),
          as_float_parameter(init_level).view({hidden}),
          as_float_parameter(smoothed_scale).view({hidden})};
}

InputStageSettings input_stage_settings(const char* op, const at::Tensor& rng, const at::Tensor& item_weight,
                                        double eps, double dropout_p, bool dropping, double inv_sqrt_len, double mix) {
  return {static_cast<float>(eps), checked_rng(rng, item_weight, dropping, op), static_cast<float>(dropout_p),
          dropping, static_cast<float>(inv_sqrt_len), static_cast<float>(mix)};
}

}  // namespace

// -> (B, N, H) float32 smoothed embeddings. Ids are not range-checked (the model checks them).
at::Tensor input_stage_fwd(const at::Tensor& item_seq, const at::Tensor& item_weight,
                           const at::Tensor& position_weight, const at::Tensor& norm_weight,
                           const at::Tensor& norm_bias, const at::Tensor& smoothing_logit,
                           const at::Tensor& init_level, const at::Tensor& smoothed_scale, const at::Tensor& rng,
                           double eps, double dropout_p, bool dropping, double inv_sqrt_len, double mix) {
  const char* op = "input_stage_fwd";
  const c10::cuda::OptionalCUDAGuard guard(item_weight.device());
  const InputStageTensors tensors = checked_input_stage(op, item_seq, item_weight, position_weight, norm_weight,
                                                        norm_bias, smoothing_logit, init_level, smoothed_scale,
                                                        dropout_p);
  at::Tensor out = at::empty({item_seq.size(0), item_seq.size(1), item_weight.size(1)},
                             item_weight.options().dtype(at::kFloat));
  const InputStageSettings settings =
      input_stage_settings(op, rng, item_weight, eps, dropout_p, dropping, inv_sqrt_len, mix);
  launch_input_stage_fwd(tensors, settings, out);
  return out;
}

// -> (d embedding sum (B, N, H), parts (5, B, H)), float32; see input_stage.h.
std::tuple<at::Tensor, at::Tensor> input_stage_bwd(const at::Tensor& item_seq, const at::Tensor& item_weight,
                                                   const at::Tensor& position_weight, const at::Tensor& norm_weight,
                                                   const at::Tensor& norm_bias, const at::Tensor& smoothing_logit,
                                                   const at::Tensor& init_level, const at::Tensor& smoothed_scale,
                                                   const at::Tensor& grad, const at::Tensor& rng, double eps,
                                                   double dropout_p, bool dropping, double inv_sqrt_len,
                                                   double mix) {
  const char* op = "input_stage_bwd";
  const c10::cuda::OptionalCUDAGuard guard(item_weight.device());
  const InputStageTensors tensors = checked_input_stage(op, item_seq, item_weight, position_weight, norm_weight,
                                                        norm_bias, smoothing_logit, init_level, smoothed_scale,
                                                        dropout_p);
  const int64_t batch = item_seq.size(0), seq_len = item_seq.size(1), hidden = item_weight.size(1);
  check_same_device(grad, item_weight, op, "grad");
  check_floating(grad, op, "grad");
  check_shape(grad, {batch, seq_len, hidden}, op, "grad");
  const at::Tensor grad_float = grad.to(at::kFloat).contiguous();
  const auto float_options = item_weight.options().dtype(at::kFloat);
  at::Tensor dembedded = at::empty({batch, seq_len, hidden}, float_options);
  at::Tensor parts = at::empty({5, batch, hidden}, float_options);
  const InputStageSettings settings =
      input_stage_settings(op, rng, item_weight, eps, dropout_p, dropping, inv_sqrt_len, mix);
  launch_input_stage_bwd(tensors, grad_float, settings, dembedded, parts);
  return {dembedded, parts};
}

// The most shared memory per block any input-stage kernel needs at this shape, in bytes (the
// dispatch compares it with the device's limit before choosing this backend).
int64_t input_stage_shared_memory(int64_t seq_len, int64_t hidden) {
  TORCH_CHECK(seq_len >= 0 && hidden >= 0, "asrec_cuda::input_stage_shared_memory: seq_len and hidden must be >= 0, "
              "got ", seq_len, " and ", hidden);
  return static_cast<int64_t>(input_stage_bwd_shared_bytes(hidden));
}

}  // namespace asrec
