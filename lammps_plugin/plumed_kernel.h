// latentcv `fix plumed`: which PLUMED kernel to dlopen() (docs/lammps-plugin.md, "Finding the
// PLUMED kernel"; cv_models/native/paths.py finds the same kernels for Python).
#pragma once

#include <string>

namespace latentcv {

struct KernelLocation {
  std::string path;      // empty: none found
  std::string origin;    // for the log and error messages
};

// `choice`: the `kernel` keyword (a path, "optimised", "bundled" or ""). A kernel the keyword
// names but that does not exist is a std::runtime_error (the fix's error text), not a fall-back.
KernelLocation locate_kernel(const std::string &choice);

}    // namespace latentcv
