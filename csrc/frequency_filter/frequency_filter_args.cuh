// Kernel arguments of the frequency filter from the launchers' tensors, and shared-memory sizes.
#pragma once

#include "frequency_filter.h"
#include "frequency_filter_kernel.cuh"

namespace asrec {

template <typename scalar_t>
inline FilterArgs<scalar_t> filter_args(const at::Tensor& y, const FilterSettings& settings) {
  FilterArgs<scalar_t> args{};
  args.y = y.data_ptr<scalar_t>();
  args.sequences = static_cast<int>(y.size(0));
  args.seq_len = static_cast<int>(y.size(1));
  args.hidden = static_cast<int>(y.size(2));
  args.bins = args.seq_len / 2 + 1;
  args.eps = settings.eps;
  args.rng = settings.rng;
  args.dropout_p = settings.dropout_p;
  args.dropping = settings.dropping;
  return args;
}

}  // namespace asrec
