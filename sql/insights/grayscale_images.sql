-- Grayscale images (one channel, or three equal channels), with their share per source.
SELECT source, path, emotion, split, channels, image_format,
       count(*) OVER (PARTITION BY source) AS grayscale_in_source
FROM all_images
WHERE color_space = 'grayscale'
ORDER BY source, path
