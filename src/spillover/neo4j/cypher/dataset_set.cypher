// Claim the database for a dataset (before the first write of an ingest), or mark it
// complete. Only the keys in $props change (a null value removes that property): the
// write-back's results_* and writeback_* properties stay as they are.
MERGE (d:Dataset {key: 'spillover'})
SET d += $props
