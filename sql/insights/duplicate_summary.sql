-- Duplicates in one line per source: files, distinct byte contents, contents stored more than
-- once, and contents filed under more than one emotion (label conflicts).
WITH per_id AS (
  SELECT source, image_id, count(*) AS copies, count(DISTINCT label_id) AS labels
  FROM all_images
  GROUP BY source, image_id
)
SELECT source,
       sum(copies) AS files,
       count(*) AS distinct_images,
       count_if(copies > 1) AS duplicated_images,
       sum(CASE WHEN copies > 1 THEN copies - 1 ELSE 0 END) AS redundant_files,
       count_if(labels > 1) AS label_conflicts
FROM per_id
GROUP BY source
ORDER BY source
