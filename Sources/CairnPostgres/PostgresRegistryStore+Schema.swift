/// The cluster store's schema: its migrations, applied in order by `migrate` (PostgresRegistryStore.swift).
extension PostgresRegistryStore {
    /// Schema migrations, applied in order, each in its own transaction under an advisory lock (two nodes starting
    /// at once do not collide); `cairn_schema` records which have run.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE cairn_clock (id INT PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL, revision BIGINT NOT NULL)",
            "INSERT INTO cairn_clock (id, epoch, revision) VALUES (1, gen_random_uuid()::text, 0)",
            "CREATE TABLE cairn_change_log (seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, entry BYTEA NOT NULL)",
            "CREATE TABLE cairn_checkpoint (id INT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, state BYTEA NOT NULL)",
            """
            CREATE TABLE cairn_audit_log (seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, event_name TEXT NOT NULL,
                principals TEXT NOT NULL, resources TEXT NOT NULL, record BYTEA NOT NULL, hash TEXT NOT NULL)
            """,
            "CREATE INDEX cairn_audit_log_time ON cairn_audit_log (time)",
            "CREATE TABLE cairn_audit_anchor (id INT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)",
            """
            CREATE TABLE cairn_nodes (id TEXT PRIMARY KEY, started TIMESTAMPTZ NOT NULL DEFAULT now(),
                seen TIMESTAMPTZ NOT NULL DEFAULT now(), revision BIGINT NOT NULL DEFAULT 0)
            """,
        ],
        [
            // A node's membership term: bumped when it renews a row that had expired (it was paused or cut off
            // past the heartbeat timeout); work started in an older term is fenced off.
            "ALTER TABLE cairn_nodes ADD COLUMN term BIGINT NOT NULL DEFAULT 1",
            // A node's applied revision is unknown (NULL) until its first heartbeat after loading.
            "ALTER TABLE cairn_nodes ALTER COLUMN revision DROP NOT NULL, ALTER COLUMN revision DROP DEFAULT",
            // Singleton jobs (checkpoints and log pruning, audit retention) run on the node holding their lease.
            "CREATE TABLE cairn_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL)",
        ],
        [
            // A write's first statement: takes the clock's lock and, after it (a VOLATILE function's statements each
            // take a new snapshot, so they see what the previous holder committed), reads what the writer needs to
            // decide its batch: this node's live term, the entries after its cursor, the audit chain's head. One
            // round trip instead of four while the lock is held.
            """
            CREATE FUNCTION cairn_lock(after_seq BIGINT, node TEXT, timeout_secs DOUBLE PRECISION,
                OUT revision BIGINT, OUT epoch TEXT, OUT term BIGINT, OUT entries BYTEA[], OUT audit_seq BIGINT, OUT audit_hash TEXT)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                SELECT c.revision, c.epoch INTO revision, epoch FROM cairn_clock c WHERE c.id = 1 FOR UPDATE;
                SELECT n.term INTO term FROM cairn_nodes n WHERE n.id = node AND n.seen > now() - make_interval(secs => timeout_secs);
                IF revision > after_seq THEN
                    entries := ARRAY(SELECT l.entry FROM cairn_change_log l WHERE l.seq > after_seq ORDER BY l.seq);
                ELSE
                    entries := '{}';
                END IF;
                SELECT a.seq, a.hash INTO audit_seq, audit_hash FROM cairn_audit_log a ORDER BY a.seq DESC LIMIT 1;
                IF NOT FOUND THEN
                    SELECT a.seq, a.hash INTO audit_seq, audit_hash FROM cairn_audit_anchor a WHERE a.id = 1;
                END IF;
            END $$
            """
        ],
        [
            // The keys each entry writes (RegistryState.speculativeWrites; NULL: any), so a batch decided without the
            // lock can be checked against the entries appended meanwhile by the database itself (`cairn_propose`).
            "ALTER TABLE cairn_change_log ADD COLUMN writes TEXT[]",
            // Entries are now stored without their position (`CA 02`: the sequence is the row's), so the lock's
            // read returns the sequences with them.
            "DROP FUNCTION cairn_lock(BIGINT, TEXT, DOUBLE PRECISION)",
            """
            CREATE FUNCTION cairn_lock(after_seq BIGINT, node TEXT, timeout_secs DOUBLE PRECISION,
                OUT revision BIGINT, OUT epoch TEXT, OUT term BIGINT, OUT seqs BIGINT[], OUT entries BYTEA[], OUT audit_seq BIGINT,
                OUT audit_hash TEXT)
            LANGUAGE plpgsql VOLATILE AS $$
            BEGIN
                SELECT c.revision, c.epoch INTO revision, epoch FROM cairn_clock c WHERE c.id = 1 FOR UPDATE;
                SELECT n.term INTO term FROM cairn_nodes n WHERE n.id = node AND n.seen > now() - make_interval(secs => timeout_secs);
                seqs := '{}';
                entries := '{}';
                IF revision > after_seq THEN
                    SELECT coalesce(array_agg(l.seq ORDER BY l.seq), '{}'), coalesce(array_agg(l.entry ORDER BY l.seq), '{}')
                        INTO seqs, entries FROM cairn_change_log l WHERE l.seq > after_seq;
                END IF;
                SELECT a.seq, a.hash INTO audit_seq, audit_hash FROM cairn_audit_log a ORDER BY a.seq DESC LIMIT 1;
                IF NOT FOUND THEN
                    SELECT a.seq, a.hash INTO audit_seq, audit_hash FROM cairn_audit_anchor a WHERE a.id = 1;
                END IF;
            END $$
            """,
            // A batch decided without the lock, stored in one round trip: CALLed outside a transaction block, it takes
            // the clock's lock, checks the entries appended after the batch's cursor against the keys the batch read
            // (and this node's membership term against what the batch assumed), and either writes nothing
            // ('conflict', 'behind') or numbers the entries after the newer ones, chains the audit records to the
            // trail's head (the record's bytes and SHA-256 exactly as AuditEntry.record and the SQLite store make
            // them), advances the clock, notifies, and COMMITs inside the procedure, so the answer arrives only once
            // the commit is durable and the lock is held for no round trip of the client's.
            """
            CREATE PROCEDURE cairn_propose(after_seq BIGINT, node TEXT, timeout_secs DOUBLE PRECISION, expected_epoch TEXT,
                reads TEXT[], read_all BOOLEAN, terms BIGINT[], admitted BOOLEAN[],
                times BIGINT[], blobs BYTEA[], write_keys TEXT[], write_starts INT[], write_counts INT[],
                audit_times BIGINT[], audit_names TEXT[], audit_principals TEXT[], audit_resources TEXT[], audit_members BYTEA[],
                INOUT outcome TEXT, INOUT revision BIGINT, INOUT epoch TEXT, INOUT term BIGINT, INOUT newer_seqs BIGINT[],
                INOUT newer BYTEA[])
            LANGUAGE plpgsql AS $$
            DECLARE
                clash BOOLEAN;
                head_seq BIGINT;
                head_hash TEXT;
                line BYTEA;
                line_seqs BIGINT[] := '{}';
                lines BYTEA[] := '{}';
                hashes TEXT[] := '{}';
                found_at BIGINT;
                added INT := coalesce(array_length(blobs, 1), 0);
            BEGIN
                SELECT c.revision, c.epoch INTO revision, epoch FROM cairn_clock c WHERE c.id = 1 FOR UPDATE;
                SELECT n.term INTO term FROM cairn_nodes n WHERE n.id = node AND n.seen > now() - make_interval(secs => timeout_secs);
                newer_seqs := '{}';
                newer := '{}';
                IF (expected_epoch IS NOT NULL AND expected_epoch <> epoch) OR revision < after_seq THEN
                    outcome := 'behind';
                    RETURN;
                END IF;
                IF revision > after_seq THEN
                    SELECT coalesce(array_agg(l.seq ORDER BY l.seq), '{}'), coalesce(array_agg(l.entry ORDER BY l.seq), '{}'),
                        coalesce(bool_or(l.writes IS NULL OR l.writes && reads), false)
                        INTO newer_seqs, newer, clash FROM cairn_change_log l WHERE l.seq > after_seq;
                    IF coalesce(array_length(newer_seqs, 1), 0) <> revision - after_seq OR newer_seqs[1] <> after_seq + 1 THEN
                        outcome := 'behind';
                        RETURN;
                    END IF;
                    IF read_all OR clash THEN
                        outcome := 'conflict';
                        RETURN;
                    END IF;
                END IF;
                IF EXISTS (SELECT 1 FROM unnest(terms, admitted) AS t(tm, ok) WHERE (term IS NOT DISTINCT FROM tm) <> ok) THEN
                    outcome := 'conflict';
                    RETURN;
                END IF;
                INSERT INTO cairn_change_log (seq, time, entry, writes)
                    SELECT revision + i, times[i], blobs[i],
                        CASE WHEN write_counts[i] < 0 THEN NULL ELSE coalesce(write_keys[write_starts[i]:write_starts[i] + write_counts[i] - 1], '{}') END
                    FROM generate_subscripts(blobs, 1) AS i;
                IF coalesce(array_length(audit_members, 1), 0) > 0 THEN
                    SELECT a.seq, a.hash INTO head_seq, head_hash FROM cairn_audit_log a ORDER BY a.seq DESC LIMIT 1;
                    IF NOT FOUND THEN
                        SELECT a.seq, a.hash INTO head_seq, head_hash FROM cairn_audit_anchor a WHERE a.id = 1;
                    END IF;
                    head_seq := coalesce(head_seq, 0);
                    head_hash := coalesce(head_hash, repeat('0', 64));
                    FOR i IN 1 .. array_length(audit_members, 1) LOOP
                        head_seq := head_seq + 1;
                        line := '\\x7b'::bytea || audit_members[i]
                            || convert_to(',"cairnSequence":' || head_seq || ',"cairnPreviousHash":"'
                                || translate(head_hash, '"\\', '') || '"}', 'UTF8');
                        head_hash := encode(sha256(line), 'hex');
                        line_seqs := line_seqs || head_seq;
                        lines := lines || line;
                        hashes := hashes || head_hash;
                    END LOOP;
                    INSERT INTO cairn_audit_log (seq, time, event_name, principals, resources, record, hash)
                        SELECT * FROM unnest(line_seqs, audit_times, audit_names, audit_principals, audit_resources, lines, hashes);
                END IF;
                IF added > 0 THEN
                    found_at := revision;
                    UPDATE cairn_clock SET revision = found_at + added WHERE id = 1;
                    PERFORM pg_notify('cairn_changes', epoch || ':' || (found_at + added));
                END IF;
                COMMIT;
                outcome := 'committed';
            END $$
            """,
        ],
    ]
}
