#include "latentcv/runtime.h"

#include <torch/script.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <string>
#include <thread>

#include "latentcv/error.h"

namespace latentcv {

void check_threads(int threads) {
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  if (threads < 0 || threads > kMaxThreadsPerCore * cores)
    throw Error("THREADS=" + std::to_string(threads) + " is out of range: use 1 to " +
                std::to_string(kMaxThreadsPerCore * cores) + " (this machine has " + std::to_string(cores) +
                " cores; 1 per MD process is best on a shared machine), or 0 for torch's default.");
}

void configure_torch_runtime(int threads) {
  check_threads(threads);
  // Threads: torch's default pool spin-waits and collapses on a shared machine.
  if (threads > 0) at::set_num_threads(threads);
  // Shapes change with every neighbour-list rebuild: the profiling executor would
  // re-specialise; run the scripted graph as is.
  torch::jit::getProfilingMode() = false;
  torch::jit::setGraphExecutorOptimize(false);
}

}  // namespace latentcv
