// latentcv `fix plumed`: the PLUMED kernel's search order (plumed_kernel.h).
#include "plumed_kernel.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

namespace latentcv {
namespace {

// an address inside this shared object, for dladdr()
void plugin_anchor() {}

// the `kernel` keyword names one kernel: a missing one is an error, not a fall-back
KernelLocation named_kernel(const std::string &choice)
{
  std::error_code ec;
  if (choice == "optimised") {
#ifdef LATENTCV_OPTIMISED_PLUMED_KERNEL
    const std::string path = LATENTCV_OPTIMISED_PLUMED_KERNEL;
#else
    const std::string path;
#endif
    if (path.empty() || !fs::exists(fs::path(path), ec))
      throw std::runtime_error("fix plumed: kernel optimised: the optimised PLUMED kernel " +
                               (path.empty() ? std::string("(unknown at build time)") : path) +
                               " does not exist; build it with `make plumed-opt` in the latentcv checkout "
                               "(docs/install.md)");
    return {path, "keyword kernel optimised (`make plumed-opt`)"};
  }
  if (!fs::is_regular_file(fs::path(choice), ec))
    throw std::runtime_error("fix plumed: kernel " + choice +
                             ": no such file (give the path of a libplumedKernel.so, 'optimised' or 'bundled')");
  return {choice, "keyword kernel"};
}

// pip layout: <site-packages>/latentcv/cv_models/_lib/lammps/fixplumedplugin.so next to the
// `plumed` package of hillclimber: <site-packages>/plumed/_lib/lib/libplumedKernel.so
std::string kernel_next_to_plugin()
{
  std::error_code ec;
  Dl_info info;
  if (!dladdr(reinterpret_cast<void *>(&plugin_anchor), &info) || !info.dli_fname) return {};
  const fs::path here = fs::weakly_canonical(fs::path(info.dli_fname), ec).parent_path();
  const fs::path candidate = here.parent_path().parent_path().parent_path().parent_path() / "plumed" / "_lib" /
      "lib" / "libplumedKernel.so";
  return fs::exists(candidate, ec) ? candidate.string() : std::string();
}

}    // namespace

KernelLocation locate_kernel(const std::string &choice)
{
  if (!choice.empty() && choice != "bundled") return named_kernel(choice);
  // `kernel bundled` skips PLUMED_KERNEL: the kernel installed next to latentcv
  const char *env = choice.empty() ? std::getenv("PLUMED_KERNEL") : nullptr;
  if (env && *env) return {env, "environment variable PLUMED_KERNEL"};
  if (std::string pip = kernel_next_to_plugin(); !pip.empty())
    return {pip, "the plumed package installed next to latentcv"};
#ifdef LATENTCV_DEFAULT_PLUMED_KERNEL
  std::error_code ec;
  if (fs::exists(fs::path(LATENTCV_DEFAULT_PLUMED_KERNEL), ec))
    return {LATENTCV_DEFAULT_PLUMED_KERNEL, "the PLUMED kernel latentcv was built against"};
#endif
  return {};
}

}    // namespace latentcv
