// Launchers of the frequency filter's energy and forward kernels (frequency_filter_kernel.cuh).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

#include "../common/launch.h"
#include "frequency_filter_args.cuh"

namespace asrec {

size_t frequency_energy_shared_bytes(int64_t seq_len, int64_t hidden) {
  return sizeof(float) * (twiddle_floats(seq_len) + spectrum_floats(seq_len, hidden) / 2);
}

size_t frequency_filter_fwd_shared_bytes(int64_t seq_len, int64_t hidden) {
  return sizeof(float) * (twiddle_floats(seq_len) + spectrum_floats(seq_len, hidden) + warp_rows_floats(hidden));
}

void launch_frequency_energy(const at::Tensor& y, at::Tensor& energy) {
  const int64_t sequences = y.size(0);
  if (sequences == 0) return;
  const size_t shared_bytes = frequency_energy_shared_bytes(y.size(1), y.size(2));
  ASREC_DISPATCH_KERNEL_TYPES(y.scalar_type(), "asrec_cuda::frequency_energy", [&] {
    auto args = filter_args<scalar_t>(y, FilterSettings{});
    args.energy = energy.data_ptr<float>();
    prepare_shared_memory(frequency_energy_kernel<scalar_t>, shared_bytes, "frequency_energy", y.size(1), y.size(2));
    frequency_energy_kernel<scalar_t>
        <<<sequences, kBlockThreads, shared_bytes, c10::cuda::getCurrentCUDAStream()>>>(args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void launch_frequency_filter_fwd(const at::Tensor& y, const at::Tensor& keep, const at::Tensor& norm_weight,
                                 const at::Tensor& norm_bias, const FilterSettings& settings, at::Tensor& out) {
  const int64_t sequences = y.size(0);
  if (sequences == 0) return;
  const size_t shared_bytes = frequency_filter_fwd_shared_bytes(y.size(1), y.size(2));
  ASREC_DISPATCH_KERNEL_TYPES(y.scalar_type(), "asrec_cuda::frequency_filter_fwd", [&] {
    auto args = filter_args<scalar_t>(y, settings);
    args.keep = keep.data_ptr<float>();
    args.norm_weight = norm_weight.data_ptr<float>();
    args.norm_bias = norm_bias.data_ptr<float>();
    args.out = out.data_ptr<scalar_t>();
    prepare_shared_memory(frequency_filter_fwd_kernel<scalar_t>, shared_bytes, "frequency_filter_fwd", y.size(1),
                          y.size(2));
    frequency_filter_fwd_kernel<scalar_t>
        <<<sequences, kBlockThreads, shared_bytes, c10::cuda::getCurrentCUDAStream()>>>(args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace asrec
