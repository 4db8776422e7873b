// latentcv C++ core: the error type. Engines (PLUMED, LAMMPS, Python) turn it into their
// own error mechanism; its message always says what to do.
#pragma once
#include <stdexcept>
#include <string>

namespace latentcv {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error("latentcv: " + what) {}
};

}  // namespace latentcv
