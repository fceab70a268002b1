"""Pipelines: what the commands, the studies and the scikit-learn estimators run, above the engine.

* :mod:`.training`: a seeded in-memory fit, ``train_model`` (a config tree into a run directory) and
  the one writer of ``final_metrics.json``;
* :mod:`.transfer`: a classifier from a pre-trained backbone, probe and classical heads, a transfer run;
* :mod:`.pretraining`: greedy layer-wise pre-training of a stack, and fine-tuning from it;
* :mod:`.adaptation`: training one domain-adaptation method, and scoring an adaptation run.

A command parses, calls a recipe and prints; a study or an estimator calls a recipe. None of them
builds a :class:`~reprlab.train.engine.Trainer` itself.
"""
