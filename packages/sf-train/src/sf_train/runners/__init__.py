"""Ways to run a stage of the loop; the stages themselves never branch on them.

* :mod:`~.processes`: the process group of ``accelerate launch`` (one process otherwise): the
  main process alone generates, scores and pairs, every process trains.
* :mod:`~.local`: this machine: a warm sandbox pool opened per scoring stage
  (:class:`~.local.LocalSandboxes`), training in this process group (:class:`~.local.LocalTraining`).
* :mod:`~.on_ray`: a Ray cluster (``ray_address``, ``train_launcher: ray``): one connection per run
  (:class:`~.on_ray.RayCluster`), the nodes' sandbox pools for scoring
  (:class:`~.on_ray.RaySandboxes`), Ray Train for training (:class:`~.on_ray.RayTraining`).
"""
