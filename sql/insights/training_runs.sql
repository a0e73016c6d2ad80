-- Training runs, newest first: model, training set, how long, how well (test split).
-- The registry's aliases (champion, challenger) live in MLflow: see `mlflow ui` or femo.ml.tracking.
SELECT r.run_id, r.architecture, r.model_name, r.model_version, r.set_id,
       s.split_counts['train'] AS train_faces, r.ranks, r.epochs, r.best_epoch, r.stopped_by,
       round(r.train_seconds / 60, 1) AS train_minutes,
       round(r.val_accuracy, 4) AS val_accuracy, round(r.test_accuracy, 4) AS test_accuracy,
       round(r.test_macro_f1, 4) AS test_macro_f1, round(r.test_accuracy_flip, 4) AS test_accuracy_flip,
       r.finished_at
FROM training_runs AS r
LEFT JOIN training_sets AS s ON r.set_id = s.set_id
ORDER BY r.finished_at DESC
