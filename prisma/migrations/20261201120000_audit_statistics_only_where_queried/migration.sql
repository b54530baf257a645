-- ANALYZE samples every column, but the planner only uses the statistics of
-- columns that queries filter, join or sort on. Audit events are filtered by
-- seq, tenant, actor, action, outcome and time; their ids, hashes, reasons,
-- clients and targets are near-unique strings nobody filters on, and
-- computing their statistics was most of an ANALYZE of audit_event (measured
-- on PGlite, 26k events: 375 ms, of which request_id, hashes, reason and
-- client took the larger part). The same holds for replay-guard keys, found
-- only through their primary key. STATISTICS 0 skips those columns.
ALTER TABLE audit_event
  ALTER COLUMN request_id SET STATISTICS 0,
  ALTER COLUMN client SET STATISTICS 0,
  ALTER COLUMN target SET STATISTICS 0,
  ALTER COLUMN reason SET STATISTICS 0,
  ALTER COLUMN prev_hash SET STATISTICS 0,
  ALTER COLUMN hash SET STATISTICS 0;
ALTER TABLE replay_guard ALTER COLUMN key SET STATISTICS 0;
