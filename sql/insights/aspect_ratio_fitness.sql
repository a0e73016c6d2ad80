-- The seed's aspect-ratio check: square images are fine for square model inputs, others may be
-- distorted when resized.
SELECT source, path, emotion, width, height, aspect_ratio,
       CASE WHEN aspect_ratio = 1 THEN 'should_be_fine' ELSE 'possible_distortions' END
         AS fitness
FROM all_images
ORDER BY fitness DESC, source, path
