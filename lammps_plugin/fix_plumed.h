// latentcv — `fix plumed` for a LAMMPS that was built without the PLUMED package.
//
//   fix ID group plumed plumedfile FILE [outfile FILE] [kernel K] [resume R] [reserve MB]
//
// The PLUMED kernel is loaded at run time (PLUMED_KERNEL, else the bundled one next to
// this plugin). One MPI rank only for now: the bundled PLUMED has no MPI.
// See docs/lammps-plugin.md.
#pragma once

#include "fix.h"

#include "output_guard.h"
#include "restart_record.h"

#include <memory>
#include <string>
#include <vector>

namespace LAMMPS_NS {
class Compute;
}

namespace latentcv {

class PlumedHandle;    // hides Plumed.h from everyone including this header

class FixPlumed : public LAMMPS_NS::Fix {
 public:
  FixPlumed(LAMMPS_NS::LAMMPS *lmp, int narg, char **arg);
  ~FixPlumed() override;

  int setmask() override;
  void init() override;
  void setup(int vflag) override;
  void min_setup(int vflag) override;
  void post_force(int vflag) override;
  void min_post_force(int vflag) override;
  void reset_dt() override;
  double compute_scalar() override;
  double memory_usage() override;
  void post_run() override;
  void write_restart(FILE *fp) override;
  void restart(char *buf) override;

  // the identity of each atom (its ID when the fix was defined; 0: created since), carried
  // along by LAMMPS through sorting, migration, deletion and creation of atoms
  void grow_arrays(int nmax) override;
  void copy_arrays(int i, int j, int delflag) override;
  void set_arrays(int i) override;
  int pack_exchange(int i, double *buf) override;
  int unpack_exchange(int nlocal, double *buf) override;

 private:
  void parse_args(int narg, char **arg);
  void check_run_environment();
  std::string locate_kernel(std::string &origin) const;
  void open_plumed(const std::string &log_file, bool restart);
  std::vector<std::string> open_output_files() const;
  std::vector<std::string> outputs_of_input();
  void resume_files(const RestartRecord &record);
  void refuse_unless_lenient(const std::string &problems, const std::string &what, const std::string &remedy);
  void check_atoms();
  void check_outputs();
  [[noreturn]] void fail(const std::string &message, bool on_all_ranks);
  double parse_megabytes(const std::string &text);
  std::vector<std::vector<std::string>> plumed_input_lines() const;
  void check_plumed_units();
  bool uses_file_walkers() const;
  void gather_atoms();
  void scatter_forces();
  void refresh_atom_order(const std::vector<int> &index, const std::vector<double> &mass,
                          const std::vector<double> &charge);
  [[noreturn]] void root_error(const std::string &message);
  void request_energy_next_step();
  [[noreturn]] void plumed_failed(const char *stage, const char *what);

  std::string plumed_file_;
  std::string log_file_;
  std::string kernel_choice_;       // `kernel` keyword: a path, "optimised", "bundled" or ""
  std::string resume_ = "strict";   // `resume` keyword: strict, lenient or no (docs/restarts.md)
  double reserve_bytes_ = 16.0 * 1048576.0;    // `reserve` keyword (MB): free space kept
  std::unique_ptr<PlumedHandle> plumed_;

  int natoms_ = 0;
  int nlocal_ = -1;
  bool plumed_opened_ = false;      // open_plumed() ran (PLUMED itself exists on rank 0 only)
  bool closed_by_error_ = false;    // fail() closed PLUMED (its files flushed) before an error
  LAMMPS_NS::tagint *identity_ = nullptr;    // per atom: its ID when the fix was defined
  std::vector<int> gatindex_;       // atom tag - 1, in the order PLUMED is given the atoms
  // this rank's atoms, and (rank 0, more than one rank) every rank's, gathered in rank order
  std::vector<int> local_index_, all_index_, counts_, displs_, counts3_, displs3_;
  std::vector<double> local_mass_, local_charge_, all_mass_, all_charge_, all_x_, all_f_;
  std::vector<double> masses_;
  std::vector<double> charges_;
  bool has_charges_ = false;

  double given_dt_ = 0.0;           // the timestep PLUMED was given
  double bias_ = 0.0;               // PLUMED's bias, MD energy units, current step
  double energy_ = 0.0;             // potential energy handed to PLUMED
  double plumed_virial_[3][3] = {};  // PLUMED convention: -sum r (x) f
  LAMMPS_NS::bigint last_step_ = -1;    // last step PLUMED computed (and updated)
  int stop_flag_ = 0;
  int stop_scratch_ = 0;
  bool excluding_bias_ = false;     // compute_scalar() reports 0 while we ask for the PE

  // restarts (docs/restarts.md): PLUMED's output files and their sizes when LAMMPS writes
  // a restart file; on read_restart they are cut back to those sizes before PLUMED
  // (told to restart) reads them
  std::vector<std::string> plumed_outputs_;
  bool restored_ = false;           // state came from a LAMMPS restart file
  OutputGuard guard_;               // write failures and free space of plumed_outputs_

  std::string id_pe_, id_press_;
  LAMMPS_NS::Compute *c_pe_ = nullptr;
  LAMMPS_NS::Compute *c_press_ = nullptr;
};

}    // namespace latentcv
