-- Ingest runs by source: files finished, rows they gave to images and quarantine, and when.
SELECT source, run_id, layout, count(*) AS files, sum(images) AS images,
       sum(quarantined) AS quarantined, max(ingested_at) AS finished_at
FROM ingested_files
GROUP BY source, run_id, layout
ORDER BY finished_at DESC
