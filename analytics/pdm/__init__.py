"""Predictive maintenance: features, per-type models with model cards, live predictions.

Flow: :mod:`.signals` (which tag is which symptom) → :mod:`.features` (windows → feature rows,
same code for training and inference) → :mod:`.dataset` (run-to-failure histories → rows, split
by run) → :mod:`.model` (train, choose threshold, evaluate, save with :mod:`.card`) →
:mod:`.predict` (load models, predict one equipment, explain with :mod:`.contributions`).
"""
