-- Training sets, newest first: rows per split, what was left out and why, the Delta versions read.
SELECT set_id, created_at, split_counts['train'] AS train, split_counts['val'] AS val,
       split_counts['test'] AS test, size(classes) AS emotions, excluded, table_versions, params
FROM training_sets
ORDER BY created_at DESC
