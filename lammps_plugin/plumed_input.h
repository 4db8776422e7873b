// latentcv `fix plumed`: what plumed.dat asks for, read before PLUMED is (plain text checks).
#pragma once

#include <string>

namespace latentcv {

// The line number (from 1) of a `UNITS ... NATURAL` line, 0 if none.
int natural_units_line(const std::string &plumed_file);

// METAD ... WALKERS_N=n (n > 1) without WALKERS_MPI: the walkers share their HILLS files.
bool uses_file_walkers(const std::string &plumed_file);

}    // namespace latentcv
