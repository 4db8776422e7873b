"""latentcv: learned collective variables for metadynamics of crystal nucleation.

The installed package ``latentcv`` is the checkout's ``cv_models/`` folder: data, graphs,
layers, the hierarchical graph autoencoder, training, analysis and the ``latentcv``
command line. The deployable TorchScript export, folder ``export/``, installs as
``latentcv.export``; the C++ core (``latentcv.cv_models.native.core``), PLUMED action and LAMMPS plugin
are compiled into ``latentcv/cv_models/_lib`` (see ``latentcv.cv_models.native.paths``).
"""

__version__ = "0.1.0"
