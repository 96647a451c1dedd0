-- audit_events.seq became an identity column in 0001; it starts at 1, so on a database that already
-- holds events it must continue after the newest one (a gateway would otherwise fail its first insert).
SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), COALESCE((SELECT max(seq) FROM audit_events), 0) + 1, false);
