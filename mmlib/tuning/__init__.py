"""Hyperparameter tuning on Optuna: the search spaces (:mod:`mmlib.tuning.space`, a leaf the method
modules import), the study and its objective (:mod:`mmlib.tuning.study`), the tuned-parameters files
(:mod:`mmlib.tuning.files`) and ``python -m mmlib tune`` (:mod:`mmlib.tuning.cli`).

This file imports nothing, so a method module can import :mod:`mmlib.tuning.space` without pulling
in the training loop.
"""
