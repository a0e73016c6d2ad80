-- Candidates of a training set: for every labelled image copy, the largest face of the newest
-- detection under its source's policy. Reads snapshot views that femo.ml.training_set registers
-- at the set's pinned Delta versions: ts_faces, ts_images (with each copy's policy) and
-- ts_emotions. Crops may be NULL (a face row without one): the caller counts and drops them.
WITH latest AS (
  SELECT image_id, policy, max_by(detector_version, detected_at) AS detector_version
  FROM ts_faces
  GROUP BY image_id, policy
)
SELECT i.source, i.path, i.image_id, f.face_id, i.label_id, i.split, f.crop, f.crop_size
FROM ts_images AS i
JOIN ts_emotions AS e ON i.label_id = e.emotion_id
JOIN latest AS l ON l.image_id = i.image_id AND l.policy = i.policy
JOIN ts_faces AS f
  ON f.image_id = l.image_id AND f.policy = l.policy AND f.detector_version = l.detector_version
WHERE f.status = 'face' AND f.face_index = 0
