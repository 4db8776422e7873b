"""The embedded systems: LJ atoms, rigid-ish dimers and trimers (reduced LJ units), and mW
water (``units real``: Å, fs, kcal/mol, K, atm).

Each system's LAMMPS model (units, atoms or molecules on a lattice, pair style, neighbour
settings) is written once, in ``examples/<system>/system.lmp``; the MD protocols of the
generator, the demo, the benchmarks and the tests include that file
(:func:`system_commands` from Python). :data:`SYSTEMS` holds each system's measured state
point and the settings of its analyses; :data:`METAD_DEFAULTS` the metadynamics settings
every latentcv command starts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# (shape, seed's share of the volume, sampling temperature) of the LJ interface runs: slabs
# that grow at the state point and slabs that hold near T_m; spheres for small nuclei.
DEFAULT_INTERFACE_SEEDS: tuple[tuple[str, float, float], ...] = (
    ("slab", 0.25, 0.58),
    ("slab", 0.4, 0.58),
    ("slab", 0.55, 0.58),
    ("slab", 0.75, 0.58),
    ("slab", 0.3, 0.70),
    ("slab", 0.5, 0.70),
    ("slab", 0.7, 0.70),
    ("sphere", 0.35, 0.52),
    ("sphere", 0.5, 0.56),
)
# the same for the trimers (T_m = 1.375 +- 0.025, docs/data.md): slabs that grow at the state
# point T=1.1 and slabs that barely move near T_m (1.35: ordered share +0.1 in 40k steps)
TRIMER_INTERFACE_SEEDS: tuple[tuple[str, float, float], ...] = (
    ("slab", 0.25, 1.1),
    ("slab", 0.5, 1.1),
    ("slab", 0.75, 1.1),
    ("slab", 0.3, 1.35),
    ("slab", 0.6, 1.35),
)
# the same for the dimers (T_m = 1.575 +- 0.025, docs/data.md): at the state point T=1.15 a
# slab grows through the box within ~2 000 steps, so the frames also come from slabs and
# spheres near T_m, where the interface moves slowly
DIMER_INTERFACE_SEEDS: tuple[tuple[str, float, float], ...] = (
    ("slab", 0.25, 1.15),
    ("slab", 0.5, 1.15),
    ("slab", 0.75, 1.15),
    ("slab", 0.3, 1.5),
    ("slab", 0.6, 1.5),
    ("sphere", 0.2, 1.3),
    ("sphere", 0.4, 1.45),
)

# mW water (units real): the state point (K), the ice density (molecules per cubic Angstrom:
# 0.0327 = 0.978 g/cm^3 at 18.015 g/mol) and the interface runs: slabs of ice Ih (secondary prism faces)
# that grow at the state point and hold or move slowly near T_m = 274.6 K, and spheres
# (nuclei of ~100-400 molecules in a 2000-molecule box) at the state point
MW_TEMPERATURE = 230.0
MW_ICE_DENSITY = 0.0327
MW_INTERFACE_SEEDS: tuple[tuple[str, float, float], ...] = (
    ("slab", 0.25, MW_TEMPERATURE),
    ("slab", 0.5, MW_TEMPERATURE),
    ("slab", 0.75, MW_TEMPERATURE),
    ("slab", 0.3, 265.0),
    ("slab", 0.6, 265.0),
    ("sphere", 0.05, MW_TEMPERATURE),
    ("sphere", 0.1, MW_TEMPERATURE),
    ("sphere", 0.2, MW_TEMPERATURE),
)


@dataclass(frozen=True)
class MetadDefaults:
    """The well-tempered METAD settings latentcv recommends, used by ``plumed-input``,
    ``latentcv demo``, ``latentcv compare`` and the docs alike (docs/results.md measured
    them: 5/5 seeds crystallise with these on 256 and on 2 048 LJ atoms).

    Attributes:
        pace: steps between hills (200: the bias grows fast enough to cross in a few 10^4
            steps on 256 molecules; 500 was slower in every run of docs/results.md).
        height_kt: hill height in kT, and sigma_melt_stds: hill width SIGMA as a multiple of
            the biased CV's standard deviation in the unbiased melt. 2 kT and 4 std ("wide
            hills") by measurement (docs/results.md, "Hill size"): on 256 LJ atoms they
            crystallise 5/5 seeds like 1 kT and 0.5 std (median 15 000 against 10 500 steps,
            within the seed spread); on 2 048 atoms the narrow hills fill too slowly
            (`n_nucleus` 0/3 in 60 000 steps) while the wide ones crystallise 5/5
            (`n_crystal` at a median of 36 500 steps). A box-wide count's distance to the
            crystal grows like N and its melt spread like √N, so hills sized on the
            spread alone fall behind as the box grows.
        biasfactor: well-tempered bias factor (> 1).
        bias_stride: METAD STRIDE, PLUMED's multiple time stepping (Ferrarotti, Bottaro,
            Pérez-Villa & Bussi, J. Chem. Theory Comput. 11, 139 (2015)): the CV and its
            forces every ``bias_stride`` steps, applied as an impulse ``bias_stride`` times
            larger. The rule (docs/export.md, "Bias STRIDE"): STRIDE × timestep at most a
            tenth of the period of the fastest motion the bias force couples to, far from
            the impulse resonance at half a period; 5 for MD steps of ≤ 1/50 of that period
            (LJ at dt = 0.005 τ: ~56 steps per period of the fcc crystal's fastest phonon).
            Every ``latentcv compare`` table of docs/results.md ran at 5;
            ``benchmarks/bias_stride.py`` measures its NVE drift and cost.
        barrier_kt: the free energy in kT the bias must climb along the biased CV, from the
            melt to past the critical nucleus, when the user gives none: OPES_METAD's BARRIER
            (OPES caps its bias there, so a value too low never reaches the crystal) and the
            barrier of ``plumed-input``'s budget check. 100 kT by measurement
            (docs/results.md, LJ 2 048 atoms, OPES on ``n_crystal``): 30 kT crystallised 0 of
            3 seeds, 100 kT 5 of 5, as fast in steps as WT-METAD. The WT-METAD runs of the
            same box had filled 50–55 kT (median) along their CVs when they crystallised
            (``latentcv fes``), above 30 kT; published nucleation barriers are lower (mW ice
            at 220 K: ~18 kT), but a CV is not the nucleus size: a box-wide count also climbs
            its melt baseline and the post-critical growth. Too high costs little: OPES then
            explores further before it settles.
    """

    pace: int = 200
    height_kt: float = 2.0
    sigma_melt_stds: float = 4.0
    biasfactor: float = 30.0
    bias_stride: int = 5
    barrier_kt: float = 100.0


METAD_DEFAULTS = MetadDefaults()


@dataclass(frozen=True)
class SystemSpec:
    """One embedded system and its measured state point, in its LAMMPS ``units``.

    Attributes:
        name: "lj", "dimers", "trimers" or "mw"; template_dir: folder of its LAMMPS inputs.
        temperature, pressure, dt, tdamp, pdamp: the state point and integrator, in the
            system's units (``real``: K, atm, fs).
        density: starting lattice number density (of molecules per length unit cubed) of the crystal.
        melt_density: starting lattice density of melt/transition runs: low enough that
            the lattice melts within a few hundred steps at ``melt_temperature``.
        melt_temperature: where the lattice is melted.
        transition_temperature: quench temperature of the transition run (None: none).
        atoms_per_molecule: 1 (LJ, mW), 2 (dimers), 3 (trimers).
        tenwolde_cutoff: neighbour cutoff of the crystal judge (ten Wolde, CHILL+; on molecule
            centres), about the first minimum of the centre–centre g(r) of the crystal.
        molecules_per_cell: molecules per lattice unit cell (fcc 4; trimers and ice 8).
        default_cells: unit cells per edge of the ``default`` preset.
        interface_seeds: the ``interface`` runs (see :class:`GeneratorConfig`).
        crystal_criterion: the independent per-molecule judge of crystal ("ten_wolde" on
            atoms/centres, "local_p2" where ten Wolde on centres fails: the trimers, or
            "chill_plus": cubic + hexagonal ice by CHILL+, :mod:`~latentcv.cv_models.analysis.ice`).
        units: the LAMMPS ``units`` style of ``system.lmp`` ("lj", or "real" for mW).
        bias_stride: METAD STRIDE for this system's time step by the rule of
            ``MetadDefaults.bias_stride`` (STRIDE × dt at most a tenth of the period of the
            fastest motion the bias couples to): 5 for the LJ systems; 1 for mW, whose
            10 fs steps resolve ice's fastest vibrations (~115 fs period at 230 K) with
            only ~11 steps, so 5 × 10 fs would sit near the half-period resonance.
        crystal_threshold: the judged crystalline share above which a metadynamics box
            counts as crystallised (held ``hold_steps``): 0.8; 0.7 for mW, whose ice frozen
            from the melt is stacking-disordered and polycrystalline: a 1 000-molecule box
            that froze under bias reads 0.74–0.80 cubic + hexagonal by CHILL+ (12–14 %
            interfacial ice at the faults and boundaries; 95 % diamond-like by OVITO's
            identification), the supercooled melt ≤ 0.005 (docs/results.md section 7).
        cluster_link: distance (length unit) within which crystalline molecules join one
            cluster for the largest-nucleus size of ``latentcv fes`` (0: the judge's cutoff;
            ten Wolde clusters are always joined by their solid bonds). 2.1 for the
            trimers: their rod layers are 1.9–2.0 σ apart, so the judge's 1.5 σ splits a
            nucleus into its layers (docs/results.md section 5, "Shape at three box sizes").
            PLUMED's largest-cluster CV of ``latentcv compare`` joins its solid-like
            molecules within the same distance.
        cluster_solid_q6: (D_0, D_MAX) of the CUBIC switch on LOCAL_Q6 (the sum over
            neighbours of aligned q6) that makes a molecule solid-like for PLUMED's
            largest-cluster CV: (5, 7), ~6 of 12 neighbours, for close-packed crystals;
            (2.5, 3.5) for the trimers, whose centres have 6 neighbours within the cutoff.
        interface_melt_steps: steps the liquid part of an ``interface`` run (the seed
            frozen) is melted at the file's ``tmelt``, then as many cooled to the run's
            temperature (``examples/<system>/interface.lmp``'s ``melt``). 1000 for LJ,
            dimers and mW; 4000 for the trimers, whose liquid keeps the crystal's
            alignment after 1000 in large boxes: in 4 096-molecule boxes with a 1 % seed,
            the molecules more than 5 σ from it read nematic order S = 0.20–0.24 at the
            first sampled frame and 11–15 % judged crystalline after 1000 (3 seeds),
            0.009–0.015 and 6 % after 2000, 0.010–0.018 and 6 % after 4000, the melt run
            0.025 and 6 %; the box volume at the first frame is 8–9 % above the melt's
            after 1000 or 2000 (still relaxing from T = 3.0), 3.4–3.6 % after 4000
            (benchmarks/interface_melt.py; 512 molecules lose the alignment within 1000).
    """

    name: str
    template_dir: Path
    temperature: float
    pressure: float
    dt: float
    tdamp: float
    pdamp: float
    density: float
    melt_density: float
    melt_temperature: float
    transition_temperature: float | None
    atoms_per_molecule: int
    tenwolde_cutoff: float
    molecules_per_cell: int = 4
    default_cells: int = 6
    interface_seeds: tuple[tuple[str, float, float], ...] = DEFAULT_INTERFACE_SEEDS
    crystal_criterion: str = "ten_wolde"
    units: str = "lj"
    bias_stride: int = METAD_DEFAULTS.bias_stride
    crystal_threshold: float = 0.8
    cluster_link: float = 0.0
    cluster_solid_q6: tuple[float, float] = (5.0, 7.0)
    interface_melt_steps: int = 1000

    @property
    def length_unit(self) -> str:
        """latentcv's length unit of the system's frames ("lj" or "A")."""
        from latentcv.cv_models.units import lammps_length_unit

        return lammps_length_unit(self.units)

    def n_molecules(self, n_cells: int) -> int:
        """Molecules of a crystal or melt run with ``n_cells`` cells per edge."""
        return self.molecules_per_cell * n_cells**3


SYSTEMS: dict[str, SystemSpec] = {
    "lj": SystemSpec("lj", EXAMPLES / "lj", 0.58, 1.0, 0.005, 0.5, 5.0, 1.04, 0.85, 1.5, 0.45, 1, 1.5),
    "dimers": SystemSpec(
        "dimers",
        EXAMPLES / "dimers",
        1.15,
        1.0,
        0.003,
        0.3,
        3.0,
        0.80,
        0.65,
        2.5,
        None,
        2,
        1.6,
        interface_seeds=DIMER_INTERFACE_SEEDS,
    ),
    # orientationally ordered molecular crystal (benchmarks/molecular_system.py, docs/data.md)
    "trimers": SystemSpec(
        "trimers",
        EXAMPLES / "trimers",
        1.1,
        1.0,
        0.003,
        0.3,
        3.0,
        0.50,
        0.40,
        3.0,
        None,
        3,
        1.5,
        molecules_per_cell=8,
        default_cells=4,
        interface_seeds=TRIMER_INTERFACE_SEEDS,
        crystal_criterion="local_p2",
        cluster_link=2.1,
        # LOCAL_Q6 of the centres: 5.6-5.9 in the crystal (6 in-layer neighbours), median
        # 1.0 and 95th percentile 2.0 in the melt (docs/results.md, section 5)
        cluster_solid_q6=(2.5, 3.5),
        interface_melt_steps=4000,
    ),
    # mW water (examples/mw, units real): ice Ih/Ic lattices, T_m = 274.6 K (Molinero & Moore
    # 2009; checked here by benchmarks/mw_melting.py, docs/results.md "mW water")
    "mw": SystemSpec(
        "mw",
        EXAMPLES / "mw",
        MW_TEMPERATURE,
        1.0,
        10.0,
        1000.0,
        5000.0,
        MW_ICE_DENSITY,
        0.0300,
        400.0,
        None,
        1,
        3.5,
        molecules_per_cell=8,
        default_cells=5,
        interface_seeds=MW_INTERFACE_SEEDS,
        crystal_criterion="chill_plus",
        units="real",
        bias_stride=1,
        crystal_threshold=0.7,
    ),
}


def system_commands(
    system: str,
    n_cells: int,
    *,
    density: float | None = None,
    dt: float | None = None,
    seed: int = 1,
    ncz: int | None = None,
    units: str | None = None,
    lattice: str | None = None,
) -> str:
    """LAMMPS commands that build ``system`` (``examples/<system>/system.lmp``) in a fresh instance.

    Args:
        system: a key of :data:`SYSTEMS`.
        n_cells: lattice unit cells per box edge (``ncz`` along z; None: ``n_cells``).
        density: lattice number density of molecules (None: the crystal's, ``spec.density``).
        dt: time step in the system's time unit (None: ``spec.dt``).
        seed: random seed of the molecular systems' orientations.
        units: LAMMPS units style (None: the system's own, ``spec.units``); only the LJ system
            takes another (``real``, ``metal``: ``density`` is then the lattice constant,
            and mass and pair coefficients are the caller's, in those units).
        lattice: the crystal of systems that have several (mW: "ih" hexagonal, "ic" cubic
            ice; None: the file's default).

    Returns:
        The commands as one string for ``lmp.commands_string``: index variables, then the
        ``include``. Velocities, thermostat and output are the caller's.
    """
    try:
        spec = SYSTEMS[system]
    except KeyError:
        raise ValueError(f"Unknown system {system!r}; one of {sorted(SYSTEMS)}") from None
    units = spec.units if units is None else units
    if units != spec.units and system != "lj":
        raise ValueError(
            f"system {system!r} is written in {spec.units} units only; units={units!r} is for the LJ system"
        )
    if lattice is not None and system != "mw":
        raise ValueError(f"system {system!r} has one lattice; lattice={lattice!r} is for mw ('ih' or 'ic')")
    variables = dict(
        examples=spec.template_dir,
        ncells=n_cells,
        ncz=n_cells if ncz is None else ncz,
        density=spec.density if density is None else density,
        dt=spec.dt if dt is None else dt,
        seed=seed,
        units=units,
    )
    if lattice is not None:
        variables["lattice"] = lattice
    lines = [f"variable {name} index {value}" for name, value in variables.items()]
    return "\n".join(lines + [f"include {spec.template_dir / 'system.lmp'}", ""])


def lattice_frame_lammps(system: str, n_cells: int, *, lattice: str | None = None, **kwargs):
    """The perfect lattice that ``system.lmp`` builds (no MD), as a CRYSTAL Frame in the
    system's length unit: the crystal's basis is written once, in that file, and tests and
    analyses take their reference lattices from it. ``kwargs``: :func:`system_commands`'s."""
    import numpy as np

    from latentcv.cv_models.data.frames import CRYSTAL, Frame
    from latentcv.cv_models.engines import open_lammps

    spec = SYSTEMS[system]
    lmp = open_lammps()
    try:
        lmp.commands_string(system_commands(system, n_cells, lattice=lattice, **kwargs))
        x = np.array(lmp.numpy.extract_atom("x"), dtype=np.float64)[: lmp.get_natoms()]
        ids = np.array(lmp.numpy.extract_atom("id"))[: lmp.get_natoms()]
        xlo, xhi, xy, yz, xz, _, _ = lmp.extract_box()
        lengths = np.asarray(xhi) - np.asarray(xlo)
    finally:
        lmp.close()
    cell = np.array([[lengths[0], 0, 0], [xy, lengths[1], 0], [xz, yz, lengths[2]]])
    a = spec.atoms_per_molecule
    pos = x[np.argsort(ids)]
    return Frame(
        positions=pos,
        cell=cell,
        molecule=np.repeat(np.arange(len(pos) // a), a),
        species=np.zeros(len(pos), dtype=np.int64),
        label=CRYSTAL,
        length_unit=spec.length_unit,
        trajectory=f"{system}-lattice-{lattice or 'default'}",
    )
