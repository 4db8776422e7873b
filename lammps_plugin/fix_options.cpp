// latentcv `fix plumed`: keyword parsing and the checks of the files they name (fix_options.h).
#include "fix_options.h"

#include "plumed_input.h"

#include "comm.h"
#include "error.h"
#include "lammps.h"
#include "platform.h"
#include "update.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

using namespace LAMMPS_NS;

namespace latentcv {
namespace {

constexpr const char *kFixHelp =
    "use 'fix ID group plumed plumedfile plumed.dat [outfile plumed.log] "
    "[kernel PATH|optimised|bundled] [resume strict|lenient|no] [reserve MB]'";

double parse_megabytes(Error *error, const std::string &text)
{
  char *end = nullptr;
  const double mb = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(mb) || mb < 0.0)
    error->all(FLERR, "fix plumed: reserve '{}': give the free space to keep, in MB, a number >= 0 "
               "(0: never stop for lack of space)", text);
  return mb;
}

void read_keywords(Error *error, int narg, char **arg, FixOptions &o, std::string &log_file)
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
      o.plumed_file = value;
    else if (key == "outfile")
      log_file = value;
    else if (key == "kernel")
      o.kernel_choice = value;
    else if (key == "resume")
      o.resume = value;
    else
      o.reserve_bytes = parse_megabytes(error, value) * 1048576.0;
  }
}

void check_files(LAMMPS *lmp, const FixOptions &o)
{
  Error *error = lmp->error;
  if (o.plumed_file.empty()) error->all(FLERR, "fix plumed: no plumedfile given; {}", kFixHelp);
  if (std::filesystem::is_directory(o.plumed_file))
    error->all(FLERR, "fix plumed: plumedfile '{}' is a directory; give the PLUMED input file, "
               "e.g. plumedfile plumed.dat", o.plumed_file);
  if (!platform::file_is_readable(o.plumed_file))
    error->all(FLERR, "fix plumed: cannot open plumedfile '{}': no such readable file", o.plumed_file);
  if (lmp->comm->me == 0) {
    // PLUMED would fall back to the screen without a word: refuse an outfile it cannot write
    FILE *log = std::filesystem::is_directory(o.log_file) ? nullptr : fopen(o.log_file.c_str(), "a");
    if (log == nullptr)
      error->one(FLERR, "fix plumed: cannot write outfile '{}' (a directory, a missing folder or no "
                 "permission); give a writable file, e.g. outfile plumed.log", o.log_file);
    fclose(log);
  }
}

// `UNITS NATURAL` in plumed.dat with LAMMPS units other than lj relabels the engine's
// lengths (e.g. Angstrom) as reduced units without converting them: a silently wrong CV.
void check_plumed_units(LAMMPS *lmp, const std::string &plumed_file)
{
  const std::string units = lmp->update->unit_style;
  if (units == "lj") return;
  if (const int line = natural_units_line(plumed_file))
    lmp->error->all(FLERR, "fix plumed: {} line {} asks PLUMED for natural units (UNITS NATURAL) but LAMMPS "
                    "runs with `units {}`: PLUMED would read the lengths as reduced units without converting "
                    "them. Remove NATURAL (fix plumed passes the LAMMPS units to PLUMED), or run with `units lj`",
                    plumed_file, line, units);
}

}    // namespace

FixOptions parse_fix_options(LAMMPS *lmp, int narg, char **arg)
{
  FixOptions o;
  std::string log_file;
  read_keywords(lmp->error, narg, arg, o, log_file);
  if (o.resume != "strict" && o.resume != "lenient" && o.resume != "no")
    lmp->error->all(FLERR, "fix plumed: resume '{}': use strict (the default: PLUMED's files must hold what the "
                    "restart file recorded), lenient (restart from the files as they are) or no (a new bias)",
                    o.resume);
  if (o.kernel_choice == "optimized") o.kernel_choice = "optimised";
  if (!log_file.empty()) o.log_file = log_file;
  check_files(lmp, o);
  check_plumed_units(lmp, o.plumed_file);
  return o;
}

}    // namespace latentcv
