-- Rejected inputs by source and reason.
SELECT source, reason, count(*) AS files, min(detail) AS example
FROM quarantine
GROUP BY source, reason
ORDER BY source, files DESC
