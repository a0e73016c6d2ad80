-- Aspect ratios per source: how many images are square (fine for square model inputs) and how
-- many may be distorted when resized, with the spread of widths and heights.
SELECT source,
       CASE WHEN aspect_ratio = 1 THEN 'should_be_fine' ELSE 'possible_distortions' END
         AS fitness,
       count(*) AS images,
       min(width) AS min_width, max(width) AS max_width,
       min(height) AS min_height, max(height) AS max_height,
       round(avg(aspect_ratio), 3) AS mean_aspect_ratio
FROM all_images
GROUP BY 1, 2
ORDER BY source, fitness DESC
