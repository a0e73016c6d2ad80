-- Identical images (same bytes) stored more than once, under any labels or sources.
SELECT image_id,
       count(*) AS copies,
       count(DISTINCT label_id) AS labels,
       count(DISTINCT source) AS sources,
       sort_array(collect_list(path)) AS paths
FROM all_images
GROUP BY image_id
HAVING count(*) > 1
ORDER BY copies DESC, image_id
