// audit --write-back: in each write transaction of run $run, lock the dataset marker and
// check that the run still owns it (a write-back started later takes it over: this one
// then stops writing). The lock is taken first (a property set and removed: no change),
// and the owner read after it: read before, a takeover committed while this transaction
// waited for the lock would go unseen. Records how many entries are written ($written,
// an absolute count: a retried transaction sets the same value). No row (and nothing
// set) when another run owns the marker. writeback_commit changes in every transaction
// that claims the marker, so that each commits a transaction number of its own (one that
// changed nothing would commit none, and its bookmark would be another's: the run
// counts its commits, spillover.neo4j.commits).
MATCH (d:Dataset {key: 'spillover'})
SET d.writeback_lock = true
REMOVE d.writeback_lock
WITH d
WHERE d.writeback_run = $run
SET d.writeback_written = $written,
    d.writeback_total = $total,
    d.writeback_commit = randomUUID()
RETURN d.writeback_run AS run
