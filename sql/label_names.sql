-- Every label name (lower case) a source may use, and the emotion it maps to.
SELECT lower(trim(label)) AS label, emotion_id
FROM emotions LATERAL VIEW explode(array_union(array(name), synonyms)) AS label
