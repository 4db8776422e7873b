// latentcv C++ core: the model at run time (model.h): device, neighbour list, evaluation and
// gradients. Reading and checking the file's metadata: model_info.cpp.
#include "latentcv/model.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "latentcv/aoti_package.h"
#include "latentcv/error.h"
#include "latentcv/runtime.h"

namespace latentcv {
namespace {

torch::Tensor to_cpu_double(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
}

void copy_into(const torch::Tensor& t, double* dst, size_t count) {
  torch::Tensor c = to_cpu_double(t);
  if (static_cast<size_t>(c.numel()) != count)
    throw Error("internal: unexpected tensor size " + std::to_string(c.numel()));
  std::memcpy(dst, c.data_ptr<double>(), count * sizeof(double));
}

// Forces from a gradient with inf/NaN would wreck the MD run without a word: refuse it.
void check_finite_gradient(const std::vector<double>& grad_positions, size_t n_atoms, const double* grad_cell,
                           size_t n_cell, const std::string& path) {
  for (size_t i = 0; i < grad_positions.size(); ++i)
    if (!std::isfinite(grad_positions[i]))
      throw Error("the gradient of the model '" + path + "' is not finite (NaN or inf) at atom " +
                  std::to_string((i / 3) % std::max<size_t>(1, n_atoms) + 1) +
                  " of the ATOMS list, although its value is finite: no forces were applied. The model is not "
                  "smooth at this configuration; re-export it with `latentcv export` (its checks test gradients) "
                  "and check that the configuration is one it was trained for.");
  for (size_t c = 0; c < n_cell; ++c)
    if (!std::isfinite(grad_cell[c]))
      throw Error("the box derivative of the model '" + path + "' is not finite (NaN or inf), although its "
                  "value is finite: no forces or virial were applied. Re-export the model with `latentcv export`.");
}

// DEVICE: cpu, cuda, cuda:N, or auto (a GPU when torch sees one).
torch::Device choose_device(const std::string& asked) {
  std::string dev = asked;
  const bool cuda_ok = torch::cuda::is_available();
  if (dev == "auto") dev = cuda_ok ? "cuda" : "cpu";
  if (dev.rfind("cuda", 0) == 0 && !cuda_ok)
    throw Error("DEVICE=" + asked + " was asked for, but torch sees no CUDA device here "
                "(this libtorch has no CUDA support, or no GPU is visible). Use DEVICE=cpu, or DEVICE=auto "
                "to take a GPU only when there is one.");
  if (dev != "cpu" && dev.rfind("cuda", 0) != 0)
    throw Error("unknown DEVICE '" + asked + "'; use cpu, cuda, cuda:N or auto.");
  try {
    return torch::Device(dev);
  } catch (const c10::Error& e) {
    throw Error("cannot use DEVICE=" + dev + ": " + first_line(e.what()));
  }
}

void check_finite_positions(const double* positions, size_t n_atoms) {
  for (size_t i = 0; i < 3 * n_atoms; ++i)
    if (!std::isfinite(positions[i]))
      throw Error("atom " + std::to_string(i / 3) + " has a non-finite position (NaN or inf): "
                  "the simulation has blown up before the CV was computed; check the time step and forces.");
}

}  // namespace

struct Model::Impl {
  std::string path;
  torch::jit::Module module;
  std::unique_ptr<AotiPackage> aoti;  // set for an AOTInductor package (.pt2); then `module` is unused
  ModelInfo info;
  torch::Device device{torch::kCPU};
  torch::Dtype dtype = torch::kFloat64;
  int threads = 0;
  std::unique_ptr<VerletList> nlist;
  torch::Tensor edge_index, edge_shift;
  long edges_from_rebuild = -1;
  // inputs and outputs of the last Deferred evaluation (autograd graph kept alive)
  torch::Tensor deferred_pos, deferred_cell, deferred_out;

  torch::Tensor input(const double* data, std::vector<int64_t> shape) const {
    auto t = torch::from_blob(const_cast<double*>(data), shape, torch::TensorOptions().dtype(torch::kFloat64));
    return t.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
  }

  void refresh_edges() {
    if (edges_from_rebuild == nlist->rebuilds()) return;
    const PairList& p = nlist->pairs();
    const int64_t n = static_cast<int64_t>(p.size());
    auto idx = torch::empty({2, n}, torch::kInt64);
    if (n > 0) {
      std::memcpy(idx.data_ptr<int64_t>(), p.first.data(), n * sizeof(int64_t));
      std::memcpy(idx.data_ptr<int64_t>() + n, p.second.data(), n * sizeof(int64_t));
    }
    auto shift = torch::empty({n, 3}, torch::kFloat64);
    if (n > 0) std::memcpy(shift.data_ptr<double>(), p.shift.data(), 3 * n * sizeof(double));
    edge_index = idx.to(device);
    edge_shift = shift.to(device, dtype);
    edges_from_rebuild = nlist->rebuilds();
  }

