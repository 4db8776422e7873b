// latentcv C++ core: a model file's metadata (docs/model-contract.md), parsed and checked:
// what a model says about itself, without running it. The runtime (model.h) builds on it.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace latentcv {

// 3: the model may also be an AOTInductor package (.pt2, aoti_package.h); 2: the model may
// call latentcv's own operators (torch.ops.latentcv.*, ops.h; metadata key "ops_version");
// 1: core torch ops only. All are read.
constexpr int kContractVersion = 3;
constexpr int kOldestContractVersion = 1;

// What the model says about itself (its metadata() method), parsed and checked.
struct ModelInfo {
  int contract_version = 0;
  std::string name;
  std::string length_unit;       // "lj", "nm" or "A" (units.h)
  std::string dtype;             // "float64" or "float32"
  int atoms_per_molecule = 1;
  std::vector<int> species;      // pattern of one molecule; empty = any
  double cutoff = 0.0;           // neighbour cutoff on molecule centres, length_unit
  std::vector<std::string> output_names;
  double molecule_extent = 0.0;       // max distance of a molecule's atom from its first atom; 0 = unchecked
  std::vector<double> species_masses; // mass of each species index (PLUMED mass unit); empty = unchecked
  std::map<std::string, std::string> raw;  // every key, as stored
};

// Parses a metadata dictionary (exposed for tests and tools). Throws latentcv::Error.
ModelInfo parse_metadata(const std::map<std::string, std::string>& raw, const std::string& path);

// The metadata of a model file (TorchScript, or an AOTInductor package: aoti_package.h), checked as Model's constructor checks it (same errors),
// without building the model (no device, no threads, no warm-up). Throws latentcv::Error.
ModelInfo read_model_info(const std::string& path);

// Throws latentcv::Error when `path` is missing or a directory (naming what to pass).
void check_model_path(const std::string& path);

// Loads the file (on the CPU) into `module` and checks its contract: the file, its methods,
// its metadata, the operators' version it needs. What read_model_info() and Model's
// constructor share. Throws latentcv::Error.
ModelInfo load_model_file(const std::string& path, torch::jit::Module& module);

}  // namespace latentcv
