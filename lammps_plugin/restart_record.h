// latentcv — what `fix plumed` stores in a LAMMPS restart file, and the file operations a
// restart performs on PLUMED's output files (docs/restarts.md). No LAMMPS or PLUMED here:
// failures are std::runtime_error with a message the fix hands to LAMMPS's error machinery.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace latentcv {

// The state of PLUMED's output files at the step LAMMPS wrote a restart file.
struct RestartRecord {
  struct File {
    std::string path;         // relative to `folder` when it lies inside it, else absolute
    std::int64_t size = -1;   // bytes at `step`; -1: the file did not exist
  };
  int version = 2;            // 1: the first format (absolute paths, no folder)
  std::int64_t step = -1;     // the last step PLUMED had computed
  std::string folder;         // working folder of the run that wrote it ("" for version 1)
  std::vector<File> files;

  // the bytes written after LAMMPS's own length field
  std::string serialize() const;
  // reads what serialize() wrote (or a version-1 record); throws std::runtime_error on a
  // malformed or implausible record instead of reading past its end
  static RestartRecord parse(const char *buf);
};

// `path` as the record stores it: relative to `folder` when inside it, else absolute.
std::string path_for_record(const std::string &path, const std::string &folder);
// a stored path as a file of the run in `folder` (relative paths are resolved there)
std::string resolve_recorded_path(const std::string &stored, const std::string &folder);
// whether `path` lies inside `folder` (both made canonical as far as they exist)
bool lies_inside(const std::string &path, const std::string &folder);
// the process's working folder, canonical
std::string current_folder();
// size of `path` in bytes, -1 when it does not exist
std::int64_t file_size_or_missing(const std::string &path);

// Cut `path` back to `size` bytes, first copying the bytes cut away to a new file
// `<path>.cut.<step>` (`.cut.<step>.1`, ... if taken) that is flushed to disk before the cut.
// Returns that file's name. Throws std::runtime_error (the file untouched) if the copy fails.
std::string cut_keeping_tail(const std::string &path, std::int64_t size, std::int64_t step);

// the `<path>.cut.*` files an earlier restart left (for error messages)
std::vector<std::string> kept_tails(const std::string &path);

// What a restart may do with the recorded files, decided before anything is touched.
struct ResumePlan {
  struct Cut {
    std::string path;        // the file in this run
    RestartRecord::File recorded;
  };
  std::vector<Cut> cuts;     // files that hold at least what the record says
  std::string problems;      // one "\n  ..." line per file that is missing, shorter, or foreign
  // keep only the cuts of files in `outputs` (canonical paths the current input writes);
  // the others become problems
  void keep_outputs(const std::vector<std::string> &outputs, const std::string &plumed_file);
};
// the plan for `record` in the run whose working folder is `here`: a file outside `here`
// is foreign unless the record was written in `here` (walkers' shared folder)
ResumePlan plan_resume(const RestartRecord &record, const std::string &here);

}    // namespace latentcv
