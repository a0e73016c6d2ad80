-- Images per emotion over every source, with each emotion's share; emotions without images
-- show 0.
SELECT e.emotion_id, e.name AS emotion, count(a.image_id) AS images,
       round(count(a.image_id) / greatest(sum(count(a.image_id)) OVER (), 1), 4) AS share
FROM emotions AS e
LEFT JOIN all_images AS a ON a.label_id = e.emotion_id
GROUP BY e.emotion_id, e.name
ORDER BY e.emotion_id
