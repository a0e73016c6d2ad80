"""Stage 5, machine learning: training sets pinned to Delta versions (pure rules in
:mod:`femo.ml.selection`, the Spark side in :mod:`femo.ml.training_set`,
``jobs/build_training_set.py``), Petastorm feeding into ``tf.data`` (:mod:`femo.ml.feeding`) and
the model zoo (:mod:`femo.ml.zoo`).

Imports the ground, :mod:`femo.ingest.layout` (split names) and :mod:`femo.faces.detection`
(each source's face policy).
"""
