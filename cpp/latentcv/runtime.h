// latentcv C++ core: torch's process-wide settings. torch's intra-op thread pool and the
// TorchScript graph executor are global, shared by every Model in the process: the
// adapters (PLUMED action, Python bindings) set them, not the Model.
#pragma once

namespace latentcv {

// More threads than this per core is a typo, and would exhaust the machine.
constexpr int kMaxThreadsPerCore = 4;

// Throws latentcv::Error unless 0 <= threads <= kMaxThreadsPerCore × cores.
void check_threads(int threads);

// PROCESS-WIDE: sets torch's intra-op threads (threads > 0; 0 leaves torch's default) and
// turns off the JIT profiling executor and graph optimisation, for every model in the
// process. Call it before building a Model. Throws latentcv::Error as check_threads().
void configure_torch_runtime(int threads);

}  // namespace latentcv
