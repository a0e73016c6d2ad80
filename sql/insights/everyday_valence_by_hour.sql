-- Positive vs negative emotions by hour of the day in "Emotions in everyday life": responses in
-- each hour, the positive and negative emotions they flag, and each valence's share of those
-- flags (NULL where none). Every hour of the range is listed, with 0 where nobody answered.
-- :source = ''  a source_id, or '' for every source
-- :first_hour = 6  first hour shown (the seed's analysis: 6-23, waking hours)
-- :last_hour = 23  last hour shown
WITH hours AS (
  SELECT explode(sequence(:first_hour, :last_hour)) AS hour
),
responses AS (
  SELECT hour, felt FROM everyday_emotions
  WHERE (:source = '' OR source = :source) AND hour BETWEEN :first_hour AND :last_hour
),
per_hour AS (
  SELECT hour, count(*) AS responses FROM responses GROUP BY hour
),
flags AS (
  SELECT f.hour,
         count_if(n.valence = 'positive') AS positive,
         count_if(n.valence = 'negative') AS negative
  FROM (SELECT hour, explode(felt) AS emotion FROM responses) AS f
  JOIN everyday_emotion_names AS n ON n.emotion = f.emotion
  GROUP BY f.hour
)
SELECT h.hour,
       coalesce(p.responses, 0) AS responses,
       coalesce(f.positive, 0) AS positive,
       coalesce(f.negative, 0) AS negative,
       round(f.positive / nullif(f.positive + f.negative, 0), 4) AS positive_share,
       round(f.negative / nullif(f.positive + f.negative, 0), 4) AS negative_share
FROM hours AS h
LEFT JOIN per_hour AS p ON p.hour = h.hour
LEFT JOIN flags AS f ON f.hour = h.hour
ORDER BY h.hour
