// latentcv `fix plumed`: one PLUMED instance (rank 0), the kernel dlopen()ed by path, set up in
// LAMMPS's units (cpp/latentcv/lammps_units.h) and driven step by step. Hides Plumed.h from the
// fix. Every PLUMED failure is a PlumedError whose message is the fix's error text, naming the
// stage; the fix raises it through LAMMPS's error machinery.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace latentcv {

struct LammpsUnitStyle;

class PlumedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What PLUMED is told once, before it reads its input.
struct SessionSetup {
  const LammpsUnitStyle *units;    // lj: PLUMED's natural units
  int natoms;
  double dt;                       // MD time units
  std::string plumed_file, log_file;
  bool restart;                    // as RESTART in plumed.dat: read HILLS, append to files
};

// The atoms of one step as PLUMED reads them (pointers stay valid until compute() returns).
struct StepAtoms {
  const std::vector<int> &index;    // atom tag - 1, in the order of x and f
  const std::vector<double> &mass, &charge;
  double *x, *f;                    // 3 per atom
  std::size_t n3;
  bool has_charges;
};

class PlumedSession {
 public:
  // `origin`: where the kernel was found, for the error if it does not load (PlumedError)
  PlumedSession(const std::string &kernel, const std::string &origin);
  ~PlumedSession();                                      // finalises PLUMED: its files flushed, closed
  PlumedSession(const PlumedSession &) = delete;
  PlumedSession &operator=(const PlumedSession &) = delete;

  int check_api();    // PLUMED's API version; PlumedError if it is too old for this fix
  // units, atoms, time step, files; then PLUMED reads its input. Returns the regular files it
  // opened for writing meanwhile (HILLS, COLVAR, ...; not its log), by canonical path.
  std::vector<std::string> start(const SessionSetup &setup);

  // One MD step: the atoms, box (rows a, b, c) and virial buffer (PLUMED's convention, -sum r (x) f,
  // filled by compute()); whether PLUMED needs the potential energy this step.
  bool receive(long long step, const double box[3][3], const StepAtoms &atoms, double *virial);
  // PLUMED's forces added to atoms.f; its bias. `energy`: nullptr unless receive() asked for it;
  // `checkpoint`: flush the files (a restart file is written); `repeated_step`: no update (hills, rows).
  double compute(double *energy, bool checkpoint, bool repeated_step);
  int stop_requested() const { return stop_flag_; }    // e.g. COMMITTOR, after compute()
  bool energy_needed_at(long long step);
  const std::vector<int> &atom_order() const { return gatindex_; }
  std::size_t memory_bytes() const;

 private:
  void set_atom_order(const StepAtoms &atoms);

  struct Handle;
  std::unique_ptr<Handle> plumed_;
  std::string kernel_;
  double dt_ = 0.0;                // PLUMED is given its address
  // the atom order PLUMED was told (it keeps the masses and charges of that order)
  int nlocal_ = -1;
  std::vector<int> gatindex_;
  std::vector<double> masses_, charges_;
  double box_[3][3] = {};
  int stop_flag_ = 0;
  int stop_scratch_ = 0;
};

}    // namespace latentcv
