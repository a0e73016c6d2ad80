-- Class balance per source and split: images per emotion and their share of the split.
-- :source = ''  a source_id, or '' for every source
SELECT source, split, label_id, emotion, count(*) AS images,
       round(count(*) / sum(count(*)) OVER (PARTITION BY source, split), 4) AS share_of_split
FROM all_images
WHERE :source = '' OR source = :source
GROUP BY source, split, label_id, emotion
ORDER BY source, split, label_id
