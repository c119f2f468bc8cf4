// Claim the database for a dataset (before the first write of an ingest), or mark it complete.
MERGE (d:Dataset {key: 'spillover'})
SET d = $props
