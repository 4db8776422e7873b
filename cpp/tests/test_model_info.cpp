// latentcv C++ core tests: a model file's metadata, parsed and checked (model_info.h).
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "check.h"
#include "latentcv/error.h"
#include "latentcv/model_info.h"

namespace {

using Metadata = std::map<std::string, std::string>;

Metadata valid() {
  return {{"contract_version", "2"}, {"name", "water"},        {"length_unit", "nm"},
          {"dtype", "float32"},      {"atoms_per_molecule", "3"}, {"species", "0, 1,1"},
          {"cutoff", "0.9"},         {"output_names", "z0, z1,n_crystal"}, {"molecule_extent", "0.12"},
          {"species_masses", "15.999,1.008"}, {"description", "not interpreted"}};
}

Metadata with(const std::string& key, const std::string& value) {
  Metadata m = valid();
  m[key] = value;
  return m;
}

Metadata without(const std::string& key) {
  Metadata m = valid();
  m.erase(key);
  return m;
}

}  // namespace

TEST(model_info, parses_every_key) {
  const latentcv::ModelInfo info = latentcv::parse_metadata(valid(), "m.pt");
  EXPECT(info.contract_version == 2);
  EXPECT(info.name == "water");
  EXPECT(info.length_unit == "nm");
  EXPECT(info.dtype == "float32");
  EXPECT(info.atoms_per_molecule == 3);
  EXPECT((info.species == std::vector<int>{0, 1, 1}));
  EXPECT(info.cutoff == 0.9);
  EXPECT((info.output_names == std::vector<std::string>{"z0", "z1", "n_crystal"}));
  EXPECT(info.molecule_extent == 0.12);
  EXPECT((info.species_masses == std::vector<double>{15.999, 1.008}));
  EXPECT(info.raw.at("description") == "not interpreted");
  EXPECT(latentcv::parse_metadata(without("name"), "m.pt").name == "unnamed");
  EXPECT(latentcv::parse_metadata(with("species", ""), "m.pt").species.empty());  // any species
}

TEST(model_info, refuses_what_it_cannot_read) {
  using latentcv::Error;
  using latentcv::parse_metadata;
  EXPECT_THROWS(parse_metadata(without("cutoff"), "m.pt"), Error, "the metadata of 'm.pt' has no 'cutoff' entry");
  EXPECT(parse_metadata(with("contract_version", "3"), "m.pt2").contract_version == 3);
  EXPECT_THROWS(parse_metadata(with("contract_version", "4"), "m.pt"), Error, "reads versions 1 to 3");
  EXPECT_THROWS(parse_metadata(with("contract_version", "two"), "m.pt"), Error, "contract version 'two'");
  EXPECT_THROWS(parse_metadata(with("length_unit", "furlong"), "m.pt"), Error,
               "declares length_unit 'furlong'; supported are lj (reduced), nm and A");
  EXPECT_THROWS(parse_metadata(with("dtype", "float16"), "m.pt"), Error, "supported are float64 and float32");
  EXPECT_THROWS(parse_metadata(with("cutoff", "abc"), "m.pt"), Error, "malformed number");
  EXPECT_THROWS(parse_metadata(with("cutoff", "-1"), "m.pt"), Error, "must be positive");
  EXPECT_THROWS(parse_metadata(with("atoms_per_molecule", "0"), "m.pt"), Error, "at least 1");
  EXPECT_THROWS(parse_metadata(with("species", "0,1"), "m.pt"), Error,
               "the species pattern has 2 entries but atoms_per_molecule is 3");
  EXPECT_THROWS(parse_metadata(with("species_masses", "heavy"), "m.pt"), Error, "malformed molecule_extent");
  EXPECT_THROWS(parse_metadata(with("output_names", " , "), "m.pt"), Error, "names no outputs");
}

TEST(model_info, refuses_files_that_are_no_model) {
  namespace fs = std::filesystem;
  const fs::path dir = latentcv_test::scratch_dir("model_info");
  EXPECT_THROWS(latentcv::read_model_info((dir / "missing.pt").string()), latentcv::Error, "not found");
  EXPECT_THROWS(latentcv::read_model_info(dir.string()), latentcv::Error, "is a directory, not a model file");
  std::ofstream(dir / "text.pt") << "not a model\n";
  EXPECT_THROWS(latentcv::read_model_info((dir / "text.pt").string()), latentcv::Error,
               "is not a TorchScript model");
  fs::remove_all(dir);
}
