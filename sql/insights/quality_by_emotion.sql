-- Image quality per source and emotion: mean and median brightness, contrast and sharpness.
SELECT source, label_id, emotion, count(*) AS images,
       round(avg(brightness), 1) AS brightness_mean,
       round(percentile(brightness, 0.5), 1) AS brightness_median,
       round(avg(contrast), 1) AS contrast_mean,
       round(percentile(contrast, 0.5), 1) AS contrast_median,
       round(avg(sharpness), 1) AS sharpness_mean,
       round(percentile(sharpness, 0.5), 1) AS sharpness_median
FROM all_images
GROUP BY source, label_id, emotion
ORDER BY source, label_id
