// Launcher of the frequency filter's backward kernel (frequency_filter_kernel.cuh).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

#include "../common/launch.h"
#include "frequency_filter_args.cuh"

namespace asrec {

size_t frequency_filter_bwd_shared_bytes(int64_t seq_len, int64_t hidden) {
  return sizeof(float) *
         (twiddle_floats(seq_len) + spectrum_floats(seq_len, hidden) + 3 * warp_rows_floats(hidden));
}

void launch_frequency_filter_bwd(const at::Tensor& y, const at::Tensor& grad, const at::Tensor& keep,
                                 const at::Tensor& norm_weight, const FilterSettings& settings, at::Tensor& dy,
                                 at::Tensor& dfiltered, at::Tensor& parts) {
  const int64_t sequences = y.size(0);
  if (sequences == 0) return;
  const size_t shared_bytes = frequency_filter_bwd_shared_bytes(y.size(1), y.size(2));
  ASREC_DISPATCH_KERNEL_TYPES(y.scalar_type(), "asrec_cuda::frequency_filter_bwd", [&] {
    auto args = filter_args<scalar_t>(y, settings);
    args.grad = grad.data_ptr<float>();
    args.keep = keep.data_ptr<float>();
    args.norm_weight = norm_weight.data_ptr<float>();
    args.dy = dy.data_ptr<float>();
    args.dfiltered = dfiltered.data_ptr<float>();
    args.parts = parts.data_ptr<float>();
    prepare_shared_memory(frequency_filter_bwd_kernel<scalar_t>, shared_bytes, "frequency_filter_bwd", y.size(1),
                          y.size(2));
    frequency_filter_bwd_kernel<scalar_t>
        <<<sequences, kBlockThreads, shared_bytes, c10::cuda::getCurrentCUDAStream()>>>(args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace asrec
