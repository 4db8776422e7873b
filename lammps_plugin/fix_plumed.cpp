// latentcv — `fix plumed` as a LAMMPS plugin (see fix_plumed.h, docs/lammps-plugin.md).
//
// Data flow per MD step (post_force): LAMMPS hands PLUMED (on rank 0) its positions,
// forces, masses, charges, box, a virial buffer and (only when a PLUMED action asks
// for it) the potential energy; PLUMED adds the bias forces into the force array
// in place and fills the virial buffer, which becomes this fix's virial; the bias
// energy is this fix's global scalar and, with `fix_modify ID energy yes` (default),
// part of the potential energy LAMMPS reports.

#include "fix_plumed.h"

#include "plumed_kernel.h"
#include "process_guard.h"

#include "latentcv/lammps_units.h"

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "modify.h"
#include "output.h"
#include "pair.h"
#include "timer.h"
#include "update.h"
#include "utils.h"

#include <cmath>
#include <exception>
#include <string>

using namespace LAMMPS_NS;
using namespace LAMMPS_NS::FixConst;

namespace latentcv {
namespace {

const std::vector<int> kNoAtomOrder;    // ranks without PLUMED

}    // namespace

/* ---------------------------------------------------------------------- */

FixPlumed::FixPlumed(LAMMPS *lmp, int narg, char **arg) :
    Fix(lmp, narg, arg), options_(parse_fix_options(lmp, narg, arg)), exchange_(lmp)
{
  check_run_environment(lmp, *this);    // before PLUMED is touched
  natoms_ = static_cast<int>(atom->natoms);
  follow_python_wrapper();        // no orphaned LAMMPS writing HILLS after its `lmp` is killed

  scalar_flag = 1;                // f_ID = bias energy
  extscalar = 1;
  energy_global_flag = 1;         // fix_modify ID energy yes|no
  virial_global_flag = 1;         // fix_modify ID virial yes|no
  thermo_energy = 1;              // on by default, as for LAMMPS's own fix plumed
  thermo_virial = 1;

  // computes for the (rarely needed) potential energy and virial handed to PLUMED;
  // created before PLUMED reads its input so that the ids exist when init() runs
  id_pe_ = std::string(id) + "_latentcv_pe";
  id_press_ = std::string(id) + "_latentcv_press";
  c_pe_ = modify->add_compute(id_pe_ + " all pe");
  c_press_ = modify->add_compute(id_press_ + " all pressure NULL virial");

  restart_global = 1;             // write_restart() / restart(): no hill lost or repeated

  // each atom's identity travels with it (sorting, migration, deletion, creation)
  create_attribute = 1;           // set_arrays() marks atoms created later
  maxexchange = 1;
  FixPlumed::grow_arrays(atom->nmax);
  atom->add_callback(LAMMPS_NS::Atom::GROW);
  for (int i = 0; i < atom->nlocal; ++i) identity_[i] = atom->tag[i];

  // After read_restart LAMMPS hands a fix its stored state right after this constructor;
  // PLUMED must not read its files before restart() has cut them back to that state.
  if (modify->nfix_restart_global == 0) open_plumed(options_.log_file, false);
}

/* ---------------------------------------------------------------------- */

FixPlumed::~FixPlumed()
{
  if (copymode) return;
  plumed_.reset();    // finalises PLUMED: flushes and closes its output files
  if (atom) atom->delete_callback(id, LAMMPS_NS::Atom::GROW);
  memory->destroy(identity_);
  if (modify) {
    if (!id_pe_.empty() && modify->get_compute_by_id(id_pe_)) modify->delete_compute(id_pe_);
    if (!id_press_.empty() && modify->get_compute_by_id(id_press_))
      modify->delete_compute(id_press_);
  }
}

/* ---------------------------------------------------------------------- */

void FixPlumed::open_plumed(const std::string &log_file, bool restart)
{
  // the units and the kernel are decided before PLUMED is loaded: a bad choice is a plain
  // LAMMPS error on every rank
  const LammpsUnitStyle *units = find_lammps_unit_style(update->unit_style);
  if (units == nullptr)
    error->all(FLERR, "fix plumed (latentcv plugin) supports units {}, not '{}'", lammps_unit_style_names(),
               update->unit_style);
  KernelLocation kernel;
  try {
    kernel = locate_kernel(options_.kernel_choice);
  } catch (const std::exception &e) {
    error->all(FLERR, std::string(e.what()));
  }
  if (kernel.path.empty())
    error->all(FLERR,
               "fix plumed: no PLUMED kernel found. Set PLUMED_KERNEL to the path of "
               "libplumedKernel.so (`latentcv paths` prints it)");
  plumed_opened_ = true;
  given_dt_ = update->dt;
  if (comm->me != 0) return;    // PLUMED runs on rank 0 (rank_exchange.h)

  int api = 0;
  try {
    plumed_ = std::make_unique<PlumedSession>(kernel.path, kernel.origin);
    api = plumed_->check_api();
    plumed_outputs_ = plumed_->start({units, natoms_, given_dt_, options_.plumed_file, log_file, restart});
  } catch (const PlumedError &e) {
    root_error(e.what());
  }
  guard_.watch(plumed_outputs_, options_.reserve_bytes);
  if (log_file == options_.log_file) log_session(kernel.path, kernel.origin, api);
}

void FixPlumed::log_session(const std::string &kernel, const std::string &origin, int api)
{
  const LammpsUnitStyle &u = *find_lammps_unit_style(update->unit_style);
  utils::logmesg(lmp, "fix plumed (latentcv): PLUMED kernel {} (from {}), API version {}\n", kernel, origin, api);
  if (u.natural())
    utils::logmesg(lmp, "fix plumed (latentcv): units lj -> PLUMED natural units\n");
  else
    utils::logmesg(lmp,
                   "fix plumed (latentcv): units {} -> 1 energy = {} kJ/mol, 1 length = {} nm, "
                   "1 time = {} ps, 1 mass = {} amu, 1 charge = {} e\n",
                   u.name, u.kj_per_mol, u.nm, u.ps, u.amu, u.e);
  utils::logmesg(lmp, "fix plumed (latentcv): input {}, PLUMED log {}\n", options_.plumed_file,
                 options_.log_file);
}

/* ---------------------------------------------------------------------- */

void FixPlumed::root_error(const std::string &message)
{
  // PLUMED lives on rank 0 only: its failures are seen there alone (error->all would wait
  // for the other ranks forever); with one rank error->all keeps LAMMPS usable from Python
  if (comm->nprocs == 1) error->all(FLERR, message);
  error->one(FLERR, message);
}

void FixPlumed::fail(const std::string &message, bool on_all_ranks)
{
  // nothing deposited is lost: PLUMED is finalised first (its files flushed and closed, a
  // line cut in half by a failed write removed), then the error stops the run
  std::string cut;
  if (plumed_) {
    try {
      plumed_.reset();
    } catch (...) {
    }
    cut = guard_.trim_half_lines();
  }
  closed_by_error_ = true;
  const std::string text = cut.empty() ? message : message + " (" + cut.substr(1, cut.size() - 2) + ")";
  if (on_all_ranks) error->all(FLERR, text);
  root_error(text);
}

/* ---------------------------------------------------------------------- */

int FixPlumed::setmask()
{
  return POST_FORCE | MIN_POST_FORCE;
}

/* ---------------------------------------------------------------------- */

void FixPlumed::init()
{
  if (utils::strmatch(update->integrate_style, "^respa"))
    error->all(FLERR, "fix plumed (latentcv plugin) does not support run_style respa");
  if (closed_by_error_)
    error->all(FLERR, "fix plumed: PLUMED was closed by an earlier error (its files are flushed); "
               "`unfix {}` and define fix plumed again", id);
  if (!plumed_opened_) open_plumed(options_.log_file, false);    // deferred after read_restart, but no state was stored for us

  c_pe_ = modify->get_compute_by_id(id_pe_);
  c_press_ = modify->get_compute_by_id(id_press_);
  if (!c_pe_ || !c_press_)
    error->all(FLERR, "fix plumed: its internal computes {} / {} were deleted", id_pe_,
               id_press_);

  // a pressure computed before our first post_force() must not see a stale virial
  for (double &v : virial) v = 0.0;
}

/* ---------------------------------------------------------------------- */

void FixPlumed::setup(int vflag)
{
  post_force(vflag);
}

void FixPlumed::min_setup(int vflag)
{
  post_force(vflag);
}

void FixPlumed::min_post_force(int vflag)
{
  post_force(vflag);
}

/* ---------------------------------------------------------------------- */

void FixPlumed::post_force(int /*vflag*/)
{
  check_atoms();    // before PLUMED sees any of them
  if (comm->me == 0 && !plumed_) fail("fix plumed: PLUMED is not open (an earlier error closed it)", false);

  for (double &v : virial) v = 0.0;    // our virial must not enter the pressure PLUMED sees
  exchange_.gather(natoms_, plumed_ ? plumed_->atom_order() : kNoAtomOrder);

  // box: rows are the lattice vectors a = (lx,0,0), b = (xy,ly,0), c = (xz,yz,lz)
  const double *h = domain->h;    // Voigt order: lx, ly, lz, yz, xz, xy
  const double box[3][3] = {{h[0], 0.0, 0.0}, {h[5], h[1], 0.0}, {h[4], h[3], h[2]}};
  for (auto &row : plumed_virial_)
    for (double &v : row) v = 0.0;
  const bool need_energy = pass_atoms(box);

  double lammps_virial[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};    // sum r (x) f, energy units
  if (need_energy) energy_for_plumed(lammps_virial);
  compute_bias(need_energy);
  exchange_.share_results(bias_, plumed_virial_, stop_flag_);
  exchange_.scatter_forces();
  set_virial(lammps_virial);

  last_step_ = update->ntimestep;
  if (stop_flag_) timer->force_timeout();    // e.g. COMMITTOR asked to stop

  request_energy_next_step();
  if (comm->me == 0 && guard_.due()) check_outputs();    // at most once a second of wall time
}

bool FixPlumed::pass_atoms(const double box[3][3])
{
  // the gathered atoms to PLUMED (rank 0); whether it needs the energy, on every rank
  int need_energy = 0;
  if (comm->me == 0) {
    try {
      need_energy = plumed_->receive(update->ntimestep, box, exchange_.atoms(), &plumed_virial_[0][0]) ? 1 : 0;
    } catch (const PlumedError &e) {
      root_error(e.what());
    }
  }
  exchange_.share(need_energy);
  return need_energy != 0;
}

void FixPlumed::energy_for_plumed(double lammps_virial[6])
{
  // every rank: compute pe and compute pressure sum over the ranks
  if (force->pair && force->pair->tail_flag && comm->me == 0 && update->ntimestep == update->firststep)
    error->warning(FLERR, "fix plumed: PLUMED biases the energy but pair_modify tail yes adds "
                          "a tail correction that PLUMED cannot bias");
  // PE without this fix's bias (compute pe includes fix energies)
  excluding_bias_ = true;
  energy_ = c_pe_->compute_scalar();
  excluding_bias_ = false;
  // virial-only pressure -> virial in energy units
  c_press_->compute_vector();
  double volume = domain->xprd * domain->yprd;
  if (domain->dimension == 3) volume *= domain->zprd;
  for (int i = 0; i < 6; ++i) {
    lammps_virial[i] = c_press_->vector[i] * volume / force->nktv2p;
    if (!std::isfinite(lammps_virial[i]))
      error->all(FLERR, "fix plumed: the virial handed to PLUMED is not finite");
  }
  // PLUMED's convention is minus LAMMPS's; full symmetric 3x3
  const int pairs[6][2] = {{0, 0}, {1, 1}, {2, 2}, {0, 1}, {0, 2}, {1, 2}};
  for (int k = 0; k < 6; ++k) {
    plumed_virial_[pairs[k][0]][pairs[k][1]] = -lammps_virial[k];
    plumed_virial_[pairs[k][1]][pairs[k][0]] = -lammps_virial[k];
  }
}

void FixPlumed::compute_bias(bool need_energy)
{
  if (comm->me != 0) return;
  // A step PLUMED has already seen (the setup of a second `run`, or a minimisation
  // starting where a run ended) is recomputed for its forces, but without PLUMED's
  // update stage: METAD would deposit the same hill twice and PRINT repeat a row.
  const bool repeated_step = (update->ntimestep == last_step_);
  // LAMMPS writes a restart file at the end of this step: PLUMED flushes its files then,
  // so that the sizes write_restart() records hold every hill up to this step
  const bool checkpoint = output->restart_flag && update->ntimestep == output->next_restart;
  try {
    bias_ = plumed_->compute(need_energy ? &energy_ : nullptr, checkpoint, repeated_step);
  } catch (const PlumedError &e) {
    root_error(e.what());
  }
  stop_flag_ = plumed_->stop_requested();
}

void FixPlumed::set_virial(const double lammps_virial[6])
{
  // this fix's virial = PLUMED's contribution only (if PLUMED was given LAMMPS's virial
  // it hands back LAMMPS's + its own, possibly rescaled)
  virial[0] = -plumed_virial_[0][0] - lammps_virial[0];
  virial[1] = -plumed_virial_[1][1] - lammps_virial[1];
  virial[2] = -plumed_virial_[2][2] - lammps_virial[2];
  virial[3] = -0.5 * (plumed_virial_[0][1] + plumed_virial_[1][0]) - lammps_virial[3];
  virial[4] = -0.5 * (plumed_virial_[0][2] + plumed_virial_[2][0]) - lammps_virial[4];
  virial[5] = -0.5 * (plumed_virial_[1][2] + plumed_virial_[2][1]) - lammps_virial[5];
  if (comm->me != 0)    // LAMMPS sums the fixes' virials over the ranks: rank 0 holds PLUMED's
    for (double &v : virial) v = 0.0;
}

void FixPlumed::request_energy_next_step()
{
  // LAMMPS tallies energy and virial only on steps someone asked for in advance: ask
  // PLUMED now whether it will need the energy on the next step.
  const bigint next = update->ntimestep + 1;
  int needed = 0;
  if (comm->me == 0) {
    try {
      needed = plumed_->energy_needed_at(next) ? 1 : 0;
    } catch (const PlumedError &e) {
      root_error(e.what());
    }
  }
  exchange_.share(needed);
  if (needed) {
    c_pe_->addstep(next);
    c_press_->addstep(next);
  }
}

/* ---------------------------------------------------------------------- */

void FixPlumed::check_outputs()
{
  // PLUMED does not check its writes: a full disk or an I/O error stops the run here
  const std::string problems = guard_.check();
  if (!problems.empty())
    fail(fmt::format("fix plumed: PLUMED's output at step {}:{}. Free space (or fix the file system) and "
                     "resume from the last restart file (read_restart + the same fix plumed line; "
                     "docs/restarts.md)", update->ntimestep, problems), false);
}

void FixPlumed::post_run()
{
  if (comm->me == 0 && plumed_) check_outputs();
}

/* ---------------------------------------------------------------------- */

void FixPlumed::reset_dt()
{
  // PLUMED takes the timestep once, before init: a changed one cannot be passed on
  if (std::fabs(update->dt - given_dt_) > 1e-12 * std::fabs(given_dt_))
    error->all(FLERR,
               "fix plumed: the timestep changed from {} to {} after fix plumed was defined "
               "(PLUMED cannot follow); put the timestep command before fix plumed",
               given_dt_, update->dt);
}

double FixPlumed::compute_scalar()
{
  return excluding_bias_ ? 0.0 : bias_;
}

double FixPlumed::memory_usage()
{
  return static_cast<double>((plumed_ ? plumed_->memory_bytes() : 0) + atom->nmax * sizeof(tagint));
}

}    // namespace latentcv
