-- One view per image source, images_<source_id> (the seed had images_pixabay, images_ddg,
-- images_kaggle, images_fer2013). View bodies cannot hold parameter markers, so $source is
-- substituted by femo.platform.catalog.refresh_views, only with a source_id that passed the slug check
-- ([a-z][a-z0-9_]*).
CREATE OR REPLACE VIEW images_$source
COMMENT 'Images of the source $source, with emotion names'
AS SELECT * FROM all_images WHERE source = '$source'
