"""latentcv's native runtime, what training and deployment both load: the C++ core
(:mod:`.core`, the code LATENT_CV runs in PLUMED), the fused-operator library
(:mod:`.ops`) and where the compiled files and the bundled engines live (:mod:`.paths`).

The compiled files stay in ``latentcv/cv_models/_lib`` (``make build``).
"""
