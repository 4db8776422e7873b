// Python bindings of the latentcv C++ core (the same code the PLUMED action runs):
// `from latentcv.cv_models.native import core as native`. The GIL is released while the model runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "latentcv/error.h"
#include "latentcv/lammps_units.h"
#include "latentcv/model.h"
#include "latentcv/runtime.h"

namespace py = pybind11;
using latentcv::Cell;
using latentcv::Model;
using latentcv::ModelInfo;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

Cell to_cell(const DoubleArray& cell) {
  if (cell.ndim() != 2 || cell.shape(0) != 3 || cell.shape(1) != 3)
    throw latentcv::Error("cell must have shape (3, 3), rows = lattice vectors.");
  Cell c;
  std::memcpy(c.data(), cell.data(), 9 * sizeof(double));
  return c;
}

void check_positions(const DoubleArray& positions) {
  if (positions.ndim() != 2 || positions.shape(1) != 3)
    throw latentcv::Error("positions must have shape (N, 3).");
}

py::array_t<double> to_array(const std::vector<double>& data, std::vector<py::ssize_t> shape) {
  py::array_t<double> out(shape);
  if (!data.empty()) std::memcpy(out.mutable_data(), data.data(), data.size() * sizeof(double));
  return out;
}

}  // namespace

// Over 60 lines by design: the module's whole Python API as one declaration table, each entry short.
PYBIND11_MODULE(_core, m) {
  m.doc() = "latentcv C++ core: load a deployable CV model and evaluate it with gradients.";
  py::register_exception<latentcv::Error>(m, "LatentCVError", PyExc_RuntimeError);
  m.attr("CONTRACT_VERSION") = latentcv::kContractVersion;
  // the unit table compiled into the LAMMPS plugin, for tests/test_units.py to compare with cv_models/units.py
  py::list unit_styles;
  for (const auto& s : latentcv::kLammpsUnitStyles)
    unit_styles.append(py::make_tuple(s.name, s.length_unit, s.nm, s.kj_per_mol, s.ps, s.amu, s.e));
  m.attr("LAMMPS_UNIT_STYLES") = unit_styles;

  py::class_<latentcv::ModelInfo>(m, "ModelInfo", "A model file's metadata, checked (read_model_info).")
      .def_property_readonly("metadata", [](const ModelInfo& self) { return self.raw; })
      .def_readonly("name", &ModelInfo::name)
      .def_readonly("contract_version", &ModelInfo::contract_version)
      .def_readonly("output_names", &ModelInfo::output_names)
      .def_readonly("length_unit", &ModelInfo::length_unit)
      .def_readonly("dtype", &ModelInfo::dtype)
      .def_readonly("cutoff", &ModelInfo::cutoff)
      .def_readonly("atoms_per_molecule", &ModelInfo::atoms_per_molecule)
      .def_readonly("species", &ModelInfo::species)
      .def_readonly("molecule_extent", &ModelInfo::molecule_extent)
      .def_readonly("species_masses", &ModelInfo::species_masses);
  m.def(
      "read_model_info",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return latentcv::read_model_info(path);
      },
      py::arg("path"),
      "The metadata of a model file, checked as Model checks it (same errors), without building the model "
      "(no device, threads or warm-up).");

  py::class_<Model>(m, "Model")
      .def(py::init([](const std::string& path, const std::string& device, int threads, double skin,
                       bool warmup) {
             latentcv::Options o;
             o.device = device;
             o.threads = threads;
             o.skin = skin;
             o.warmup = warmup;
             py::gil_scoped_release release;
             latentcv::configure_torch_runtime(threads);  // process-wide, as the PLUMED action
             return std::make_unique<Model>(path, o);
           }),
           py::arg("path"), py::arg("device") = "cpu", py::arg("threads") = 1, py::arg("skin") = -1.0,
           py::arg("warmup") = true,
           "Load a model file (docs/model-contract.md). skin < 0: 0.1 x cutoff.")
      .def_property_readonly("metadata", [](const Model& self) { return self.info().raw; })
      .def_property_readonly("output_names", [](const Model& self) { return self.info().output_names; })
      .def_property_readonly("length_unit", [](const Model& self) { return self.info().length_unit; })
      .def_property_readonly("dtype", [](const Model& self) { return self.info().dtype; })
      .def_property_readonly("cutoff", [](const Model& self) { return self.info().cutoff; })
      .def_property_readonly("atoms_per_molecule", [](const Model& self) { return self.info().atoms_per_molecule; })
      .def_property_readonly("device", &Model::device)
      .def_property_readonly("threads", &Model::threads)
      .def_property_readonly("neighbor_list_rebuilds",
                             [](const Model& self) { return self.neighbor_list().rebuilds(); })
      .def(
          "evaluate",
          [](Model& self, const DoubleArray& positions, const DoubleArray& cell, bool gradients) -> py::tuple {
            check_positions(positions);
            const Cell c = to_cell(cell);
            const size_t n = static_cast<size_t>(positions.shape(0));
            latentcv::Evaluation ev;
            {
              py::gil_scoped_release release;
              self.evaluate(positions.data(), n, c, gradients, ev);
            }
            const auto k = static_cast<py::ssize_t>(ev.values.size());
            auto values = to_array(ev.values, {k});
            if (!gradients) return py::make_tuple(values, py::none(), py::none());
            return py::make_tuple(values, to_array(ev.grad_positions, {k, static_cast<py::ssize_t>(n), 3}),
                                  to_array(ev.grad_cell, {k, 3, 3}));
          },
          py::arg("positions"), py::arg("cell"), py::arg("gradients") = true,
          "Returns (values[K], d values/d positions [K,N,3], d values/d cell [K,3,3]) in model units.")
      .def("check_masses", &Model::check_masses, py::arg("masses"),
           "Raise if atom masses [N] do not follow the model's species pattern (when it records masses).")
      .def(
          "evaluate_deferred",
          [](Model& self, const DoubleArray& positions, const DoubleArray& cell) {
            check_positions(positions);
            const Cell c = to_cell(cell);
            latentcv::Evaluation ev;
            {
              py::gil_scoped_release release;
              self.evaluate(positions.data(), positions.shape(0), c, latentcv::Derivatives::Deferred, ev);
            }
            return to_array(ev.values, {static_cast<py::ssize_t>(ev.values.size())});
          },
          py::arg("positions"), py::arg("cell"),
          "Values[K]; keeps the autograd graph for one vector_jacobian() call (the MD-step path).")
      .def(
          "vector_jacobian",
          [](Model& self, const std::vector<double>& weights) {
            std::vector<double> gp;
            std::array<double, 9> gc{};
            {
              py::gil_scoped_release release;
              self.vector_jacobian(weights, gp, gc);
            }
            std::vector<double> gcv(gc.begin(), gc.end());
            return py::make_tuple(to_array(gp, {static_cast<py::ssize_t>(gp.size() / 3), 3}), to_array(gcv, {3, 3}));
          },
          py::arg("weights"),
          "Gradient of sum_k weights[k] s_k w.r.t. positions [N,3] and cell [3,3], in one backward pass.")
      .def(
          "molecule_centers",
          [](Model& self, const DoubleArray& positions, const DoubleArray& cell) {
            check_positions(positions);
            auto c = self.molecule_centers(positions.data(), positions.shape(0), to_cell(cell));
            return to_array(c, {static_cast<py::ssize_t>(c.size() / 3), 3});
          },
          py::arg("positions"), py::arg("cell"));

  m.def(
      "build_pair_list",
      [](const DoubleArray& centers, const DoubleArray& cell, double cutoff) {
        check_positions(centers);
        std::vector<double> c(centers.data(), centers.data() + centers.size());
        latentcv::PairList p;
        {
          py::gil_scoped_release release;
          p = latentcv::build_pair_list(c, to_cell(cell), cutoff);
        }
        const auto n = static_cast<py::ssize_t>(p.size());
        py::array_t<int64_t> index({static_cast<py::ssize_t>(2), n});
        if (n > 0) {
          std::memcpy(index.mutable_data(), p.first.data(), n * sizeof(int64_t));
          std::memcpy(index.mutable_data() + n, p.second.data(), n * sizeof(int64_t));
        }
        return py::make_tuple(index, to_array(p.shift, {n, 3}));
      },
      py::arg("centers"), py::arg("cell"), py::arg("cutoff"),
      "Full directed pair list (edge_index[2,P], edge_shift[P,3]) of centres within cutoff.");
}
