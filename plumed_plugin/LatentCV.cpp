/*
latentcv PLUMED action LATENT_CV: a learned collective variable (TorchScript model written
by `latentcv export`, docs/model-contract.md) evaluated by latentcv's C++ core, with exact
derivatives w.r.t. atom positions and the box.
*/
//+PLUMEDOC COLVAR LATENT_CV
/*
Evaluate a latentcv model (a learned collective variable) on a set of atoms.

The model file is written by `latentcv export` (or, for a test model, by
`latentcv.export.analytic.save_coordination_model`). It declares its outputs; each becomes a
component of this action, named as in the model (`latentcv paths` prints where the
plugin lies; `latentcv info model.pt` lists the outputs). ATOMS lists every atom of every
molecule, molecule by molecule, in the order the model expects.

Positions are converted from PLUMED's length unit to the model's: a model in reduced
(`lj`) units needs natural units (LAMMPS `units lj`, or `UNITS NATURAL`); a model in nm
or A works with any PLUMED length unit. The box must be periodic in all directions
(orthorhombic or triclinic).

\plumedfile
LOAD FILE=/path/to/latentcv/cv_models/_lib/LatentCV.so
cv: LATENT_CV MODEL=model.pt ATOMS=1-256 DEVICE=cpu THREADS=1
metad: METAD ARG=cv.mean SIGMA=0.05 HEIGHT=0.5 PACE=100 BIASFACTOR=10 TEMP=0.6
PRINT ARG=cv.*,metad.bias FILE=COLVAR STRIDE=10
\endplumedfile
*/
//+ENDPLUMEDOC
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ActionRegister.h"
#include "core/Colvar.h"
#include "latentcv/error.h"
#include "latentcv/model.h"
#include "latentcv/runtime.h"
#include "latentcv/units.h"
#include "tools/Pbc.h"

namespace PLMD {
namespace latentcv_plugin {

class LatentCV : public Colvar {
 public:
  explicit LatentCV(const ActionOptions&);
  static void registerKeywords(Keywords& keys);
  void calculate() override;
  void apply() override;

