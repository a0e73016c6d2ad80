-- Sources that hold images (those get an images_<source_id> view).
SELECT source_id FROM sources
WHERE kind IN ('image_folders', 'fer_csv', 'image_api', 'web_search')
ORDER BY source_id
