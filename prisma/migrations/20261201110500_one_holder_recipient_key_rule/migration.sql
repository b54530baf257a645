-- Which key of a lease holder may receive a credential's material: the
-- holder's newest live encryption key among the credential's recipients.
-- CreateLease asks whether there is one, RedeemLease which one; both ask
-- here, so the rule is written once. plpgsql, so its query is planned once
-- per session.
CREATE FUNCTION holder_recipient_key(holder_id text, recipient_kids text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (SELECT a.id FROM agent_key a
           WHERE a.principal_id = holder_id AND a.use = 'encryption' AND a.revoked_at IS NULL
             AND position(' ' || a.id || ' ' IN ' ' || recipient_kids || ' ') > 0
           ORDER BY a.created_at DESC LIMIT 1);
END
$$;

-- lease_take_uses as before, with the recipient rule from above.
CREATE OR REPLACE FUNCTION lease_take_uses(lease_ids text[], uses int[], at_time timestamptz)
RETURNS TABLE (lease_id text, sealed text, version int, kid text, before int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH wanted(id, n) AS (SELECT * FROM unnest(lease_ids, uses)),
  material AS (
    SELECT l.id, c.sealed, c.version, k.kid
      FROM lease l
      JOIN credential c ON c.id = l.credential_id
      CROSS JOIN LATERAL (SELECT holder_recipient_key(l.holder_id, c.recipient_kids) AS kid) k
     WHERE l.id IN (SELECT w.id FROM wanted w) AND k.kid IS NOT NULL),
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
