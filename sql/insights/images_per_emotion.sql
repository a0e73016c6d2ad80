-- Images per emotion over every source, with each emotion's share; emotions without images
-- show 0.
WITH counts AS (
  SELECT e.emotion_id, e.name AS emotion, count(a.image_id) AS images
  FROM emotions AS e
  LEFT JOIN all_images AS a ON a.label_id = e.emotion_id
  GROUP BY e.emotion_id, e.name
)
SELECT c.emotion_id, c.emotion, c.images, round(c.images / greatest(t.total, 1), 4) AS share
FROM counts AS c
CROSS JOIN (SELECT sum(images) AS total FROM counts) AS t
ORDER BY c.emotion_id