 private:
  std::unique_ptr<latentcv::Model> model_;
  double to_model_length_ = 1.0;  // model length unit per PLUMED length unit
  std::vector<Value*> outputs_;
  std::vector<double> positions_;  // [N*3] in model units, reused every step
  latentcv::Cell cell_{};          // rows = lattice vectors, model units
  latentcv::Evaluation eval_;
  std::vector<double> virials_;           // [K*9] box derivative of each output
  std::vector<double> forces_to_apply_;   // [3N+9], the layout of PLUMED's derivatives
  bool full_derivatives_ = false;         // fill PLUMED's derivative arrays every step
  bool masses_checked_ = false;
  std::vector<double> weights_;           // [K] forces on the outputs
  std::vector<double> vjp_positions_;     // [N*3]
  std::array<double, 9> vjp_cell_{};
  latentcv::Options read_keywords(std::string& path, std::vector<AtomNumber>& atoms);
  void set_length_conversion(const std::string& path, std::optional<double> nm_per_model_length);
  void log_setup(const std::string& path, size_t n_atoms);
  void forces_from_vjp();
  void forces_from_full_derivatives();
  // −(Σ_i r_i ⊗ g_i + Hᵀ G) for gradients g [N*3] and G [9] w.r.t. positions and cell in
  // model units: PLUMED's box derivative (dimensionless, the same in either unit).
  Tensor box_derivative(const double* g, const double* grad_cell) const;
};

PLUMED_REGISTER_ACTION(LatentCV, "LATENT_CV")

void LatentCV::registerKeywords(Keywords& keys) {
  Colvar::registerKeywords(keys);
  keys.add("compulsory", "MODEL", "the model file written by `latentcv export`");
  keys.add("atoms", "ATOMS", "every atom of every molecule, molecule by molecule, in the order the model expects");
  keys.add("compulsory", "DEVICE", "cpu", "where the model runs: cpu, cuda, cuda:N, or auto (cuda when available)");
  keys.add("compulsory", "THREADS", "1",
           "intra-op threads for the model on the CPU (0 = torch's default; keep small on shared machines)");
  keys.addFlag("FULL_DERIVATIVES", false,
               "compute and store the derivatives of every output every step (one backward pass per output), "
               "for DUMPDERIVATIVES and the like. Without it the bias forces come from a single vector-Jacobian "
               "product per step, and the stored derivatives are not filled");
  keys.add("optional", "SKIN",
           "Verlet skin for the molecule neighbour list, in the model's length unit (default 0.1 x the model cutoff)");
  // The word "customize" tells PLUMED that component names come from the input (the model).
  keys.setComponentsIntroduction(
      "The components are customized by the model: one scalar component per model output, named as in "
      "the model's metadata (e.g. label.z0); `latentcv info MODEL` lists them.");
}

LatentCV::LatentCV(const ActionOptions& ao) : PLUMED_COLVAR_INIT(ao) {
  std::string path;
  std::vector<AtomNumber> atoms;
  const latentcv::Options options = read_keywords(path, atoms);
  std::optional<double> nm_per_model_length;  // none: reduced (lj) units
  try {
    // process-wide (torch's thread pool and JIT executor), set before the model is built
    latentcv::configure_torch_runtime(options.threads);
    model_ = std::make_unique<latentcv::Model>(path, options);
    model_->check_atom_count(atoms.size());
    nm_per_model_length = latentcv::nm_per_length_unit(model_->info().length_unit, path);
  } catch (const latentcv::Error& e) {
    error(e.what());
  }
  set_length_conversion(path, nm_per_model_length);
  for (const auto& name : model_->info().output_names) {
    addComponentWithDerivatives(name);
    componentIsNotPeriodic(name);
    outputs_.push_back(getPntrToComponent(name));
  }
  requestAtoms(atoms);
  positions_.resize(3 * atoms.size());
  log_setup(path, atoms.size());
}

latentcv::Options LatentCV::read_keywords(std::string& path, std::vector<AtomNumber>& atoms) {
  std::string device;
  int threads = 1;
  double skin = std::numeric_limits<double>::quiet_NaN();  // stays NaN when SKIN is not given
  parse("MODEL", path);
  parseAtomList("ATOMS", atoms);
  parse("DEVICE", device);
  parse("THREADS", threads);
  parse("SKIN", skin);
  parseFlag("FULL_DERIVATIVES", full_derivatives_);
  checkRead();
  if (atoms.empty()) error("ATOMS is empty: list every atom of every molecule the model should see");
  std::vector<unsigned> seen;
  for (const auto& a : atoms) seen.push_back(a.index());
  std::sort(seen.begin(), seen.end());
  const auto dup = std::adjacent_find(seen.begin(), seen.end());
  if (dup != seen.end())
    error("ATOMS lists atom " + std::to_string(*dup + 1) + " more than once: give every atom of every molecule "
          "exactly once, molecule by molecule (e.g. ATOMS=1-256)");
  if (!std::isnan(skin) && !(skin >= 0.0))
    error("SKIN=" + std::to_string(skin) + " is negative: give a Verlet skin >= 0 in the model's length unit, "
          "or leave SKIN out for 0.1 x the model cutoff");
  if (std::isnan(skin)) skin = -1.0;  // the core's default
  if (threads < 0)
    error("THREADS=" + std::to_string(threads) + " is negative: give 1 (best on a shared machine), more, "
          "or 0 for torch's default");
  latentcv::Options options;
  options.device = device;
  options.threads = threads;
  options.skin = skin;
  return options;
}

// The model's length unit per PLUMED length unit.
void LatentCV::set_length_conversion(const std::string& path, std::optional<double> nm_per_model_length) {
  if (!nm_per_model_length) {
    if (!usingNaturalUnits())
      error("the model '" + path + "' is in reduced (lj) length units, but PLUMED is not using natural units: "
            "run LAMMPS with `units lj` (fix plumed then puts PLUMED in natural units), or export the model for "
            "your units (`latentcv export CKPT -o model.pt --length-unit A --unit-length SIGMA_IN_A`). Only with "
            "`plumed driver` on a trajectory in reduced units is `UNITS NATURAL` in plumed.dat the fix: in an MD "
            "run it relabels the engine's lengths without converting them");
    to_model_length_ = 1.0;
    return;
  }
  if (usingNaturalUnits())
    error("PLUMED runs in natural units (e.g. LAMMPS `units lj`) but the model '" + path + "' is in " +
          model_->info().length_unit + "; use a model trained in reduced units");
  const double nm_per_plumed = getUnits().getLength();
  to_model_length_ = nm_per_plumed * (1.0 / *nm_per_model_length);  // 1 / 0.1 is exactly 10
}

void LatentCV::log_setup(const std::string& path, size_t n_atoms) {
  const latentcv::ModelInfo& info = model_->info();
  log.printf("  model %s: '%s', contract version %d, %d atoms per molecule, cutoff %g %s\n", path.c_str(),
             info.name.c_str(), info.contract_version, info.atoms_per_molecule, info.cutoff, info.length_unit.c_str());
  log.printf("  %zu atoms (%zu molecules); outputs:", n_atoms, n_atoms / info.atoms_per_molecule);
  for (const auto& name : info.output_names) log.printf(" %s.%s", getLabel().c_str(), name.c_str());
  log.printf("\n  device %s, dtype %s, %d torch threads, neighbour skin %g %s\n", model_->device().c_str(),
             info.dtype.c_str(), model_->threads(), model_->neighbor_list().skin(), info.length_unit.c_str());
  log.printf("  length conversion: 1 PLUMED length unit = %g %s\n", to_model_length_, info.length_unit.c_str());
  log.printf("  %s\n", full_derivatives_ ? "derivatives of every output stored every step (FULL_DERIVATIVES)"
                                           : "bias forces from one vector-Jacobian product per step");
  log << "  Please cite latentcv (learned collective variables for crystal nucleation) when using LATENT_CV\n";
}

void LatentCV::calculate() {
  const Pbc& pbc = getPbc();
  if (!pbc.isSet())
    error("LATENT_CV needs a periodic box in all three directions; the MD engine passed none "
          "(with `plumed driver`, give --box or a trajectory with cell)");
  const std::vector<Vector>& pos = getPositions();
  const size_t n = pos.size();
  if (!masses_checked_) {
    std::vector<double> masses(n);
    for (size_t i = 0; i < n; ++i) masses[i] = getMass(i);
    try {
      model_->check_masses(masses);
    } catch (const latentcv::Error& e) {
      error(e.what());
    }
    masses_checked_ = true;
  }
  for (size_t i = 0; i < n; ++i)
    for (unsigned k = 0; k < 3; ++k) positions_[3 * i + k] = pos[i][k] * to_model_length_;
  const Tensor box = getBox();
  for (unsigned a = 0; a < 3; ++a)
    for (unsigned b = 0; b < 3; ++b) cell_[3 * a + b] = box(a, b) * to_model_length_;

  // Full derivatives when asked for; otherwise keep the graph and take one
  // vector-Jacobian product in apply().
  const latentcv::Derivatives mode = doNotCalculateDerivatives() ? latentcv::Derivatives::None
                                     : full_derivatives_          ? latentcv::Derivatives::Full
                                                                  : latentcv::Derivatives::Deferred;
  try {
    model_->evaluate(positions_.data(), n, cell_, mode, eval_);
  } catch (const latentcv::Error& e) {
    error(e.what());
  }

  virials_.assign(9 * outputs_.size(), 0.0);
  for (size_t k = 0; k < outputs_.size(); ++k) {
    Value* v = outputs_[k];
    v->set(eval_.values[k]);
    if (mode != latentcv::Derivatives::Full) continue;
    const double* g = eval_.grad_positions.data() + k * 3 * n;
    // ∂s/∂x_plumed = ∂s/∂x_model · (model length per PLUMED length)
    for (size_t i = 0; i < n; ++i)
      setAtomsDerivatives(v, static_cast<int>(i), to_model_length_ * Vector(g[3 * i], g[3 * i + 1], g[3 * i + 2]));
    const Tensor virial = box_derivative(g, eval_.grad_cell.data() + 9 * k);
    setBoxDerivatives(v, virial);
    for (unsigned a = 0; a < 3; ++a)
      for (unsigned b = 0; b < 3; ++b) virials_[9 * k + 3 * a + b] = virial(a, b);
  }
}

// Forces on the atoms and the box: Σ_k force_k · derivatives_k, as Colvar::apply computes
// them, but from one vector-Jacobian product (or our own gradient arrays with
// FULL_DERIVATIVES) instead of PLUMED's per-element bookkeeping.
void LatentCV::apply() {
  if (checkNumericalDerivatives()) {
    Colvar::apply();
    return;
  }
  weights_.assign(outputs_.size(), 0.0);
  bool any = false;
  for (size_t k = 0; k < outputs_.size(); ++k) {
    weights_[k] = outputs_[k]->getForce();
    any = any || weights_[k] != 0.0;
  }
  if (!any) return;
  if (model_->has_deferred_graph())
    forces_from_vjp();
  else if (!eval_.grad_positions.empty())
    forces_from_full_derivatives();
  else
    return;
  unsigned index = 0;
  setForcesOnAtoms(forces_to_apply_, index);
}

void LatentCV::forces_from_vjp() {
  try {
    model_->vector_jacobian(weights_, vjp_positions_, vjp_cell_);
  } catch (const latentcv::Error& e) {
    error(e.what());
  }
  const size_t n = getNumberOfAtoms();
  forces_to_apply_.resize(3 * n + 9);
  for (size_t i = 0; i < 3 * n; ++i) forces_to_apply_[i] = to_model_length_ * vjp_positions_[i];
  const Tensor virial = box_derivative(vjp_positions_.data(), vjp_cell_.data());
  for (unsigned a = 0; a < 3; ++a)
    for (unsigned b = 0; b < 3; ++b) forces_to_apply_[3 * n + 3 * a + b] = virial(a, b);
}

Tensor LatentCV::box_derivative(const double* g, const double* grad_cell) const {
  Tensor virial;
  const size_t n = positions_.size() / 3;
  for (size_t i = 0; i < n; ++i)
    for (unsigned a = 0; a < 3; ++a)
      for (unsigned b = 0; b < 3; ++b) virial(a, b) -= positions_[3 * i + a] * g[3 * i + b];
  for (unsigned a = 0; a < 3; ++a)
    for (unsigned b = 0; b < 3; ++b)
      for (unsigned c = 0; c < 3; ++c) virial(a, b) -= cell_[3 * c + a] * grad_cell[3 * c + b];
  return virial;
}

void LatentCV::forces_from_full_derivatives() {
  const size_t n = getNumberOfAtoms();
  forces_to_apply_.assign(3 * n + 9, 0.0);
  for (size_t k = 0; k < outputs_.size(); ++k) {
    const double w = weights_[k];
    if (w == 0.0) continue;
    const double wa = w * to_model_length_;
    const double* g = eval_.grad_positions.data() + k * 3 * n;
    for (size_t i = 0; i < 3 * n; ++i) forces_to_apply_[i] += wa * g[i];
    for (unsigned c = 0; c < 9; ++c) forces_to_apply_[3 * n + c] += w * virials_[9 * k + c];
  }
}

}  // namespace latentcv_plugin
}  // namespace PLMD
