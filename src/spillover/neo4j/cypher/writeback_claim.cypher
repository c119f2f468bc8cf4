// audit --write-back: at the start of each write transaction of run $run, lock the
// dataset marker and check that the run still owns it (a write-back started later takes
// it over: this one then stops writing). Records how many entries are written ($written,
// an absolute count: a retried transaction sets the same value).
MATCH (d:Dataset {key: 'spillover'})
WHERE d.writeback_run = $run
SET d.writeback_written = $written,
    d.writeback_total = $total
RETURN d.writeback_run AS run
