// latentcv C++ core tests: a model evaluated by the core (model.h) against an independent
// formula and finite differences. The model, a smooth coordination number like
// export/analytic.py's, is written here in TorchScript source and saved through the
// contract, so the test needs no Python.
#include <torch/cuda.h>
#include <torch/script.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "latentcv/error.h"
#include "latentcv/model.h"

namespace fs = std::filesystem;
using latentcv::Cell;

namespace {

constexpr double kCutoff = 1.5;

// Outputs [mean_i n_i, mean_i n_i^2], n_i = sum_j (1 - (r_ij / rc)^2)^3 for r_ij < rc.
const char* kModelSource = R"JIT(
def metadata(self) -> Dict[str, str]:
    return {"contract_version": "2", "name": "coordination", "length_unit": "lj", "dtype": "float64",
            "atoms_per_molecule": "1", "species": "", "cutoff": "1.5", "output_names": "mean,meansq",
            "ops_version": "OPS_VERSION"}

def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
    return positions

def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
    centers = self.molecule_centers(positions, cell)
    d = centers[edge_index[1]] + edge_shift @ cell - centers[edge_index[0]]
    x2 = (d * d).sum(dim=1) / (1.5 * 1.5)
    f = torch.clamp(1.0 - x2, min=0.0) ** 3
    n = torch.zeros(centers.shape[0], dtype=positions.dtype, device=positions.device)
    n = n.index_add(0, edge_index[0], f)
    return torch.stack([n.mean(), (n * n).mean()])
)JIT";

// The model saved to a file of its own; `ops_version` as it declares it.
std::string save_model(const std::string& name, const std::string& ops_version = "1") {
  std::string source = kModelSource;
  source.replace(source.find("OPS_VERSION"), 11, ops_version);
  torch::jit::Module module("__torch__.CoordinationCV");
  module.define(source);
  const std::string path = (latentcv_test::scratch_dir("evaluation") / name).string();
  module.save(path);
  return path;
}

// the same two outputs, by brute force over the periodic images
std::array<double, 2> reference(const std::vector<double>& x, const Cell& h) {
  const size_t m = x.size() / 3;
  double sum = 0.0, sum_sq = 0.0;
  for (size_t i = 0; i < m; ++i) {
    double n = 0.0;
    for (size_t j = 0; j < m; ++j)
      for (int a = -2; a <= 2; ++a)
        for (int b = -2; b <= 2; ++b)
          for (int c = -2; c <= 2; ++c) {
            if (i == j && a == 0 && b == 0 && c == 0) continue;
            double r2 = 0.0;
            for (int k = 0; k < 3; ++k) {
              const double d = x[3 * j + k] + a * h[k] + b * h[3 + k] + c * h[6 + k] - x[3 * i + k];
              r2 += d * d;
            }
            if (r2 < kCutoff * kCutoff) n += std::pow(1.0 - r2 / (kCutoff * kCutoff), 3);
          }
    sum += n;
    sum_sq += n * n;
  }
  return {sum / m, sum_sq / m};
}

// a jiggled simple-cubic arrangement in a slightly triclinic cell
void frame(std::vector<double>& x, Cell& h) {
  const int side = 4;
  const double a = 0.9;
  h = {side * a, 0.0, 0.0, 0.3, side * a, 0.0, -0.2, 0.1, side * a};
  std::mt19937 rng(5);
  std::normal_distribution<double> jiggle(0.0, 0.08);
  x.clear();
  for (int i = 0; i < side; ++i)
    for (int j = 0; j < side; ++j)
      for (int k = 0; k < side; ++k)
        for (int d = 0; d < 3; ++d) x.push_back(a * (d == 0 ? i : d == 1 ? j : k) + jiggle(rng));
}

// as the engines do: torch's process-wide settings first (runtime.h)
latentcv::Model load(const std::string& path, const latentcv::Options& options = {}) {
  latentcv::configure_torch_runtime(options.threads);
  return latentcv::Model(path, options);
}

}  // namespace

