"""Stage 5, machine learning: training sets pinned to Delta versions (pure rules in
:mod:`femo.ml.selection`, the Spark side in :mod:`femo.ml.training_set`,
``jobs/build_training_set.py``), Petastorm feeding into ``tf.data`` (:mod:`femo.ml.feeding`),
the model zoo (:mod:`femo.ml.zoo`), Horovod training (what a rank runs: :mod:`femo.ml.training`;
starting the ranks: :mod:`femo.ml.launch`; the driver's side: :mod:`femo.ml.runs`,
``jobs/train.py``), evaluation (:mod:`femo.ml.evaluation`), MLflow tracking and registry
(:mod:`femo.ml.tracking`) and the model that ships with femo (:mod:`femo.ml.shipped`).

Imports the ground, :mod:`femo.ingest.layout` (split names) and :mod:`femo.faces.detection`
(each source's face policy).
"""
