-- Every image with its source and emotion names (all_images) and the action units that make up
-- its emotion per the FACS guide (jobs/scrape_facs.py), in the guide's order: numbers and names
-- as two aligned arrays. Empty arrays for an emotion without action units (neutral) or before
-- the FACS job ran; NULL for an image without a label.
CREATE OR REPLACE VIEW all_data
COMMENT 'Every image with source and emotion names, and the FACS action units of its emotion'
AS WITH emotion_units AS (
  SELECT emotion_id,
         array_sort(collect_list(struct(l.position, l.action_unit, a.name))) AS units
  FROM emotion_action_units AS l
  LEFT JOIN action_units AS a ON l.action_unit = a.action_unit
  GROUP BY emotion_id
)
SELECT i.*,
       CASE WHEN i.label_id IS NOT NULL
            THEN coalesce(transform(u.units, x -> x.action_unit), array()) END AS action_units,
       CASE WHEN i.label_id IS NOT NULL
            THEN coalesce(transform(u.units, x -> x.name), array()) END AS action_unit_names
FROM all_images AS i
LEFT JOIN emotion_units AS u ON i.label_id = u.emotion_id
