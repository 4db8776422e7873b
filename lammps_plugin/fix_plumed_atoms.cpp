// latentcv `fix plumed`: the atoms PLUMED was given. Each atom carries the ID it had when the
// fix was defined (per-atom data LAMMPS moves with it through sorting, migration, deletion and
// creation); every step, before PLUMED sees them, the count, presence and identity of the atoms
// are checked (docs/lammps-plugin.md, "Atoms changed under the fix").

#include "fix_plumed.h"

#include "atom.h"
#include "memory.h"
#include "update.h"

#include <string>

using namespace LAMMPS_NS;

namespace latentcv {
namespace {

// the remedy named by every error about atoms that changed under the fix
std::string redefine_hint(const std::string &id)
{
  return "PLUMED's atom list and its bias refer to the atoms as they were when fix " + id +
         " was defined; the hills deposited so far are in PLUMED's files. Change the atoms before "
         "defining fix plumed, or `unfix " + id + "` and define it again after the change";
}

}    // namespace

void FixPlumed::check_atoms()
{
  // The atoms PLUMED sees must be those it was given when the fix was defined: the same
  // count, all present, each with the ID it had then (identity_). Atoms that left the box
  // are gone before LAMMPS counts them (at the next thermo output).
  bigint local[3] = {atom->nlocal, 0, 0}, total[3] = {0, 0, 0};
  for (int i = 0; i < atom->nlocal; ++i)
    if (identity_[i] != atom->tag[i]) ++local[identity_[i] == 0 ? 2 : 1];
  MPI_Allreduce(local, total, 3, MPI_LMP_BIGINT, MPI_SUM, world);
  const bigint expected = natoms_;
  if (atom->natoms != expected)
    fail(fmt::format("fix plumed: the number of atoms changed from {} to {} (delete_atoms, create_atoms, "
                     "replicate, read_data add, fix deposit/evaporate, ...). ", expected, atom->natoms) +
             redefine_hint(id), true);
  if (total[0] != expected)
    fail(fmt::format("fix plumed: Lost atoms: {} of {} atoms left at step {}. The simulation blew up "
                     "before the bias was applied (time step too large, atoms overlapping, or a far too hot "
                     "start); check the time step and the starting structure", total[0], expected,
                     update->ntimestep), true);
  if (total[2] > 0)
    fail(fmt::format("fix plumed: {} atom(s) created and as many deleted since fix {} was defined "
                     "(create_atoms, delete_atoms, ...): same count, other atoms. ", total[2], id) +
             redefine_hint(id), true);
  if (total[1] > 0)
    fail(fmt::format("fix plumed: the IDs of {} atom(s) changed since fix {} was defined (reset_atoms id, "
                     "delete_atoms ... compress yes, or atoms deleted and created): PLUMED would bias other "
                     "atoms than before. ", total[1], id) + redefine_hint(id), true);
}

/* ---------------------------------------------------------------------- */

void FixPlumed::grow_arrays(int nmax)
{
  memory->grow(identity_, nmax, "fix_plumed:identity");
}

void FixPlumed::copy_arrays(int i, int j, int /*delflag*/)
{
  identity_[j] = identity_[i];
}

void FixPlumed::set_arrays(int i)
{
  identity_[i] = 0;    // created after the fix was defined
}

int FixPlumed::pack_exchange(int i, double *buf)
{
  buf[0] = ubuf(identity_[i]).d;
  return 1;
}

int FixPlumed::unpack_exchange(int nlocal, double *buf)
{
  identity_[nlocal] = static_cast<tagint>(ubuf(buf[0]).i);
  return 1;
}

}    // namespace latentcv
