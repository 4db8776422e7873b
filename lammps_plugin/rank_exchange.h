// latentcv `fix plumed`: PLUMED runs on rank 0 (the bundled kernel has no MPI; the CV is one
// model evaluation on all atoms anyway). Every step each rank's atoms are gathered there in rank
// order, PLUMED's results are broadcast and its forces go back to their ranks. With one rank
// PLUMED reads LAMMPS's own arrays (no copy) and every exchange is a no-op.
#pragma once

#include "pointers.h"

#include "plumed_session.h"

#include <vector>

namespace latentcv {

class RankExchange : protected LAMMPS_NS::Pointers {
 public:
  explicit RankExchange(LAMMPS_NS::LAMMPS *lmp) : Pointers(lmp) {}

  // index (tag - 1), positions, forces, masses, charges of every rank's atoms, on rank 0.
  // `plumed_order`: the order PLUMED knows; with one rank masses and charges are read again
  // only when the order changed (PLUMED keeps them).
  void gather(int natoms, const std::vector<int> &plumed_order);
  StepAtoms atoms();    // rank 0, after gather(): what PLUMED reads
  void scatter_forces();    // the forces PLUMED changed, back to their ranks
  void share(int &flag);    // rank 0's value on every rank
  // PLUMED's results from rank 0 to all: bias, its virial, its stop request
  void share_results(double &bias, double virial[3][3], int &stop);

 private:
  bool has_charges_ = false;
  int natoms_ = 0;
  // this rank's atoms, and (rank 0, more than one rank) every rank's, gathered in rank order
  std::vector<int> local_index_, all_index_, counts_, displs_, counts3_, displs3_;
  std::vector<double> local_mass_, local_charge_, all_mass_, all_charge_, all_x_, all_f_;
};

}    // namespace latentcv
