-- Square images of one side length: the seed's "48-px images" (FER-2013's size).
-- :side = 48  side in pixels
SELECT source, path, emotion, split, image_format, color_space, file_size
FROM all_images
WHERE height = :side AND width = :side
ORDER BY source, path
