-- Per-emotion precision, recall and F1 of one training run on its test split, with the share of
-- each emotion's faces taken for each other emotion (the confusion matrix's largest mix-up).
-- :run_id = ''  an MLflow run id, or '' for the newest run
WITH chosen AS (
  SELECT coalesce(nullif(:run_id, ''), max_by(run_id, finished_at)) AS run_id FROM training_runs
),
m AS (
  SELECT x.* FROM run_metrics AS x JOIN chosen AS c ON x.run_id = c.run_id WHERE x.split = 'test'
),
per_class AS (
  SELECT label_id,
         max(CASE WHEN metric = 'precision' THEN value END) AS precision,
         max(CASE WHEN metric = 'recall' THEN value END) AS recall,
         max(CASE WHEN metric = 'f1' THEN value END) AS f1,
         max(CASE WHEN metric = 'support' THEN value END) AS faces
  FROM m WHERE metric IN ('precision', 'recall', 'f1', 'support')
  GROUP BY label_id
),
mixups AS (
  SELECT label_id, max_by(predicted_id, value) AS predicted_id, max(value) AS n
  FROM m WHERE metric = 'confusion' AND label_id <> predicted_id AND value > 0
  GROUP BY label_id
)
SELECT e.name AS emotion, CAST(p.faces AS INT) AS faces, round(p.precision, 3) AS precision,
       round(p.recall, 3) AS recall, round(p.f1, 3) AS f1, o.name AS most_mistaken_for,
       round(x.n / p.faces, 3) AS share_mistaken
FROM per_class AS p
LEFT JOIN mixups AS x ON p.label_id = x.label_id
LEFT JOIN emotions AS e ON p.label_id = e.emotion_id
LEFT JOIN emotions AS o ON x.predicted_id = o.emotion_id
ORDER BY p.label_id
