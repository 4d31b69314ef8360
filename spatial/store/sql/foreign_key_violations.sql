-- Every foreign key of the given tables, to be checked set-based after a bulk load that ran with
-- session_replication_role = replica (which skips the per-row FK triggers).
SELECT con.conrelid::regclass::text AS child, con.confrelid::regclass::text AS parent,
       array_agg(a.attname ORDER BY k.ord) AS child_columns, array_agg(af.attname ORDER BY k.ord) AS parent_columns
FROM pg_constraint con
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(child_col, parent_col, ord)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.child_col
JOIN pg_attribute af ON af.attrelid = con.confrelid AND af.attnum = k.parent_col
WHERE con.contype = 'f' AND con.conrelid = ANY(CAST(:tables AS regclass[]))
GROUP BY con.oid, con.conrelid, con.confrelid
