-- The newest detection of every image: for each image and policy, the rows of the detector
-- version that ran last on it. Older versions stay in faces, queryable by detector_version.
CREATE OR REPLACE VIEW faces_current
COMMENT 'The newest detection of each image (faces or no_face), with its source, path, label and split'
AS WITH latest AS (
  SELECT image_id, policy, max_by(detector_version, detected_at) AS detector_version
  FROM faces
  GROUP BY image_id, policy
)
SELECT f.face_id, f.image_id, i.source, i.path, i.label_id, e.name AS emotion, i.split,
       f.policy, f.detector, f.detector_version, f.status, f.face_index, f.faces_in_image,
       f.detected_faces, f.bbox_x, f.bbox_y, f.bbox_w, f.bbox_h, f.crop, f.crop_size,
       f.detected_at
FROM faces AS f
JOIN latest AS l
  ON f.image_id = l.image_id AND f.policy = l.policy AND f.detector_version = l.detector_version
JOIN images AS i ON f.image_id = i.image_id
LEFT JOIN emotions AS e ON i.label_id = e.emotion_id
