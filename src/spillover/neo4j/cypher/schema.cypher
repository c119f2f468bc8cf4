// Uniqueness constraints (each backed by a range index) on every node key, and
// indexes the explanation queries filter on. Idempotent: IF NOT EXISTS.
CREATE CONSTRAINT person_id IF NOT EXISTS FOR (n:Person) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT phone_number IF NOT EXISTS FOR (n:Phone) REQUIRE n.number IS UNIQUE;
CREATE CONSTRAINT loan_id IF NOT EXISTS FOR (n:Loan) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT platform_id IF NOT EXISTS FOR (n:Platform) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT entry_id IF NOT EXISTS FOR (n:Entry) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT record_id IF NOT EXISTS FOR (n:Record) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT dataset_key IF NOT EXISTS FOR (n:Dataset) REQUIRE n.key IS UNIQUE;
CREATE INDEX loan_applied_at IF NOT EXISTS FOR (n:Loan) ON (n.applied_at);
CREATE INDEX entry_subject IF NOT EXISTS FOR (n:Entry) ON (n.subject_kind, n.subject);
CREATE INDEX record_phone IF NOT EXISTS FOR (n:Record) ON (n.phone);
CREATE INDEX matched_by IF NOT EXISTS FOR ()-[m:MATCHED_TO]-() ON (m.matched_by)
