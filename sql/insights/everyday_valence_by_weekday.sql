-- Positive vs negative emotions by weekday in "Emotions in everyday life", Monday first:
-- responses on each weekday, the positive and negative emotions they flag, and each valence's
-- share of those flags (NULL where none).
-- :source = ''  a source_id, or '' for every source
WITH responses AS (
  SELECT weekday, weekday_no, felt FROM everyday_emotions
  WHERE :source = '' OR source = :source
),
per_day AS (
  SELECT weekday_no, weekday, count(*) AS responses
  FROM responses GROUP BY weekday_no, weekday
),
flags AS (
  SELECT f.weekday_no,
         count_if(n.valence = 'positive') AS positive,
         count_if(n.valence = 'negative') AS negative
  FROM (SELECT weekday_no, explode(felt) AS emotion FROM responses) AS f
  JOIN everyday_emotion_names AS n ON n.emotion = f.emotion
  GROUP BY f.weekday_no
)
SELECT d.weekday, d.weekday_no, d.responses,
       coalesce(f.positive, 0) AS positive,
       coalesce(f.negative, 0) AS negative,
       round(f.positive / nullif(f.positive + f.negative, 0), 4) AS positive_share,
       round(f.negative / nullif(f.positive + f.negative, 0), 4) AS negative_share
FROM per_day AS d
LEFT JOIN flags AS f ON f.weekday_no = d.weekday_no
ORDER BY d.weekday_no
