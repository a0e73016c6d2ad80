-- The n-th image (1-based) in a stable order: source, then path.
-- :n = 1  position, 1 for the first
-- Numbered within each source (a window per source, so no single-partition sort of every
-- image), then offset by the images of the sources before it.
WITH per_source AS (
  SELECT source, count(*) AS images FROM all_images GROUP BY source
),
offsets AS (
  SELECT p.source, coalesce(sum(q.images), 0) AS before
  FROM per_source AS p
  LEFT JOIN per_source AS q ON q.source < p.source
  GROUP BY p.source
)
SELECT position, image_id, source, path, emotion, split, height, width
FROM (
  SELECT o.before + row_number() OVER (PARTITION BY a.source ORDER BY a.path) AS position, a.*
  FROM all_images AS a
  JOIN offsets AS o ON o.source = a.source
)
WHERE position = :n
