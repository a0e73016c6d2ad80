-- The images of one emotion (any of its names or synonyms) and how many there are.
-- :emotion = 'happy'  an emotion name or synonym, e.g. happy, joy, angry
SELECT a.source, a.path, a.emotion, a.split, a.height, a.width,
       count(*) OVER () AS images_of_emotion
FROM all_images AS a
JOIN emotions AS e ON a.label_id = e.emotion_id
WHERE array_contains(e.synonyms, lower(:emotion))
ORDER BY a.source, a.path
