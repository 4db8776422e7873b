// latentcv — watches PLUMED's output files (HILLS, COLVAR, ...) for write failures.
//
// PLUMED writes through C stdio and does not check for errors: on a full disk it goes on
// with lines lost or cut in half. The guard, run by `fix plumed` between steps, flushes
// every stdio stream of the process, checks that each file still ends with a whole line
// (cutting a half line away so that a restart never trips on it) and that the file system
// keeps a reserve of free space, so that the run stops before the disk is full.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace latentcv {

class OutputGuard {
 public:
  // `files`: PLUMED's output files; `reserve_bytes`: stop when less is free (0: never)
  void watch(const std::vector<std::string> &files, double reserve_bytes);
  // at most one check per `period` of wall time between forced checks
  bool due() const;
  // "" when every file is whole and enough space is free, else what went wrong (after
  // cutting any half line off the files)
  std::string check();
  // cut any half line off the files (after PLUMED closed them); what was cut, or ""
  std::string trim_half_lines();

 private:
  std::vector<std::string> files_;
  std::vector<std::string> folders_;
  double reserve_bytes_ = 0.0;
  std::chrono::steady_clock::time_point last_check_ = std::chrono::steady_clock::now();
  static constexpr std::chrono::seconds period{1};
};

// Cut a half line (bytes after the last '\n') off `path`; returns the bytes cut (0: none).
std::int64_t cut_half_line(const std::string &path);

}    // namespace latentcv
