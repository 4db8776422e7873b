// latentcv C++ core: a model file's metadata, read and checked (model_info.h).
#include "latentcv/model_info.h"

#include <torch/script.h>

#include <filesystem>
#include <sstream>

#include "latentcv/aoti_package.h"
#include "latentcv/error.h"
#include "latentcv/ops.h"
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

const std::string& require_key(const std::map<std::string, std::string>& raw, const std::string& key,
                               const std::string& path) {
  auto it = raw.find(key);
  if (it == raw.end())
    throw Error("the metadata of '" + path + "' has no '" + key +
                "' entry; re-export the model with `latentcv export` (docs/model-contract.md).");
  return it->second;
}

// A model that calls latentcv's operators records the version it needs (metadata "ops_version").
void check_ops_version(const std::map<std::string, std::string>& raw, const std::string& path, int ops) {
  if (!raw.count("ops_version")) return;
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
  if (is_aoti_package(path)) {
    check_model_path(path);
    return parse_metadata(read_package_metadata(path), path);
  }
  torch::jit::Module module;
  return load_model_file(path, module);
}

void check_model_path(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw Error("model file '" + path + "' not found. Give the path of a file written by "
                "`latentcv export CHECKPOINT -o model.pt` (relative paths are from the working directory).");
  if (std::filesystem::is_directory(path))
    throw Error("'" + path + "' is a directory, not a model file: give the model file written by "
                "`latentcv export CHECKPOINT -o model.pt`.");
}

ModelInfo load_model_file(const std::string& path, torch::jit::Module& module) {
  check_model_path(path);
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
  check_ops_version(raw, path, ops);
  return info;
}

}  // namespace latentcv
