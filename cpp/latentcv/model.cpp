#include "latentcv/model.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "latentcv/error.h"
#include "latentcv/ops.h"
#include "latentcv/runtime.h"
#include "latentcv/units.h"

namespace latentcv {
namespace {

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The line of a TorchScript traceback that says what went wrong (its last "...Error: ..."
// line, e.g. "RuntimeError: ..."), else the first line.
std::string error_line(const std::string& text) {
  std::string found;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.find("Error: ") != std::string::npos) found = line;
    start = end + 1;
  }
  const size_t lead = found.find_first_not_of(' ');
  return found.empty() ? first_line(text) : found.substr(lead == std::string::npos ? 0 : lead);
}

const std::string& require_key(const std::map<std::string, std::string>& raw, const std::string& key,
                               const std::string& path) {
  auto it = raw.find(key);
  if (it == raw.end())
    throw Error("the metadata of '" + path + "' has no '" + key +
                "' entry; re-export the model with `latentcv export` (docs/model-contract.md).");
  return it->second;
}

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

// Loads the file (on the CPU) into `module` and checks its contract: read_model_info() and
// Model's constructor.
ModelInfo load_checked(const std::string& path, torch::jit::Module& module) {
  if (!std::filesystem::exists(path))
    throw Error("model file '" + path + "' not found. Give the path of a file written by "
                "`latentcv export CHECKPOINT -o model.pt` (relative paths are from the working directory).");
  if (std::filesystem::is_directory(path))
    throw Error("'" + path + "' is a directory, not a model file: give the model file written by "
                "`latentcv export CHECKPOINT -o model.pt`.");
  // models of contract version 2 call torch.ops.latentcv.* (liblatentcv_ops.so, linked)
  const int ops = ops_version();
  try {
    module = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw Error("'" + path + "' is not a TorchScript model (" + first_line(e.what()) +
                "). Export trained models with `latentcv export`.");
  }
  auto meta = module.find_method("metadata");
  if (!meta)
    throw Error("'" + path + "' has no metadata() method, so it was not saved through latentcv's "
                "model contract; export it with `latentcv export` (docs/model-contract.md).");
  if (!module.find_method("molecule_centers"))
    throw Error("'" + path + "' has no molecule_centers() method; export it with `latentcv export` "
                "(docs/model-contract.md).");
  std::map<std::string, std::string> raw;
  try {
    for (const auto& kv : (*meta)({}).toGenericDict()) raw[kv.key().toStringRef()] = kv.value().toStringRef();
  } catch (const c10::Error& e) {
    throw Error("the metadata() of '" + path + "' is not a Dict[str, str] (" + first_line(e.what()) + ").");
  }
  ModelInfo info = parse_metadata(raw, path);
  if (raw.count("ops_version")) {
    int needed = 0;
    try {
      needed = std::stoi(raw.at("ops_version"));
    } catch (const std::exception&) {
      needed = -1;
    }
    if (needed < 0 || needed > ops)
      throw Error("'" + path + "' needs latentcv operators of version '" + raw.at("ops_version") +
                  "' but this build has version " + std::to_string(ops) +
                  "; rebuild latentcv (`make build`) from the release that exported the model.");
  }
  return info;
}

}  // namespace

ModelInfo parse_metadata(const std::map<std::string, std::string>& raw, const std::string& path) {
  ModelInfo info;
  info.raw = raw;
  const std::string& version = require_key(raw, "contract_version", path);
  try {
    info.contract_version = std::stoi(version);
  } catch (const std::exception&) {
    info.contract_version = -1;
  }
  if (info.contract_version < kOldestContractVersion || info.contract_version > kContractVersion)
    throw Error("'" + path + "' follows model contract version '" + version +
                "' but this build of latentcv reads versions " + std::to_string(kOldestContractVersion) + " to " +
                std::to_string(kContractVersion) +
                "; re-export the model with this latentcv (`latentcv export`) or install the "
                "matching latentcv.");
  info.name = raw.count("name") ? raw.at("name") : std::string("unnamed");
  info.length_unit = require_key(raw, "length_unit", path);
  nm_per_length_unit(info.length_unit, path);  // throws for an unknown unit
  info.dtype = require_key(raw, "dtype", path);
  if (info.dtype != "float64" && info.dtype != "float32")
    throw Error("'" + path + "' declares dtype '" + info.dtype + "'; supported are float64 and float32.");
  try {
    info.atoms_per_molecule = std::stoi(require_key(raw, "atoms_per_molecule", path));
    info.cutoff = std::stod(require_key(raw, "cutoff", path));
    for (const auto& s : split_list(raw.count("species") ? raw.at("species") : ""))
      info.species.push_back(std::stoi(s));
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    throw Error("the metadata of '" + path + "' has a malformed number (atoms_per_molecule, cutoff or species).");
  }
  if (info.atoms_per_molecule < 1) throw Error("atoms_per_molecule must be at least 1 in '" + path + "'.");
  if (!(info.cutoff > 0.0)) throw Error("the neighbour cutoff in '" + path + "' must be positive.");
  if (!info.species.empty() && static_cast<int>(info.species.size()) != info.atoms_per_molecule)
    throw Error("'" + path + "': the species pattern has " + std::to_string(info.species.size()) +
                " entries but atoms_per_molecule is " + std::to_string(info.atoms_per_molecule) + ".");
  try {
    if (raw.count("molecule_extent") && !raw.at("molecule_extent").empty())
      info.molecule_extent = std::stod(raw.at("molecule_extent"));
    if (raw.count("species_masses"))
      for (const auto& s : split_list(raw.at("species_masses"))) info.species_masses.push_back(std::stod(s));
  } catch (const std::exception&) {
    throw Error("the metadata of '" + path + "' has a malformed molecule_extent or species_masses entry.");
  }
  info.output_names = split_list(require_key(raw, "output_names", path));
  if (info.output_names.empty()) throw Error("'" + path + "' names no outputs (output_names is empty).");
  return info;
}

