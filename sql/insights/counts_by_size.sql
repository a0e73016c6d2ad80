-- How many images have each height and width, per source.
SELECT source, height, width, count(*) AS images
FROM all_images
GROUP BY source, height, width
ORDER BY source, images DESC, height, width
