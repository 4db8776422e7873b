// latentcv: every LAMMPS `units` style in PLUMED's units (nm, kJ/mol, ps, amu, e), the table
// `fix plumed` hands PLUMED (lammps_plugin/plumed_session.cpp). Header only and torch-free, so
// that the LAMMPS plugin compiles it in without the core. Python mirror: LAMMPS_UNIT_STYLES in
// cv_models/units.py; tests/test_units.py checks that the two are equal (this table through the
// core's Python module) and that both agree with LAMMPS's own constants.
#pragma once

#include <array>
#include <string>

namespace latentcv {

struct LammpsUnitStyle {
  const char* name;         // the LAMMPS `units` style
  const char* length_unit;  // latentcv's name for its length unit (cv_models/units.py NM_PER_UNIT; "lj": reduced)
  // one MD unit of length, energy, time, mass, charge in nm, kJ/mol, ps, amu, e; all 0 for lj,
  // whose reduced units PLUMED takes as its natural units
  double nm, kj_per_mol, ps, amu, e;

  bool natural() const { return nm == 0.0; }
};

inline constexpr std::array<LammpsUnitStyle, 8> kLammpsUnitStyles{{
    {"lj", "lj", 0.0, 0.0, 0.0, 0.0, 0.0},
    {"real", "A", 0.1, 4.184, 0.001, 1.0, 1.0},  // kcal/mol, fs, g/mol
    {"metal", "A", 0.1, 96.48533212331002, 1.0, 1.0, 1.0},  // eV, ps, g/mol
    {"nano", "nm", 1.0, 0.602214076, 1e3, 602214.076, 1.0},  // ag nm^2/ns^2, ns, ag
    {"electron", "bohr", 0.052917721090, 2625.4996394798254, 0.001, 1.0, 1.0},  // Hartree, fs, amu
    {"si", "m", 1e9, 6.02214076e20, 1e12, 6.02214076e26, 6.241509074460763e18},  // J, s, kg, C
    {"cgs", "cm", 1e7, 6.02214076e13, 1e12, 6.02214076e23, 2081943327.0935597},  // erg, s, g, statC
    {"micro", "um", 1e3, 602214.076, 1e6, 602214076000.0, 6241509.074460763},  // pg um^2/us^2, us, pg, pC
}};

// The row of a LAMMPS units style; nullptr for a style the table lacks.
inline const LammpsUnitStyle* find_lammps_unit_style(const std::string& name) {
  for (const auto& style : kLammpsUnitStyles)
    if (name == style.name) return &style;
  return nullptr;
}

// "lj, real, metal, ... and nano", for error messages.
inline std::string lammps_unit_style_names() {
  std::string out;
  for (std::size_t i = 0; i < kLammpsUnitStyles.size(); ++i) {
    if (i > 0) out += i + 1 == kLammpsUnitStyles.size() ? " and " : ", ";
    out += kLammpsUnitStyles[i].name;
  }
  return out;
}

}  // namespace latentcv
