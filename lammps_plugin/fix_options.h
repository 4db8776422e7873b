// latentcv `fix plumed`: its keywords, checked.
//
//   fix ID group plumed plumedfile FILE [outfile FILE] [kernel K] [resume R] [reserve MB]
#pragma once

#include <string>

namespace LAMMPS_NS {
class LAMMPS;
}

namespace latentcv {

struct FixOptions {
  std::string plumed_file;
  std::string log_file = "plumed.log";
  std::string kernel_choice;              // a path, "optimised", "bundled" or "" (plumed_kernel.h)
  std::string resume = "strict";          // strict, lenient or no (docs/restarts.md)
  double reserve_bytes = 16.0 * 1048576.0;    // free space kept (output_guard.h)
};

// The keywords of `arg` (from arg[3]), each a LAMMPS error when wrong: unknown, without a
// value, a plumedfile that is missing or a directory, an outfile PLUMED could not write (it
// would fall back to the screen without a word), `UNITS NATURAL` under physical LAMMPS units.
FixOptions parse_fix_options(LAMMPS_NS::LAMMPS *lmp, int narg, char **arg);

}    // namespace latentcv
