// Runs the CUDA kernels of csrc/ on the host: one thread block at a time, its threads as
// std::threads, __syncthreads as a block-wide barrier, warp shuffles through a per-warp
// exchange between two warp-wide barriers. For tests on machines without a GPU: it checks
// the kernels' indexing, phase order and arithmetic, not the GPU's memory model or speed.
#pragma once

#include <barrier>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__
#define __shared__
#define __launch_bounds__(...)

struct EmulatedDim3 {
  unsigned x = 0, y = 1, z = 1;
};

inline thread_local EmulatedDim3 threadIdx, blockIdx;
inline EmulatedDim3 blockDim, gridDim;

namespace emulator {

constexpr int kMaxThreads = 256, kWarp = 32, kMaxWarps = kMaxThreads / kWarp;
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::unique_ptr<std::barrier<>> warp_barriers[kMaxWarps];
inline float warp_exchange[kMaxWarps][kWarp];

// Runs kernel(args) over `grid` blocks of `threads` threads, one block after another.
template <typename Kernel, typename Args>
void launch(Kernel kernel, int grid, int threads, const Args& args) {
  blockDim.x = static_cast<unsigned>(threads);
  gridDim.x = static_cast<unsigned>(grid);
  block_barrier = std::make_unique<std::barrier<>>(threads);
  for (int w = 0; w < threads / kWarp; ++w) warp_barriers[w] = std::make_unique<std::barrier<>>(kWarp);
  for (int block = 0; block < grid; ++block) {
    std::vector<std::thread> team;
    team.reserve(threads);
    for (int t = 0; t < threads; ++t) {
      team.emplace_back([=] {
        threadIdx.x = static_cast<unsigned>(t);
        blockIdx.x = static_cast<unsigned>(block);
        kernel(args);
      });
    }
    for (auto& thread : team) thread.join();
  }
}

}  // namespace emulator

inline void __syncthreads() { emulator::block_barrier->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned /*mask*/, float value, int lane_mask) {
  const int warp = threadIdx.x / emulator::kWarp, lane = threadIdx.x % emulator::kWarp;
  emulator::warp_barriers[warp]->arrive_and_wait();  // the previous exchange has been read
  emulator::warp_exchange[warp][lane] = value;
  emulator::warp_barriers[warp]->arrive_and_wait();
  return emulator::warp_exchange[warp][lane ^ lane_mask];
}

// sin and cos of pi * x, exact at multiples of 1/2 as CUDA's sincospi.
inline void sincospi(double x, double* sine, double* cosine) {
  const double reduced = std::remainder(x, 2.0);  // [-1, 1]
  if (reduced * 2.0 == std::floor(reduced * 2.0)) {
    const int quarter = static_cast<int>(std::lround(reduced * 2.0));  // -2..2
    static const double sines[] = {0.0, -1.0, 0.0, 1.0, 0.0}, cosines[] = {-1.0, 0.0, 1.0, 0.0, -1.0};
    *sine = sines[quarter + 2];
    *cosine = cosines[quarter + 2];
    return;
  }
  *sine = std::sin(M_PI * reduced);
  *cosine = std::cos(M_PI * reduced);
}

// The kernels' dynamic shared memory (`extern __shared__ float <name>[]` inside namespace
// asrec), one block at a time.
namespace asrec {
float shared[1 << 16];
float norm_grad_parts[1 << 14];
}  // namespace asrec
