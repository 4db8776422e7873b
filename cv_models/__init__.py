"""latentcv: learned collective variables for metadynamics of crystal nucleation.

Python half of the project: data, graphs, layers, the hierarchical graph autoencoder,
training, analysis and the ``latentcv`` command line. The deployable TorchScript export
lives in the sibling package ``export``; the C++ core, PLUMED action and LAMMPS plugin
are compiled into ``cv_models/_lib`` (see ``cv_models.paths``).
"""

__version__ = "0.1.0"
