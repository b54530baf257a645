-- DropTable
DROP TABLE "issued_token";

-- The two statements on the broker's hottest write paths, as functions: a
-- function's statements are planned once per database session, where the
-- same statements sent as text are planned on every call. On the embedded
-- database planning cost more than the work itself (16 audit events: 1.66 ms
-- as a statement, 1.09 ms as a function; a redeem batch of 8 leases: 2.7 ms
-- and 1.3 ms).

-- Appends events to the audit hash chain: moves the chain head from
-- (from_seq, from_hash) to the last of the events and inserts them, or, when
-- another writer moved the head first, changes nothing and returns false.
CREATE FUNCTION audit_append(
  from_seq bigint, from_hash text, event_time timestamptz,
  seqs bigint[], request_ids text[], tenant_ids text[], actor_ids text[], clients text[],
  actions text[], targets text[], outcomes text[], reasons text[], prev_hashes text[], hashes text[])
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  UPDATE audit_chain_head
     SET seq = seqs[cardinality(seqs)], hash = hashes[cardinality(hashes)]
   WHERE id = 1 AND seq = from_seq AND hash = from_hash;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO audit_event (seq, time, request_id, tenant_id, actor_id, client, action, target, outcome, reason, prev_hash, hash)
  SELECT e.seq, event_time, e.request_id, e.tenant_id, e.actor_id, e.client, e.action, e.target,
         e.outcome::audit_outcome, e.reason, e.prev_hash, e.hash
    FROM unnest(seqs, request_ids, tenant_ids, actor_ids, clients, actions, targets, outcomes, reasons,
                prev_hashes, hashes)
      AS e(seq, request_id, tenant_id, actor_id, client, action, target, outcome, reason, prev_hash, hash);
  RETURN true;
END
$$;

-- Takes uses from leases for a batch of redeems: for each lease id, as many
-- uses as asked for (uses[i] for lease_ids[i]) and as remain, from leases
-- that are active, unexpired at `at_time`, and whose credential is still sealed
-- for one of the holder's live encryption keys. Row locks are taken in id
-- order, so concurrent batches (of any instance) cannot deadlock. Returns a
-- row per lease with such material: the material, the key it is sealed for,
-- and the uses it had before (null when none could be taken).
CREATE FUNCTION lease_take_uses(lease_ids text[], uses int[], at_time timestamptz)
RETURNS TABLE (lease_id text, sealed text, version int, kid text, before int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH wanted(id, n) AS (SELECT * FROM unnest(lease_ids, uses)),
  material AS (
    SELECT l.id, c.sealed, c.version, k.id AS kid
      FROM lease l
      JOIN credential c ON c.id = l.credential_id
      JOIN LATERAL (
             SELECT a.id FROM agent_key a
              WHERE a.principal_id = l.holder_id AND a.use = 'encryption' AND a.revoked_at IS NULL
                AND position(' ' || a.id || ' ' IN ' ' || c.recipient_kids || ' ') > 0
              ORDER BY a.created_at DESC LIMIT 1) k ON true
     WHERE l.id IN (SELECT w.id FROM wanted w)),
  taken AS (
    UPDATE lease l
       SET remaining_uses = b.before - LEAST(w.n, b.before),
           state = CASE WHEN b.before <= w.n THEN 'exhausted'::lease_state ELSE l.state END,
           ended_at = CASE WHEN b.before <= w.n THEN at_time ELSE l.ended_at END
      FROM (SELECT x.id, x.remaining_uses AS before FROM lease x
             WHERE x.id IN (SELECT m.id FROM material m)
               AND x.state = 'active' AND x.remaining_uses > 0 AND x.expires_at > at_time
             ORDER BY x.id
             FOR UPDATE) b,
           wanted w
     WHERE l.id = b.id AND w.id = b.id
 RETURNING l.id, b.before)
  SELECT m.id, m.sealed, m.version, m.kid, t.before
    FROM material m LEFT JOIN taken t ON t.id = m.id;
END
$$;
