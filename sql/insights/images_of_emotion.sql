-- The images of one emotion (any of its names or synonyms) and how many there are.
-- :emotion = 'happy'  an emotion name or synonym, e.g. happy, joy, angry
WITH matching AS (
  SELECT a.source, a.path, a.emotion, a.split, a.height, a.width
  FROM all_images AS a
  JOIN emotions AS e ON a.label_id = e.emotion_id
  WHERE array_contains(e.synonyms, lower(:emotion))
)
SELECT m.*, t.images_of_emotion
FROM matching AS m
CROSS JOIN (SELECT count(*) AS images_of_emotion FROM matching) AS t
ORDER BY m.source, m.path
