-- The emotion(s) whose FACS combination has the most action units (ties all listed), with the
-- action units in the guide's order.
WITH counted AS (
  SELECT l.emotion_id, e.name AS emotion, l.emotion AS guide_emotion,
         count(*) AS action_unit_count,
         transform(array_sort(collect_list(struct(l.position, l.action_unit))),
                   x -> x.action_unit) AS action_units
  FROM emotion_action_units AS l
  JOIN emotions AS e ON l.emotion_id = e.emotion_id
  GROUP BY l.emotion_id, e.name, l.emotion
)
SELECT emotion_id, emotion, guide_emotion, action_unit_count, action_units
FROM counted
WHERE action_unit_count = (SELECT max(action_unit_count) FROM counted)
ORDER BY emotion_id
