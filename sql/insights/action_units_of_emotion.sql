-- The FACS action units of one emotion, in the guide's order, with their names and muscles.
-- :emotion = 'happy'  a name the emotions table knows (name or synonym, e.g. joy) or the
--   guide's own wording (e.g. 'Happiness / Joy'); case and surrounding spaces do not matter
SELECT e.emotion_id, e.name AS emotion, l.emotion AS guide_emotion, l.position, l.action_unit,
       a.name AS action_unit_name, a.facial_muscle, l.action_units_text, l.note
FROM emotion_action_units AS l
JOIN emotions AS e ON l.emotion_id = e.emotion_id
LEFT JOIN action_units AS a ON l.action_unit = a.action_unit
WHERE lower(trim(:emotion)) = e.name
   OR array_contains(e.synonyms, lower(trim(:emotion)))
   OR lower(trim(:emotion)) = lower(l.emotion)
ORDER BY l.position
