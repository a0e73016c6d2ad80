-- How often each of the 18 emotions of "Emotions in everyday life" was reported: responses that
-- flag it and their share of all responses (a response may flag several emotions, so shares
-- add up to more than 1). Names and valence come from everyday_emotion_names.
-- :source = ''  a source_id, or '' for every source
WITH responses AS (
  SELECT felt FROM everyday_emotions WHERE :source = '' OR source = :source
),
total AS (
  SELECT count(*) AS responses FROM responses
),
reports AS (
  SELECT emotion, count(*) AS responses
  FROM (SELECT explode(felt) AS emotion FROM responses)
  GROUP BY emotion
)
SELECT n.emotion, n.original_name, n.valence,
       coalesce(r.responses, 0) AS responses,
       round(coalesce(r.responses, 0) / nullif(t.responses, 0), 4) AS share
FROM everyday_emotion_names AS n
CROSS JOIN total AS t
LEFT JOIN reports AS r ON r.emotion = n.emotion
ORDER BY responses DESC, n.position