  std::string raw_species() const { return info.raw.count("species") ? info.raw.at("species") : ""; }

  // Every atom must lie within molecule_extent of its molecule's first atom (minimum image):
  // otherwise ATOMS is not listed molecule by molecule.
  void check_molecule_extent(const double* positions, size_t n_atoms, const Cell& cell) const {
    if (!(info.molecule_extent > 0.0) || info.atoms_per_molecule < 2) return;
    const auto apm = static_cast<size_t>(info.atoms_per_molecule);
    const auto pos = torch::from_blob(const_cast<double*>(positions), {static_cast<int64_t>(n_atoms / apm),
                                      static_cast<int64_t>(apm), 3}, torch::kFloat64);
    const auto h = torch::from_blob(const_cast<Cell&>(cell).data(), {3, 3}, torch::kFloat64);
    auto d = pos - pos.narrow(1, 0, 1);
    auto frac = torch::matmul(d, torch::inverse(h));
    d = torch::matmul(frac - torch::round(frac), h);
    auto dist = d.norm(2, -1);  // [M, apm]
    auto worst = dist.flatten().argmax().item<int64_t>();
    const double far = dist.flatten()[worst].item<double>();
    if (far > info.molecule_extent) {
      std::ostringstream msg;
      msg << "atom " << worst + 1 << " of the ATOMS list is " << far << " " << info.length_unit
          << " from the first atom of its molecule (" << worst / static_cast<int64_t>(apm) + 1
          << "), but the model's molecules are at most " << info.molecule_extent << " " << info.length_unit
          << " across (1.5 x the widest molecule of its training frames). At the first step: list ATOMS"
          << " molecule by molecule, " << apm << " atoms each, in the model's atom order. Later in a run: the"
          << " molecule was torn apart by forces the time step cannot integrate (a bias with very narrow"
          << " hills, or a blow-up): widen SIGMA or shorten the time step.";
      throw Error(msg.str());
    }
  }

  torch::Tensor centers(const torch::Tensor& pos, const torch::Tensor& cell) {
    torch::NoGradGuard no_grad;
    if (aoti) return aoti->centers(pos, cell);
    return module.get_method("molecule_centers")({pos, cell}).toTensor();
  }

  // The outputs [K]; with `gradients`, the autograd graph back to pos and cel.
  // A package has no autograd graph: its values now, its "vjp" graph in vector_jacobian().
  torch::Tensor forward(torch::Tensor& pos, torch::Tensor& cel, bool gradients) {
    if (aoti) {
      torch::NoGradGuard no_grad;
      return aoti->values(pos, cel, edge_index, edge_shift);
    }
    torch::AutoGradMode grad_mode(gradients);
    if (gradients) {
      pos.requires_grad_(true);
      cel.requires_grad_(true);
    }
    try {
      return module.forward({pos, cel, edge_index, edge_shift}).toTensor();
    } catch (const std::exception& e) {
      throw Error("the model '" + path + "' failed while computing the CV (" + error_line(e.what()) +
                  "). It loaded, so its file is intact: check that it was written by `latentcv export` of this "
                  "latentcv, and that ATOMS and the box are what it was trained for; `latentcv eval MODEL FRAMES` "
                  "reproduces the failure outside the MD engine.");
    }
  }

  void read_values(const torch::Tensor& result, Evaluation& out) const {
    const size_t k_out = info.output_names.size();
    if (result.dim() != 1 || static_cast<size_t>(result.size(0)) != k_out)
      throw Error("the model returned a tensor of shape " + std::to_string(result.dim() == 1 ? result.size(0) : -1) +
                  " but its metadata names " + std::to_string(k_out) + " outputs.");
    out.values.resize(k_out);
    copy_into(result, out.values.data(), k_out);
    for (size_t k = 0; k < k_out; ++k)
      if (!std::isfinite(out.values[k]))
        throw Error("output '" + info.output_names[k] + "' of the model is not finite.");
  }

