// latentcv `fix plumed`: the PLUMED session (plumed_session.h).
#include "plumed_session.h"

#include "latentcv/lammps_units.h"

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>

// The PLUMED C++ wrapper, compiled here (and only here) in runtime-binding mode: no link-time
// dependency on libplumedKernel.so, which is dlopen()ed by path. Its C functions are made
// internal (CMake sets __PLUMED_WRAPPER_EXTERN=0 and the anonymous namespace) so that nothing
// named plumed_* leaks into the LAMMPS process, which loads plugins with RTLD_GLOBAL.
#include "plumed/wrapper/Plumed.h"

namespace fs = std::filesystem;

namespace latentcv {

struct PlumedSession::Handle {
  explicit Handle(PLMD::Plumed &&p) : p(std::move(p)) {}
  PLMD::Plumed p;
};

namespace {

PlumedError failed(const std::string &stage, const std::exception &e)
{
  return PlumedError("fix plumed: PLUMED failed while " + stage + ": " + e.what());
}

// regular files this process holds open for writing, by canonical path
std::vector<std::string> open_output_files()
{
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

void set_units(PLMD::Plumed &p, const LammpsUnitStyle &units)
{
  if (units.natural()) {
    p.cmd("setNaturalUnits");
    return;
  }
  double energy = units.kj_per_mol, length = units.nm, time = units.ps, mass = units.amu, charge = units.e;
  p.cmd("setMDEnergyUnits", &energy);
  p.cmd("setMDLengthUnits", &length);
  p.cmd("setMDTimeUnits", &time);
  p.cmd("setMDMassUnits", &mass);
  p.cmd("setMDChargeUnits", &charge);
}

}    // namespace

PlumedSession::PlumedSession(const std::string &kernel, const std::string &origin)
    : plumed_(std::make_unique<Handle>(PLMD::Plumed::dlopen(kernel.c_str()))), kernel_(kernel)
{
  if (!plumed_->p.valid())
    throw PlumedError("fix plumed: cannot load the PLUMED kernel '" + kernel + "' (from " + origin +
                      "). Set PLUMED_KERNEL to the path of libplumedKernel.so (`latentcv paths` prints it)");
}

PlumedSession::~PlumedSession() = default;

int PlumedSession::check_api()
{
  int api = 0;
  try {
    plumed_->p.cmd("getApiVersion", &api);
  } catch (std::exception &e) {
    throw failed("reporting its API version", e);
  }
  if (api < 6)
    throw PlumedError("fix plumed: the PLUMED kernel '" + kernel_ + "' is too old (API " + std::to_string(api) +
                      "; need >= 6)");
  return api;
}

std::vector<std::string> PlumedSession::start(const SessionSetup &setup)
{
  auto &p = plumed_->p;
  int natoms = setup.natoms;
  dt_ = setup.dt;
  try {
    p.cmd("setMDEngine", "LAMMPS");
    set_units(p, *setup.units);
    p.cmd("setNatoms", &natoms);
    p.cmd("setTimestep", &dt_);
    p.cmd("setPlumedDat", setup.plumed_file.c_str());
    p.cmd("setLogFile", setup.log_file.c_str());
    if (setup.restart) {
      int one = 1;
      p.cmd("setRestart", &one);
    }
  } catch (std::exception &e) {
    throw failed("setting up for " + setup.plumed_file, e);
  }
  const std::vector<std::string> before = open_output_files();
  try {
    p.cmd("init");
  } catch (std::exception &e) {
    throw failed("reading " + setup.plumed_file, e);
  }
  // the files PLUMED opened for writing while reading its input (HILLS, COLVAR, ...)
  std::vector<std::string> outputs;
  std::error_code ec;
  const fs::path log_path = fs::weakly_canonical(fs::path(setup.log_file), ec);
  for (const auto &f : open_output_files())
    if (std::find(before.begin(), before.end(), f) == before.end() && fs::path(f) != log_path)
      outputs.push_back(f);
  return outputs;
}

void PlumedSession::set_atom_order(const StepAtoms &atoms)
{
  // LAMMPS reorders atoms (sorting, migration): tell PLUMED only when the order changed
  const int n = static_cast<int>(atoms.index.size());
  if (n == nlocal_ && atoms.index == gatindex_) return;
  nlocal_ = n;
  gatindex_ = atoms.index;
  masses_ = atoms.mass;
  charges_ = atoms.charge;
  plumed_->p.cmd("setAtomsNlocal", &nlocal_);
  plumed_->p.cmd("setAtomsGatindex", gatindex_.data(), gatindex_.size());
}

bool PlumedSession::receive(long long step, const double box[3][3], const StepAtoms &atoms, double *virial)
{
  auto &p = plumed_->p;
  std::copy(&box[0][0], &box[0][0] + 9, &box_[0][0]);
  int need_energy = 0;
  try {
    set_atom_order(atoms);
    stop_flag_ = 0;
    p.cmd("setStepLong", &step);
    p.cmd("setStopFlag", &stop_flag_);
    p.cmd("setBox", &box_[0][0], 9);
    p.cmd("setPositions", atoms.x, atoms.n3);
    p.cmd("setForces", atoms.f, atoms.n3);
    p.cmd("setMasses", masses_.data(), masses_.size());
    if (atoms.has_charges) p.cmd("setCharges", charges_.data(), charges_.size());
    p.cmd("setVirial", virial, 9);
    p.cmd("prepareCalc");
    p.cmd("isEnergyNeeded", &need_energy);
  } catch (std::exception &e) {
    throw failed("receiving the atoms", e);
  }
  return need_energy != 0;
}

double PlumedSession::compute(double *energy, bool checkpoint, bool repeated_step)
{
  auto &p = plumed_->p;
  int flag = checkpoint ? 1 : 0;
  double bias = 0.0;
  try {
    if (energy) p.cmd("setEnergy", energy);
    if (flag) p.cmd("doCheckPoint", &flag);
    p.cmd(repeated_step ? "performCalcNoUpdate" : "performCalc");
    if (flag) {
      flag = 0;
      p.cmd("doCheckPoint", &flag);
    }
    p.cmd("getBias", &bias);
  } catch (std::exception &e) {
    throw failed("computing the bias", e);
  }
  return bias;
}

bool PlumedSession::energy_needed_at(long long step)
{
  auto &p = plumed_->p;
  int needed = 0;
  try {
    p.cmd("setStopFlag", &stop_scratch_);    // prepareDependencies may raise it
    p.cmd("setStepLong", &step);
    p.cmd("prepareDependencies");
    p.cmd("isEnergyNeeded", &needed);
  } catch (std::exception &e) {
    throw failed("planning the next step", e);
  }
  return needed != 0;
}

std::size_t PlumedSession::memory_bytes() const
{
  return gatindex_.capacity() * sizeof(int) + (masses_.capacity() + charges_.capacity()) * sizeof(double);
}

}    // namespace latentcv
