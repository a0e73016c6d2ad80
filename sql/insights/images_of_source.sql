-- The images of one source, in a stable order (the seed's per-source tables).
-- :source = 'fer2013'  a source_id (see the sources table)
SELECT image_id, path, emotion, split, image_format, height, width, aspect_ratio, color_space,
       file_size
FROM all_images
WHERE source = :source
ORDER BY path
