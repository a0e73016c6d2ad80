-- The n-th image (1-based) in a stable order: source, then path.
-- :n = 1  position, 1 for the first
SELECT position, image_id, source, path, emotion, split, height, width
FROM (
  SELECT row_number() OVER (ORDER BY source, path) AS position, *
  FROM all_images
)
WHERE position = :n
