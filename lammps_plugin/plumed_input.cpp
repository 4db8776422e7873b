// latentcv `fix plumed`: plain-text checks of plumed.dat (plumed_input.h).
#include "plumed_input.h"

#include "utils.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <vector>

namespace latentcv {
namespace {

// plumed.dat as upper-case words per line, comments removed (line i+1 = entry i)
std::vector<std::vector<std::string>> input_words(const std::string &plumed_file)
{
  std::vector<std::vector<std::string>> lines;
  std::ifstream in(plumed_file);
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find('#'));
    for (char &c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    lines.push_back(LAMMPS_NS::utils::split_words(line));
  }
  return lines;
}

}    // namespace

int natural_units_line(const std::string &plumed_file)
{
  const auto lines = input_words(plumed_file);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto &words = lines[i];
    if (words.empty() || words[0] != "UNITS") continue;
    for (const auto &w : words)
      if (w == "NATURAL" || w.rfind("NATURAL=", 0) == 0) return static_cast<int>(i + 1);
  }
  return 0;
}

bool uses_file_walkers(const std::string &plumed_file)
{
  bool walkers = false, mpi = false;
  for (const auto &words : input_words(plumed_file))
    for (const auto &w : words) {
      if (w.rfind("WALKERS_N=", 0) == 0) walkers = walkers || std::atoi(w.c_str() + 10) > 1;
      if (w == "WALKERS_MPI") mpi = true;
    }
  return walkers && !mpi;
}

}    // namespace latentcv
