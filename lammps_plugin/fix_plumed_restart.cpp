// latentcv `fix plumed`: restarts (docs/restarts.md). The record of PLUMED's files and the
// plan of what to cut are restart_record.*; here the fix's glue: when to record, the order of
// checks and cuts on read_restart, and restarting PLUMED from the files.

#include "fix_plumed.h"

#include "plumed_input.h"

#include "comm.h"
#include "error.h"
#include "update.h"
#include "utils.h"

#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

using namespace LAMMPS_NS;

namespace latentcv {

namespace {

// A refused resume, found on rank 0 (where PLUMED's files are checked): every rank then
// stops with the same error->all, so the message reaches the screen before MPI exits (an
// error->one on rank 0 aborts, and mpiexec can drop the output still on its way).
struct ResumeRefused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `text` of rank 0 on every rank.
std::string from_root(const std::string &text, MPI_Comm world)
{
  long long length = static_cast<long long>(text.size());
  MPI_Bcast(&length, 1, MPI_LONG_LONG, 0, world);
  std::vector<char> buffer(text.begin(), text.end());
  buffer.resize(static_cast<std::size_t>(length));
  if (length > 0) MPI_Bcast(buffer.data(), static_cast<int>(length), MPI_CHAR, 0, world);
  return std::string(buffer.begin(), buffer.end());
}

}    // namespace

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
  const bool resume = options_.resume != "no";
  std::string refusal;
  if (resume && comm->me == 0) {
    try {
      resume_files(record);
    } catch (ResumeRefused &e) {
      refusal = e.what();
    }
  }
  refusal = from_root(refusal, world);
  if (!refusal.empty()) error->all(FLERR, refusal);
  restored_ = resume;
  last_step_ = resume ? record.step : -1;    // the setup of the restart step repeats it: no second hill, row
  if (comm->me == 0 && !resume)
    utils::logmesg(lmp, "fix plumed (latentcv): resume no: PLUMED starts a new bias at step {} (its files "
                   "from step {} are left as they are)\n", update->ntimestep, record.step);
  plumed_.reset();
  open_plumed(options_.log_file, resume);
  MPI_Bcast(&last_step_, 1, MPI_LMP_BIGINT, 0, world);
}

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
  plan.keep_outputs(outputs_of_input(), options_.plumed_file);
  refuse_unless_lenient(plan.problems, "cannot resume PLUMED from the restart file of step " + step +
                        ": its input changed what it writes (nothing was cut):",
                        "\nUse the plumed.dat of the run that wrote the restart file; `resume lenient` leaves such "
                        "files alone, `resume no` starts a new bias");
  if (uses_file_walkers(options_.plumed_file)) {
    // the other walkers may already have read this walker's hills after the restart step:
    // they stay (in the common bias and in the files), only a line cut in half by the kill goes
    std::string report;
    for (const auto &cut : plan.cuts)
      if (const std::int64_t bytes = cut_half_line(cut.path); bytes > 0)
        report += fmt::format(" {} (a half line of {} bytes removed)", cut.recorded.path, bytes);
    utils::logmesg(lmp, "fix plumed (latentcv): restart from step {} of a walker (WALKERS_N in {}): PLUMED files "
                   "are not cut back, the hills after that step stay in the common bias:{}\n", step,
                   options_.plumed_file, report.empty() ? " (no half line)" : report);
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
  if (options_.resume == "strict") throw ResumeRefused("fix plumed: " + what + problems + remedy);
  error->warning(FLERR, "fix plumed: resume lenient, going on although:{}", problems);
}

}    // namespace latentcv
