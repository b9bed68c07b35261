"""The pipeline layer: everything that reads and writes run folders.

Run folders (``runs``), model checkpoints (``checkpoints``) and multi-stage jobs (``stages``); one
module per command that works on them: ``train``, ``attack``, ``explain`` (explain runs, their grids
and drift), ``diagnose``, ``study`` (pooling), ``baselines``, ``chains`` (what each reproduction runs)
and ``reproduce``, ``zoo`` (the shipped weights as run folders) and its ``refresh``, and ``demo``. The
packages below it (attacks, training, explain, diagnose, baselines, report) work on tensors, modules
and datasets in memory; ``tests/test_layers.py`` keeps the imports pointing down.
"""
