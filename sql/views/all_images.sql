-- Every image with its source and emotion names: the seed's all_images, without the bytes.
CREATE OR REPLACE VIEW all_images
COMMENT 'Every ingested image with source and emotion names (bytes left out; see images.content)'
AS SELECT
  i.image_id, i.source, s.name AS source_name, i.path, i.label, i.label_id,
  e.name AS emotion, i.split, i.format AS image_format, i.height, i.width, i.channels,
  i.color_space, i.aspect_ratio, i.file_size_bytes AS file_size, i.brightness, i.contrast,
  i.sharpness, i.phash, i.ingested_at, i.run_id
FROM images AS i
LEFT JOIN emotions AS e ON i.label_id = e.emotion_id
LEFT JOIN sources AS s ON i.source = s.source_id
