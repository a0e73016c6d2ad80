-- The database that holds every femo table and view. Idempotent.
CREATE DATABASE IF NOT EXISTS IDENTIFIER(:database)
COMMENT 'femo: facial emotion recognition tables (images, faces, training sets, predictions)'
