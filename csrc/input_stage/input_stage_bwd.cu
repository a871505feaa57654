// Backward launcher of the fused input stage (kernel: input_stage_kernel.cuh).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>

#include "../common/launch.h"
#include "input_stage_args.cuh"

namespace asrec {

size_t input_stage_bwd_shared_bytes(int64_t hidden) {
  return sizeof(float) * input_stage_bwd_shared_floats(hidden);
}

void launch_input_stage_bwd(const InputStageTensors& tensors, const at::Tensor& grad,
                            const InputStageSettings& settings, at::Tensor& dembedded, at::Tensor& parts) {
  const int64_t batch = tensors.item_seq.size(0);
  if (batch == 0) return;
  const int64_t hidden = tensors.item_weight.size(1);
  const size_t shared_bytes = input_stage_bwd_shared_bytes(hidden);
  ASREC_DISPATCH_KERNEL_TYPES(tensors.item_weight.scalar_type(), "asrec_cuda::input_stage_bwd", [&] {
    auto args = input_stage_args<scalar_t>(tensors, settings);
    args.grad = grad.data_ptr<float>();
    args.rows = dembedded.data_ptr<float>();
    args.parts = parts.data_ptr<float>();
    prepare_shared_memory(input_stage_bwd_kernel<scalar_t>, shared_bytes, "input_stage_bwd",
                          tensors.item_seq.size(1), hidden);
    input_stage_bwd_kernel<scalar_t>
        <<<batch, kBlockThreads, shared_bytes, c10::cuda::getCurrentCUDAStream()>>>(args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace asrec