  // Every output's gradient: K backward passes through one graph.
  void full_gradients(const torch::Tensor& result, const torch::Tensor& pos, const torch::Tensor& cel,
                      size_t n_atoms, Evaluation& out) const {
    const size_t k_out = info.output_names.size();
    out.grad_positions.assign(k_out * 3 * n_atoms, 0.0);
    out.grad_cell.assign(k_out * 9, 0.0);
    if (aoti) {
      for (size_t k = 0; k < k_out; ++k) {
        auto g = aoti->vjp(pos, cel, edge_index, edge_shift,
                           torch::one_hot(torch::tensor(static_cast<int64_t>(k)), static_cast<int64_t>(k_out)).to(dtype));
        copy_into(g[1], out.grad_positions.data() + k * 3 * n_atoms, 3 * n_atoms);
        copy_into(g[2], out.grad_cell.data() + k * 9, 9);
      }
      check_finite_gradient(out.grad_positions, n_atoms, out.grad_cell.data(), out.grad_cell.size(), path);
      return;
    }
    for (size_t k = 0; k < k_out; ++k) {
      auto grads = torch::autograd::grad({result[static_cast<int64_t>(k)]}, {pos, cel}, {},
                                         /*retain_graph=*/k + 1 < k_out, /*create_graph=*/false,
                                         /*allow_unused=*/true);
      if (grads[0].defined()) copy_into(grads[0], out.grad_positions.data() + k * 3 * n_atoms, 3 * n_atoms);
      if (grads[1].defined()) copy_into(grads[1], out.grad_cell.data() + k * 9, 9);
    }
    check_finite_gradient(out.grad_positions, n_atoms, out.grad_cell.data(), out.grad_cell.size(), path);
  }
};

Model::Model(const std::string& path, const Options& options) : impl_(new Impl) {
  Impl& m = *impl_;
  m.path = path;
  m.device = choose_device(options.device);
  if (is_aoti_package(path)) {
    check_model_path(path);
    if (!m.device.is_cpu())
      throw Error("'" + path + "' is an AOTInductor package compiled for the CPU; use DEVICE=cpu, or the "
                  "TorchScript model file (`latentcv export` without --format aoti) on a GPU.");
    m.aoti = std::make_unique<AotiPackage>(path);
    m.info = parse_metadata(m.aoti->metadata(), path);
  } else {
    m.info = load_model_file(path, m.module);
    m.module.eval();
    m.module.to(m.device);
  }
  m.dtype = m.info.dtype == "float32" ? torch::kFloat32 : torch::kFloat64;

  // Threads: set process-wide by configure_torch_runtime() (runtime.h), checked here.
  check_threads(options.threads);
  m.threads = options.threads > 0 ? options.threads : at::get_num_threads();

  if (!(options.skin < 0.0) && !(options.skin <= kMaxSkinPerCutoff * m.info.cutoff))
    throw Error("SKIN=" + std::to_string(options.skin) + " is out of range: use 0 to " +
                std::to_string(kMaxSkinPerCutoff * m.info.cutoff) + " (" + std::to_string(kMaxSkinPerCutoff) +
                " x the model cutoff " + std::to_string(m.info.cutoff) + " " + m.info.length_unit +
                "), or leave it out for 0.1 x the cutoff.");
  const double skin = options.skin >= 0.0 ? options.skin : 0.1 * m.info.cutoff;
  m.nlist = std::make_unique<VerletList>(m.info.cutoff, skin);
  if (options.warmup) {
    warm_up();
    m.nlist = std::make_unique<VerletList>(m.info.cutoff, skin);
    m.edges_from_rebuild = -1;
  }
}

void Model::warm_up() {
  // A small cubic arrangement of molecules, evaluated with gradients a few times.
  const int per_side = 3, n_mol = per_side * per_side * per_side, apm = impl_->info.atoms_per_molecule;
  const double a = 0.6 * impl_->info.cutoff;
  std::vector<double> pos;
  for (int i = 0; i < n_mol; ++i)
    for (int k = 0; k < apm; ++k) {
      pos.push_back(a * (i / 9) + 0.05 * a * k);
      pos.push_back(a * ((i / 3) % 3) + 0.03 * a * k);
      pos.push_back(a * (i % 3));
    }
  Cell cell{per_side * a, 0, 0, 0, per_side * a, 0, 0, 0, per_side * a};
  Evaluation scratch;
  try {
    for (int r = 0; r < 3; ++r) evaluate(pos.data(), pos.size() / 3, cell, true, scratch);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("'" + impl_->path + "' failed on a test frame at load: " + first_line(e.what()));
  }
}

Model::~Model() = default;

const ModelInfo& Model::info() const { return impl_->info; }
std::string Model::device() const { return impl_->device.str(); }
int Model::threads() const { return impl_->threads; }
const VerletList& Model::neighbor_list() const { return *impl_->nlist; }

void Model::check_atom_count(size_t n_atoms) const {
  const auto apm = static_cast<size_t>(impl_->info.atoms_per_molecule);
  if (n_atoms == 0 || n_atoms % apm != 0)
    throw Error("the model '" + impl_->path + "' expects whole molecules of " + std::to_string(apm) +
                " atoms each, but got " + std::to_string(n_atoms) +
                " atoms; list every atom of every molecule, molecule by molecule.");
}

void Model::check_masses(const std::vector<double>& masses) const {
  const ModelInfo& info = impl_->info;
  if (info.species_masses.empty() || info.species.empty()) return;
  const size_t apm = static_cast<size_t>(info.atoms_per_molecule);
  for (size_t i = 0; i < masses.size(); ++i) {
    if (!std::isfinite(masses[i])) return;  // the engine gave no masses (e.g. plumed driver without --mc)
    const int species = info.species[i % apm];
    if (species < 0 || static_cast<size_t>(species) >= info.species_masses.size()) continue;
    const double expected = info.species_masses[species];
    if (std::abs(masses[i] - expected) > 1e-3 * std::max(1.0, std::abs(expected))) {
      std::ostringstream msg;
      msg << "atom " << i + 1 << " of the ATOMS list (position " << i % apm + 1 << " in molecule " << i / apm + 1
          << ") has mass " << masses[i] << " but the model expects species " << species << " of mass " << expected
          << " there. The model's molecules are, atom by atom, species [" << impl_->raw_species()
          << "]: list ATOMS molecule by molecule in that order.";
      throw Error(msg.str());
    }
  }
}

std::vector<double> Model::molecule_centers(const double* positions, size_t n_atoms, const Cell& cell) {
  Impl& m = *impl_;
  auto pos = m.input(positions, {static_cast<int64_t>(n_atoms), 3});
  auto cel = m.input(cell.data(), {3, 3});
  torch::Tensor c = to_cpu_double(m.centers(pos, cel));
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

void Model::evaluate(const double* positions, size_t n_atoms, const Cell& cell, Derivatives mode,
                     Evaluation& out) {
  Impl& m = *impl_;
  const bool gradients = mode != Derivatives::None;
  m.deferred_out = torch::Tensor();
  check_atom_count(n_atoms);
  check_finite_positions(positions, n_atoms);
  const int64_t n = static_cast<int64_t>(n_atoms);
  auto pos = m.input(positions, {n, 3});
  auto cel = m.input(cell.data(), {3, 3});

  // Neighbour list on the model's own molecule centres, rebuilt only when needed.
  torch::Tensor c = to_cpu_double(m.centers(pos, cel));
  std::vector<double> centers(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  if (m.nlist->update(centers, cell)) m.check_molecule_extent(positions, n_atoms, cell);
  m.refresh_edges();

  const torch::Tensor result = m.forward(pos, cel, gradients);
  m.read_values(result, out);
  out.grad_positions.clear();
  out.grad_cell.clear();
  if (mode == Derivatives::None) return;
  if (mode == Derivatives::Deferred) {
    m.deferred_pos = pos;
    m.deferred_cell = cel;
    m.deferred_out = result;
    return;
  }
  m.full_gradients(result, pos, cel, n_atoms, out);
}

bool Model::has_deferred_graph() const { return impl_->deferred_out.defined(); }

void Model::vector_jacobian(const std::vector<double>& weights, std::vector<double>& grad_positions,
                            std::array<double, 9>& grad_cell) {
  Impl& m = *impl_;
  if (!m.deferred_out.defined())
    throw Error("internal: vector_jacobian() called without a preceding evaluate(..., Deferred)");
  const int64_t k_out = m.deferred_out.size(0);
  if (static_cast<int64_t>(weights.size()) != k_out)
    throw Error("internal: vector_jacobian() needs one weight per output");
  auto w = torch::from_blob(const_cast<double*>(weights.data()), {k_out}, torch::TensorOptions().dtype(torch::kFloat64))
               .to(m.device, m.dtype);
  std::vector<torch::Tensor> grads;
  if (m.aoti) {
    auto r = m.aoti->vjp(m.deferred_pos, m.deferred_cell, m.edge_index, m.edge_shift, w);
    grads = {r[1], r[2]};
  } else {
    grads = torch::autograd::grad({m.deferred_out}, {m.deferred_pos, m.deferred_cell}, {w},
                                  /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
  }
  const size_t n3 = static_cast<size_t>(m.deferred_pos.numel());
  grad_positions.assign(n3, 0.0);
  grad_cell.fill(0.0);
  if (grads[0].defined()) copy_into(grads[0], grad_positions.data(), n3);
  if (grads[1].defined()) copy_into(grads[1], grad_cell.data(), 9);
  check_finite_gradient(grad_positions, n3 / 3, grad_cell.data(), 9, m.path);
  m.deferred_out = torch::Tensor();
  m.deferred_pos = torch::Tensor();
  m.deferred_cell = torch::Tensor();
}

}  // namespace latentcv
