// Forward launcher of the fused input stage (kernel: input_stage_kernel.cuh).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

#include "../common/launch.h"
#include "input_stage_args.cuh"

namespace asrec {

void launch_input_stage_fwd(const InputStageTensors& tensors, const InputStageSettings& settings, at::Tensor& out) {
  const int64_t batch = tensors.item_seq.size(0);
  if (batch == 0) return;
  ASREC_DISPATCH_KERNEL_TYPES(tensors.item_weight.scalar_type(), "asrec_cuda::input_stage_fwd", [&] {
    auto args = input_stage_args<scalar_t>(tensors, settings);
    args.rows = out.data_ptr<float>();
    input_stage_fwd_kernel<scalar_t><<<batch, kBlockThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace asrec
