// Launch plumbing shared by the asrec CUDA ops: the current stream, dynamic shared memory
// beyond the 48 KiB default, and the check that a launch fits the device.
#pragma once

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstddef>

// AT_DISPATCH over the kernels' input dtypes (float64 is the reference backend's).
#define ASREC_DISPATCH_KERNEL_TYPES(TYPE, NAME, ...)                 \
  AT_DISPATCH_SWITCH(TYPE, NAME, AT_DISPATCH_CASE(at::kFloat, __VA_ARGS__) \
                         AT_DISPATCH_CASE(at::kBFloat16, __VA_ARGS__)    \
                             AT_DISPATCH_CASE(at::kHalf, __VA_ARGS__))

namespace asrec {

// Opt `kernel` into `bytes` of dynamic shared memory, or fail naming the op and the shape.
template <typename Kernel>
void prepare_shared_memory(Kernel kernel, size_t bytes, const char* op, int64_t seq_len, int64_t hidden) {
  int device = 0, available = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&available, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  TORCH_CHECK(bytes <= static_cast<size_t>(available), "asrec_cuda::", op, ": seq_len=", seq_len, ", hidden=", hidden,
              " needs ", bytes, " bytes of shared memory per block, the device has ", available,
              " (use the 'triton' or 'reference' backend for this shape)");
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
}

}  // namespace asrec
