// The write-back's results as stored (spillover.neo4j.writeback.stored_results): every
// entry's properties but the run's own audited_at, audit_run and traces_digest (a digest
// bound to the run), and its TRACED_TO as
// [loan id, properties] in rank order ([null, null] when it has none), in entry id order.
// Two runs that stored the same results read the same.
MATCH (e:Entry)
OPTIONAL MATCH (e)-[t:TRACED_TO]->(l:Loan)
WITH e, t, l ORDER BY e.id, t.rank
RETURN e.id AS id, e {.*, audited_at: null, audit_run: null, traces_digest: null} AS props,
       collect([l.id, t {.*}]) AS traces
ORDER BY id
