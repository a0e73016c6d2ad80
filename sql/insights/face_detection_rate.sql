-- Share of images with at least one face, per source and emotion (current detector version).
SELECT source, emotion, policy,
       count(DISTINCT path) AS images,
       count(DISTINCT CASE WHEN status = 'face' THEN path END) AS with_face,
       round(count(DISTINCT CASE WHEN status = 'face' THEN path END) / count(DISTINCT path), 3)
         AS detection_rate,
       round(avg(CASE WHEN policy = 'whole_image' THEN least(detected_faces, 1) END), 3)
         AS detector_check_rate
FROM faces_current
GROUP BY source, emotion, policy
ORDER BY source, emotion
