// latentcv C++ core: an AOTInductor model package (aoti_package.h).
#include "latentcv/aoti_package.h"

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include <filesystem>

#include "latentcv/error.h"

namespace latentcv {
namespace {

using Loader = torch::inductor::AOTIModelPackageLoader;

std::unique_ptr<Loader> load_graph(const std::string& path, const std::string& graph) {
  try {
    return std::make_unique<Loader>(path, graph, /*run_single_threaded=*/true);
  } catch (const std::exception& e) {
    throw Error("'" + path + "' is not a latentcv AOTInductor package with a '" + graph + "' graph (" +
                first_line(e.what()) + "). Write it with `latentcv export CHECKPOINT --format aoti -o model.pt2` "
                "with the torch this latentcv is built against.");
  }
}

std::vector<torch::Tensor> run(Loader& loader, const std::vector<torch::Tensor>& inputs, const std::string& path,
                               const char* graph) {
  try {
    return loader.run(inputs);
  } catch (const std::exception& e) {
    throw Error("the '" + std::string(graph) + "' graph of '" + path + "' failed (" + error_line(e.what()) +
                "); `latentcv eval MODEL FRAMES` reproduces it outside the MD engine.");
  }
}

// The model's metadata keys of a graph (the package's own AOTI_* keys dropped).
std::map<std::string, std::string> model_keys(Loader& loader) {
  std::map<std::string, std::string> out;
  for (const auto& kv : loader.get_metadata())
    if (kv.first.rfind("AOTI_", 0) != 0) out[kv.first] = kv.second;
  return out;
}

}  // namespace

bool is_aoti_package(const std::string& path) { return std::filesystem::path(path).extension() == ".pt2"; }

AotiPackage::AotiPackage(const std::string& path)
    : path_(path), values_(load_graph(path, "values")), vjp_(load_graph(path, "vjp")),
      centers_(load_graph(path, "centers")) {}

AotiPackage::~AotiPackage() = default;

std::map<std::string, std::string> AotiPackage::metadata() const { return model_keys(*values_); }

torch::Tensor AotiPackage::centers(const torch::Tensor& positions, const torch::Tensor& cell) const {
  return run(*centers_, {positions, cell}, path_, "centers").at(0);
}

torch::Tensor AotiPackage::values(const torch::Tensor& positions, const torch::Tensor& cell,
                                  const torch::Tensor& edge_index, const torch::Tensor& edge_shift) const {
  return run(*values_, {positions, cell, edge_index, edge_shift}, path_, "values").at(0);
}

std::vector<torch::Tensor> AotiPackage::vjp(const torch::Tensor& positions, const torch::Tensor& cell,
                                            const torch::Tensor& edge_index, const torch::Tensor& edge_shift,
                                            const torch::Tensor& weights) const {
  return run(*vjp_, {positions, cell, edge_index, edge_shift, weights}, path_, "vjp");
}

std::map<std::string, std::string> read_package_metadata(const std::string& path) {
  return model_keys(*load_graph(path, "values"));
}

}  // namespace latentcv
