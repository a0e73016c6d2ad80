-- Emotions per split of one training set, with the class weight training gives each.
-- :set_id = ''  a training set id, or '' for the newest set
WITH chosen AS (
  SELECT coalesce(nullif(:set_id, ''), max_by(set_id, created_at)) AS set_id FROM training_sets
)
SELECT x.split, x.label_id, e.name AS emotion, count(*) AS faces, first(x.weight) AS weight
FROM training_examples AS x
JOIN chosen AS c ON x.set_id = c.set_id
LEFT JOIN emotions AS e ON x.label_id = e.emotion_id
GROUP BY x.split, x.label_id, e.name
ORDER BY x.split, x.label_id
