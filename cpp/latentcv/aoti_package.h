// latentcv C++ core: an AOTInductor model package (.pt2, written by `latentcv export --format
// aoti`, export/aoti.py; docs/model-contract.md). Three compiled graphs of one model:
// "values" (the K outputs; holds the metadata), "vjp" (values and the gradient of
// sum_k w_k s_k w.r.t. positions and cell, one pass), "centers" (molecule centres).
// CPU only; needs libtorch (its AOTIModelPackageLoader), no compiler.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace torch::inductor {
class AOTIModelPackageLoader;
}  // namespace torch::inductor

namespace latentcv {

// Whether `path` names an AOTInductor package (suffix .pt2); else it is read as TorchScript.
bool is_aoti_package(const std::string& path);

class AotiPackage {
 public:
  // Loads the three graphs. Throws latentcv::Error naming the fix.
  explicit AotiPackage(const std::string& path);
  ~AotiPackage();

  std::map<std::string, std::string> metadata() const;  // the model's keys (AOTI_* dropped)
  // positions [N,3], cell [3,3] in the model's dtype; edge_index [2,P] int64; edge_shift [P,3]
  torch::Tensor centers(const torch::Tensor& positions, const torch::Tensor& cell) const;   // [M,3]
  torch::Tensor values(const torch::Tensor& positions, const torch::Tensor& cell, const torch::Tensor& edge_index,
                       const torch::Tensor& edge_shift) const;  // [K]
  // {values [K], d(w.s)/dpositions [N,3], d(w.s)/dcell [3,3]}
  std::vector<torch::Tensor> vjp(const torch::Tensor& positions, const torch::Tensor& cell,
                                 const torch::Tensor& edge_index, const torch::Tensor& edge_shift,
                                 const torch::Tensor& weights) const;

 private:
  std::string path_;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> values_, vjp_, centers_;
};

// The metadata of a package (its "values" graph), as stored. Throws latentcv::Error.
std::map<std::string, std::string> read_package_metadata(const std::string& path);

}  // namespace latentcv
