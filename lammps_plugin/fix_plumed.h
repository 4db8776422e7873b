// latentcv — `fix plumed` for a LAMMPS that was built without the PLUMED package.
//
//   fix ID group plumed plumedfile FILE [outfile FILE] [kernel K] [resume R] [reserve MB]
//
// The fix's lifecycle and its per-step drive; each other job in its own file: the keywords
// (fix_options), plumed.dat's text checks (plumed_input), the PLUMED kernel and session in
// LAMMPS's units (plumed_kernel, plumed_session), the exchange with rank 0 where PLUMED runs,
// on any number of MPI ranks (rank_exchange), the atoms' identities (fix_plumed_atoms.cpp),
// restarts (fix_plumed_restart.cpp over restart_record), write failures (output_guard), the
// run and the process (process_guard). See docs/lammps-plugin.md.
#pragma once

#include "fix.h"

#include "fix_options.h"
#include "output_guard.h"
#include "plumed_session.h"
#include "rank_exchange.h"
#include "restart_record.h"

#include <memory>
#include <string>
#include <vector>

namespace LAMMPS_NS {
class Compute;
}

namespace latentcv {

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
  // (fix_plumed_atoms.cpp)
  void grow_arrays(int nmax) override;
  void copy_arrays(int i, int j, int delflag) override;
  void set_arrays(int i) override;
  int pack_exchange(int i, double *buf) override;
  int unpack_exchange(int nlocal, double *buf) override;

 private:
  // PLUMED session (fix_plumed.cpp)
  void open_plumed(const std::string &log_file, bool restart);
  void log_session(const std::string &kernel, const std::string &origin, int api);
  [[noreturn]] void root_error(const std::string &message);
  [[noreturn]] void fail(const std::string &message, bool on_all_ranks);
  // per step (fix_plumed.cpp; check_atoms: fix_plumed_atoms.cpp)
  void check_atoms();
  bool pass_atoms(const double box[3][3]);
  void energy_for_plumed(double lammps_virial[6]);
  void compute_bias(bool need_energy);
  void set_virial(const double lammps_virial[6]);
  void request_energy_next_step();
  void check_outputs();
  // restarts (fix_plumed_restart.cpp)
  std::vector<std::string> outputs_of_input();
  void resume_files(const RestartRecord &record);
  // strict: throws (caught by restart(), which stops every rank with error->all); lenient: warns
  void refuse_unless_lenient(const std::string &problems, const std::string &what, const std::string &remedy);

  FixOptions options_;
  std::unique_ptr<PlumedSession> plumed_;    // rank 0 only
  RankExchange exchange_;

  int natoms_ = 0;
  bool plumed_opened_ = false;      // open_plumed() ran (PLUMED itself exists on rank 0 only)
  bool closed_by_error_ = false;    // fail() closed PLUMED (its files flushed) before an error
  LAMMPS_NS::tagint *identity_ = nullptr;    // per atom: its ID when the fix was defined

  double given_dt_ = 0.0;           // the timestep PLUMED was given
  double bias_ = 0.0;               // PLUMED's bias, MD energy units, current step
  double energy_ = 0.0;             // potential energy handed to PLUMED
  double plumed_virial_[3][3] = {};  // PLUMED convention: -sum r (x) f
  LAMMPS_NS::bigint last_step_ = -1;    // last step PLUMED computed (and updated)
  int stop_flag_ = 0;               // PLUMED asked to stop (rank 0's, on every rank)
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
