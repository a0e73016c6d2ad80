-- Identical images (same bytes) filed under more than one emotion: FER-2013 has some.
SELECT image_id,
       count(*) AS copies,
       sort_array(collect_set(emotion)) AS emotions,
       sort_array(collect_list(path)) AS paths
FROM all_images
GROUP BY image_id
HAVING count(DISTINCT label_id) > 1
ORDER BY copies DESC, image_id