TEST(evaluation, values_match_the_formula) {
  latentcv::Model model = load(save_model("values.pt"));
  EXPECT((model.info().output_names == std::vector<std::string>{"mean", "meansq"}));
  EXPECT(latentcv::read_model_info(save_model("values.pt")).cutoff == kCutoff);
  std::vector<double> x;
  Cell h;
  frame(x, h);
  latentcv::Evaluation ev;
  model.evaluate(x.data(), x.size() / 3, h, latentcv::Derivatives::None, ev);
  const auto expected = reference(x, h);
  EXPECT(expected[0] > 1.0);  // the frame is dense enough to test something
  EXPECT_NEAR(ev.values[0], expected[0], 1e-12 * expected[0]);
  EXPECT_NEAR(ev.values[1], expected[1], 1e-12 * expected[1]);
  EXPECT(ev.grad_positions.empty() && ev.grad_cell.empty());
}

TEST(evaluation, gradients_match_finite_differences) {
  latentcv::Model model = load(save_model("gradients.pt"));
  std::vector<double> x;
  Cell h;
  frame(x, h);
  const size_t n = x.size() / 3;
  latentcv::Evaluation ev, plus, minus;
  model.evaluate(x.data(), n, h, latentcv::Derivatives::Full, ev);
  const double step = 1e-6;
  for (size_t i : std::vector<size_t>{0, 3 * 17 + 1, 3 * n - 1}) {  // a few coordinates
    std::vector<double> xp = x, xm = x;
    xp[i] += step;
    xm[i] -= step;
    model.evaluate(xp.data(), n, h, false, plus);
    model.evaluate(xm.data(), n, h, false, minus);
    for (size_t k = 0; k < 2; ++k)
      EXPECT_NEAR(ev.grad_positions[k * 3 * n + i], (plus.values[k] - minus.values[k]) / (2 * step), 1e-7);
  }
  for (size_t c : std::vector<size_t>{0, 3, 7, 8}) {  // cell entries, atoms fixed in Cartesian space
    Cell hp = h, hm = h;
    hp[c] += step;
    hm[c] -= step;
    model.evaluate(x.data(), n, hp, false, plus);
    model.evaluate(x.data(), n, hm, false, minus);
    for (size_t k = 0; k < 2; ++k)
      EXPECT_NEAR(ev.grad_cell[k * 9 + c], (plus.values[k] - minus.values[k]) / (2 * step), 1e-7);
  }
}

TEST(evaluation, one_vector_jacobian_product_equals_the_weighted_gradients) {
  latentcv::Model model = load(save_model("vjp.pt"));
  std::vector<double> x;
  Cell h;
  frame(x, h);
  const size_t n = x.size() / 3;
  latentcv::Evaluation full, deferred;
  model.evaluate(x.data(), n, h, latentcv::Derivatives::Full, full);
  model.evaluate(x.data(), n, h, latentcv::Derivatives::Deferred, deferred);
  EXPECT(model.has_deferred_graph());
  EXPECT(deferred.values == full.values);
  const std::vector<double> w{0.7, -1.3};
  std::vector<double> gp;
  std::array<double, 9> gc{};
  model.vector_jacobian(w, gp, gc);
  EXPECT(!model.has_deferred_graph());
  for (size_t i = 0; i < 3 * n; ++i)
    EXPECT_NEAR(gp[i], w[0] * full.grad_positions[i] + w[1] * full.grad_positions[3 * n + i], 1e-12);
  for (size_t c = 0; c < 9; ++c)
    EXPECT_NEAR(gc[c], w[0] * full.grad_cell[c] + w[1] * full.grad_cell[9 + c], 1e-12);
}

TEST(evaluation, refuses_bad_frames_and_models) {
  latentcv::Model model = load(save_model("refuse.pt"));
  std::vector<double> x;
  Cell h;
  frame(x, h);
  latentcv::Evaluation ev;
  EXPECT_THROWS(model.evaluate(x.data(), 0, h, false, ev), latentcv::Error, "expects whole molecules");
  x[4] = std::nan("");
  EXPECT_THROWS(model.evaluate(x.data(), x.size() / 3, h, false, ev), latentcv::Error, "non-finite position");
  EXPECT_THROWS(load(save_model("future_ops.pt", "999")), latentcv::Error,
               "needs latentcv operators of version '999'");
  latentcv::Options cuda;
  cuda.device = "cuda:0";
  if (!torch::cuda::is_available())
    EXPECT_THROWS(load(save_model("cuda.pt"), cuda), latentcv::Error, "torch sees no CUDA device");
  latentcv::Options typo;
  typo.device = "gpu";
  EXPECT_THROWS(load(save_model("typo.pt"), typo), latentcv::Error, "unknown DEVICE 'gpu'");
  fs::remove_all(latentcv_test::scratch_dir("evaluation"));
}
