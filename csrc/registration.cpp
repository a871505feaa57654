// The asrec CUDA ops, registered with the PyTorch dispatcher as asrec_cuda::* (CUDA keys).
// Their fake (shape-only) implementations live in Python (asrec/ops/<op>.py), so
// torch.compile traces them as opaque nodes. Importing asrec._C registers the ops.
#include <Python.h>
#include <torch/library.h>

#include <tuple>

namespace asrec {

at::Tensor input_stage_fwd(const at::Tensor& item_seq, const at::Tensor& item_weight,
                           const at::Tensor& position_weight, const at::Tensor& norm_weight,
                           const at::Tensor& norm_bias, const at::Tensor& smoothing_logit,
                           const at::Tensor& init_level, const at::Tensor& smoothed_scale, const at::Tensor& rng,
                           double eps, double dropout_p, bool dropping, double inv_sqrt_len, double mix);
std::tuple<at::Tensor, at::Tensor> input_stage_bwd(const at::Tensor& item_seq, const at::Tensor& item_weight,
                                                   const at::Tensor& position_weight, const at::Tensor& norm_weight,
                                                   const at::Tensor& norm_bias, const at::Tensor& smoothing_logit,
                                                   const at::Tensor& init_level, const at::Tensor& smoothed_scale,
                                                   const at::Tensor& grad, const at::Tensor& rng, double eps,
                                                   double dropout_p, bool dropping, double inv_sqrt_len, double mix);
int64_t input_stage_shared_memory(int64_t seq_len, int64_t hidden);
at::Tensor frequency_energy(const at::Tensor& y);
at::Tensor frequency_filter_fwd(const at::Tensor& y, const at::Tensor& keep, const at::Tensor& norm_weight,
                                const at::Tensor& norm_bias, const at::Tensor& rng, double eps, double dropout_p,
                                bool dropping);
std::tuple<at::Tensor, at::Tensor> frequency_filter_bwd(const at::Tensor& y, const at::Tensor& grad,
                                                        const at::Tensor& keep, const at::Tensor& norm_weight,
                                                        const at::Tensor& rng, double eps, double dropout_p,
                                                        bool dropping);
int64_t frequency_filter_shared_memory(int64_t seq_len, int64_t hidden);

}  // namespace asrec

TORCH_LIBRARY(asrec_cuda, m) {
  m.def(
      "input_stage_fwd(Tensor item_seq, Tensor item_weight, Tensor position_weight, Tensor norm_weight, "
      "Tensor norm_bias, Tensor smoothing_logit, Tensor init_level, Tensor smoothed_scale, Tensor rng, float eps, "
      "float dropout_p, bool dropping, float inv_sqrt_len, float mix) -> Tensor");
  m.def(
      "input_stage_bwd(Tensor item_seq, Tensor item_weight, Tensor position_weight, Tensor norm_weight, "
      "Tensor norm_bias, Tensor smoothing_logit, Tensor init_level, Tensor smoothed_scale, Tensor grad, "
      "Tensor rng, float eps, float dropout_p, bool dropping, float inv_sqrt_len, float mix) -> (Tensor, Tensor)");
  // Shared memory per block an op's kernels need at a shape (the Python dispatch asks before launching):
  // tensor-free, so one kernel for every dispatch key.
  m.def("input_stage_shared_memory(int seq_len, int hidden) -> int", &asrec::input_stage_shared_memory);
  m.def("frequency_energy(Tensor y) -> Tensor");
  m.def(
      "frequency_filter_fwd(Tensor y, Tensor keep, Tensor norm_weight, Tensor norm_bias, Tensor rng, float eps, "
      "float dropout_p, bool dropping) -> Tensor");
  m.def(
      "frequency_filter_bwd(Tensor y, Tensor grad, Tensor keep, Tensor norm_weight, Tensor rng, float eps, "
      "float dropout_p, bool dropping) -> (Tensor, Tensor)");
  m.def("frequency_filter_shared_memory(int seq_len, int hidden) -> int", &asrec::frequency_filter_shared_memory);
}

TORCH_LIBRARY_IMPL(asrec_cuda, CUDA, m) {
  m.impl("input_stage_fwd", &asrec::input_stage_fwd);
  m.impl("input_stage_bwd", &asrec::input_stage_bwd);
  m.impl("frequency_energy", &asrec::frequency_energy);
  m.impl("frequency_filter_fwd", &asrec::frequency_filter_fwd);
  m.impl("frequency_filter_bwd", &asrec::frequency_filter_bwd);
}

// A module with no Python functions: importing it loads the library and runs the registrations above.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "asrec CUDA ops (torch.ops.asrec_cuda)", -1,
                                      nullptr, nullptr, nullptr, nullptr, nullptr};
  return PyModule_Create(&module);
}
