// Kernel arguments of the fused input stage from the launchers' tensors (one place for both launchers).
#pragma once

#include "input_stage.h"
#include "input_stage_kernel.cuh"

namespace asrec {

// The kernel arguments from the checked tensors (input_stage.cpp) and the settings.
template <typename scalar_t>
inline InputStageArgs<scalar_t> input_stage_args(const InputStageTensors& tensors, const InputStageSettings& settings) {
  InputStageArgs<scalar_t> args{};
  args.item_seq = tensors.item_seq.data_ptr<int64_t>();
  args.item_weight = tensors.item_weight.data_ptr<scalar_t>();
  args.position_rows = tensors.position_rows.data_ptr<float>();
  args.norm_weight = tensors.norm_weight.data_ptr<float>();
  args.norm_bias = tensors.norm_bias.data_ptr<float>();
  args.smoothing_logit = tensors.smoothing_logit.data_ptr<float>();
  args.init_level = tensors.init_level.data_ptr<float>();
  args.smoothed_scale = tensors.smoothed_scale.data_ptr<float>();
  args.batch = static_cast<int>(tensors.item_seq.size(0));
  args.seq_len = static_cast<int>(tensors.item_seq.size(1));
  args.hidden = static_cast<int>(tensors.item_weight.size(1));
  args.eps = settings.eps;
  args.rng = settings.rng;
  args.dropout_p = settings.dropout_p;
  args.dropping = settings.dropping;
  args.inv_sqrt_len = settings.inv_sqrt_len;
  args.mix = settings.mix;
  return args;
}

}  // namespace asrec
