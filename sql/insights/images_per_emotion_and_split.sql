-- Images per emotion and split, for one source or all.
-- :source = ''  a source_id, or '' for every source
SELECT emotion, label_id, split, count(*) AS images
FROM all_images
WHERE :source = '' OR source = :source
GROUP BY emotion, label_id, split
ORDER BY label_id, split
