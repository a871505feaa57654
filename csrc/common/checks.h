// Argument checks for the asrec CUDA ops: each failure names the op, the argument, what
// was expected and what was given (a TORCH_CHECK raises a Python RuntimeError).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace asrec {

inline void check_cuda(const at::Tensor& tensor, const char* op, const char* name) {
  TORCH_CHECK(tensor.is_cuda(), "asrec_cuda::", op, ": ", name, " must be a CUDA tensor, got one on ",
              tensor.device());
}

inline void check_same_device(const at::Tensor& tensor, const at::Tensor& reference, const char* op,
                              const char* name) {
  TORCH_CHECK(tensor.device() == reference.device(), "asrec_cuda::", op, ": ", name, " is on ", tensor.device(),
              ", expected ", reference.device());
}

inline void check_floating(const at::Tensor& tensor, const char* op, const char* name) {
  const auto dtype = tensor.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf, "asrec_cuda::", op, ": ", name,
              " must be float32, bfloat16 or float16, got ", dtype);
}

inline void check_contiguous(const at::Tensor& tensor, const char* op, const char* name) {
  TORCH_CHECK(tensor.is_contiguous(), "asrec_cuda::", op, ": ", name, " must be contiguous");
}

inline void check_shape(const at::Tensor& tensor, at::IntArrayRef expected, const char* op, const char* name) {
  TORCH_CHECK(tensor.sizes() == expected, "asrec_cuda::", op, ": ", name, " must have shape ", expected, ", got ",
              tensor.sizes());
}

inline void check_rank(const at::Tensor& tensor, int64_t rank, const char* op, const char* name) {
  TORCH_CHECK(tensor.dim() == rank, "asrec_cuda::", op, ": ", name, " must have ", rank, " dimensions, got shape ",
              tensor.sizes());
}

// A call's dropout Philox state: a contiguous (2,) int64 tensor (seed, offset) on the
// inputs' device, which the kernels read (the host never does: no sync, and a CUDA graph
// replay reads the tensor's current contents). Checked only when the kernel drops.
inline const int64_t* checked_rng(const at::Tensor& rng, const at::Tensor& reference, bool dropping,
                                  const char* op) {
  if (!dropping) return nullptr;
  TORCH_CHECK(rng.scalar_type() == at::kLong && rng.numel() == 2 && rng.is_contiguous(), "asrec_cuda::", op,
              ": rng must be a contiguous (2,) int64 tensor (seed, offset), got ", rng.scalar_type(), " ",
              rng.sizes());
  check_same_device(rng, reference, op, "rng");
  return rng.data_ptr<int64_t>();
}

inline void check_dropout(double dropout_p, const char* op) {
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "asrec_cuda::", op, ": dropout_p must be in [0, 1), got ",
              dropout_p);
}

// A small parameter tensor as contiguous float32 (the kernels read parameters in float32).
inline at::Tensor as_float_parameter(const at::Tensor& tensor) {
  return tensor.to(at::kFloat).contiguous();
}

}  // namespace asrec
