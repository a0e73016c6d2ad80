-- The newest detection of every image copy: for each (source, path) of images, the rows of the
-- policy its source uses (sources.face_policy, recorded by jobs/detect_faces.py) under the
-- detector version that ran last on it. An image held by two sources shows each copy its own
-- source's detection. Older versions stay in faces, queryable by detector_version.
CREATE OR REPLACE VIEW faces_current
COMMENT 'The newest detection of each image copy under the face policy of its source (faces or no_face), with its source, path, label and split'
AS WITH latest AS (
  SELECT image_id, policy, max_by(detector_version, detected_at) AS detector_version
  FROM faces
  GROUP BY image_id, policy
)
SELECT f.face_id, f.image_id, i.source, i.path, i.label_id, e.name AS emotion, i.split,
       f.policy, f.detector, f.detector_version, f.status, f.face_index, f.faces_in_image,
       f.detected_faces, f.bbox_x, f.bbox_y, f.bbox_w, f.bbox_h, f.crop, f.crop_size,
       f.detected_at
FROM images AS i
JOIN sources AS s ON i.source = s.source_id
JOIN latest AS l ON l.image_id = i.image_id AND l.policy = s.face_policy
JOIN faces AS f
  ON f.image_id = l.image_id AND f.policy = l.policy AND f.detector_version = l.detector_version
LEFT JOIN emotions AS e ON i.label_id = e.emotion_id
