"""The experiment layer: everything between a user's command and the compiled engine.

The engine (:mod:`rlfoundry.engine`) runs training as compiled chunks; this package is the
host side around it: where settings come from (:mod:`configure`, :mod:`presets`), the run
folder on disk (:mod:`runfolder`), checkpoints that resume bit-for-bit (:mod:`checkpoint`),
logs (:mod:`logs`), the progress bar (:mod:`progress`), the training loop with its signal
handling (:mod:`runner`), and what users do with a finished run: :mod:`evaluate`,
:mod:`render`, :mod:`plots`, :mod:`stats`, :mod:`report` and :mod:`sweep`.

Modules import JAX lazily where they can, so ``rlfoundry --help`` and ``rlfoundry list``
stay fast.
"""
