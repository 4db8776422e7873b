"""latentcv's commands: the ``latentcv`` command line and the jobs it runs end to end.

The application layer, on top of the two libraries it drives: the model side
(:mod:`latentcv.cv_models`: data, geometry, layers, training) and the deployment side
(:mod:`latentcv.export`: the checked TorchScript model, PLUMED inputs). Nothing outside
this package imports it, so the packages import one another without a cycle:
``latentcv.cv_models`` ← ``latentcv.export`` ← ``latentcv.cv_models.app``.

- :mod:`.cli`: ``latentcv SUBCOMMAND``.
- :mod:`.demo`: ``latentcv demo``, the whole pipeline on the embedded LJ system.
- :mod:`.compare`: ``latentcv compare``, metadynamics with latentcv and the standard CVs.
- :mod:`.refine`: ``latentcv refine``, retraining on the frames a biased run visited.
"""