ModelInfo read_model_info(const std::string& path) {
  torch::jit::Module module;
  return load_checked(path, module);
}

struct Model::Impl {
  std::string path;
  torch::jit::Module module;
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
          << " across: list ATOMS molecule by molecule, " << apm << " atoms each, in the model's atom order.";
      throw Error(msg.str());
    }
  }

  torch::Tensor centers(const torch::Tensor& pos, const torch::Tensor& cell) {
    torch::NoGradGuard no_grad;
    return module.get_method("molecule_centers")({pos, cell}).toTensor();
  }
};

Model::Model(const std::string& path, const Options& options) : impl_(new Impl) {
  Impl& m = *impl_;
  m.path = path;
  m.info = load_checked(path, m.module);
  m.dtype = m.info.dtype == "float32" ? torch::kFloat32 : torch::kFloat64;

  // Device
  std::string dev = options.device;
  const bool cuda_ok = torch::cuda::is_available();
  if (dev == "auto") dev = cuda_ok ? "cuda" : "cpu";
  if (dev.rfind("cuda", 0) == 0 && !cuda_ok)
    throw Error("DEVICE=" + options.device + " was asked for, but torch sees no CUDA device here "
                "(this libtorch has no CUDA support, or no GPU is visible). Use DEVICE=cpu, or DEVICE=auto "
                "to take a GPU only when there is one.");
  if (dev != "cpu" && dev.rfind("cuda", 0) != 0)
    throw Error("unknown DEVICE '" + options.device + "'; use cpu, cuda, cuda:N or auto.");
  try {
    m.device = torch::Device(dev);
  } catch (const c10::Error& e) {
    throw Error("cannot use DEVICE=" + dev + ": " + first_line(e.what()));
  }
  m.module.eval();
  m.module.to(m.device);

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
    // A small cubic arrangement of molecules, evaluated with gradients a few times.
    const int per_side = 3, n_mol = per_side * per_side * per_side, apm = m.info.atoms_per_molecule;
    const double a = 0.6 * m.info.cutoff;
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
      throw Error("'" + path + "' failed on a test frame at load: " + first_line(e.what()));
    }
    m.nlist = std::make_unique<VerletList>(m.info.cutoff, skin);
    m.edges_from_rebuild = -1;
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
  for (size_t i = 0; i < 3 * n_atoms; ++i)
    if (!std::isfinite(positions[i]))
      throw Error("atom " + std::to_string(i / 3) + " has a non-finite position (NaN or inf): "
                  "the simulation has blown up before the CV was computed; check the time step and forces.");
  const int64_t n = static_cast<int64_t>(n_atoms);
  auto pos = m.input(positions, {n, 3});
  auto cel = m.input(cell.data(), {3, 3});

  // Neighbour list on the model's own molecule centres, rebuilt only when needed.
  torch::Tensor c = to_cpu_double(m.centers(pos, cel));
  std::vector<double> centers(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
  if (m.nlist->update(centers, cell)) m.check_molecule_extent(positions, n_atoms, cell);
  m.refresh_edges();

  torch::Tensor result;
  {
    torch::AutoGradMode grad_mode(gradients);
    if (gradients) {
      pos.requires_grad_(true);
      cel.requires_grad_(true);
    }
    try {
      result = m.module.forward({pos, cel, m.edge_index, m.edge_shift}).toTensor();
    } catch (const std::exception& e) {
      throw Error("the model '" + m.path + "' failed while computing the CV (" + error_line(e.what()) +
                  "). It loaded, so its file is intact: check that it was written by `latentcv export` of this "
                  "latentcv, and that ATOMS and the box are what it was trained for; `latentcv eval MODEL FRAMES` "
                  "reproduces the failure outside the MD engine.");
    }
  }
  const size_t k_out = m.info.output_names.size();
  if (result.dim() != 1 || static_cast<size_t>(result.size(0)) != k_out)
    throw Error("the model returned a tensor of shape " + std::to_string(result.dim() == 1 ? result.size(0) : -1) +
                " but its metadata names " + std::to_string(k_out) + " outputs.");
  out.values.resize(k_out);
  copy_into(result, out.values.data(), k_out);
  for (size_t k = 0; k < k_out; ++k)
    if (!std::isfinite(out.values[k]))
      throw Error("output '" + m.info.output_names[k] + "' of the model is not finite.");
  out.grad_positions.clear();
  out.grad_cell.clear();
  if (mode == Derivatives::None) return;
  if (mode == Derivatives::Deferred) {
    m.deferred_pos = pos;
    m.deferred_cell = cel;
    m.deferred_out = result;
    return;
  }

  out.grad_positions.assign(k_out * 3 * n_atoms, 0.0);
  out.grad_cell.assign(k_out * 9, 0.0);
  for (size_t k = 0; k < k_out; ++k) {
    auto grads = torch::autograd::grad({result[static_cast<int64_t>(k)]}, {pos, cel}, {},
                                       /*retain_graph=*/k + 1 < k_out, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    if (grads[0].defined()) copy_into(grads[0], out.grad_positions.data() + k * 3 * n_atoms, 3 * n_atoms);
    if (grads[1].defined()) copy_into(grads[1], out.grad_cell.data() + k * 9, 9);
  }
  check_finite_gradient(out.grad_positions, n_atoms, out.grad_cell.data(), out.grad_cell.size(), m.path);
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
  auto grads = torch::autograd::grad({m.deferred_out}, {m.deferred_pos, m.deferred_cell}, {w},
                                     /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
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
