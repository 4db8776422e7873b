// latentcv C++ core: loads a deployable TorchScript CV (docs/model-contract.md), validates
// its metadata (model_info.h), and evaluates its K outputs with exact gradients w.r.t.
// positions and the cell, on CPU or CUDA. Engine-independent: PLUMED, LAMMPS and Python sit
// on top of it.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latentcv/model_info.h"
#include "latentcv/neighbor_list.h"
#include "latentcv/runtime.h"

namespace latentcv {

// Bound of the skin: wider than this many cutoffs is a typo, and would hang the pair list
// (threads: kMaxThreadsPerCore, runtime.h).
constexpr double kMaxSkinPerCutoff = 10.0;

struct Options {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N" or "auto"
  int threads = 1;             // intra-op threads for torch, checked and reported; set
                               // process-wide by configure_torch_runtime(); 0 = torch's default
  double skin = -1.0;          // Verlet skin in model length units; < 0: 0.1 × cutoff
  bool warmup = true;          // run the model a few times at load
};

// Values and gradients of the K outputs for one frame. Gradients are dense, row-major,
// in the units of the inputs (model length unit).
struct Evaluation {
  std::vector<double> values;          // [K]
  std::vector<double> grad_positions;  // [K*N*3], ∂s_k/∂r_i
  std::vector<double> grad_cell;       // [K*9],   ∂s_k/∂H (rows of H are lattice vectors)
};

// What evaluate() computes besides the values.
enum class Derivatives {
  None,      // values only (no autograd graph)
  Deferred,  // keep the autograd graph: one vector_jacobian() later gives the forces
  Full,      // every output's gradient (K backward passes), e.g. to report derivatives
};

class Model {
 public:
  // Throws latentcv::Error with a message that says what to do. Call
  // configure_torch_runtime(options.threads) first (runtime.h).
  Model(const std::string& path, const Options& options);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const;
  std::string device() const;     // the device actually used, e.g. "cpu" or "cuda:0"
  int threads() const;
  const VerletList& neighbor_list() const;

  // Checks an atom count against the model (multiple of atoms_per_molecule).
  void check_atom_count(size_t n_atoms) const;
  // Checks atom masses ([N], PLUMED mass unit) against the model's species pattern, if it
  // records species masses. Throws latentcv::Error naming the first mismatch.
  void check_masses(const std::vector<double>& masses) const;

  // positions: [N*3] in model length units; cell: rows are lattice vectors.
  void evaluate(const double* positions, size_t n_atoms, const Cell& cell, Derivatives mode,
                Evaluation& out);
  void evaluate(const double* positions, size_t n_atoms, const Cell& cell, bool gradients,
                Evaluation& out) {
    evaluate(positions, n_atoms, cell, gradients ? Derivatives::Full : Derivatives::None, out);
  }

  // After evaluate(..., Deferred, ...): the gradient of Σ_k weights[k]·s_k w.r.t. the
  // positions ([N*3]) and the cell ([9]) in ONE backward pass; releases the graph.
  void vector_jacobian(const std::vector<double>& weights, std::vector<double>& grad_positions,
                       std::array<double, 9>& grad_cell);
  bool has_deferred_graph() const;

  // The molecule centres ([M*3]) the model builds its graph on (no gradient).
  std::vector<double> molecule_centers(const double* positions, size_t n_atoms, const Cell& cell);

 private:
  void warm_up();  // a few evaluations at load: slow first calls and failures happen here

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace latentcv
