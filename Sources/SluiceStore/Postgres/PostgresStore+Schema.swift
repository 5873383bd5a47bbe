import PostgresNIO

extension PostgresStore {
    /// The schema, one migration per change (its statements in order); a migration is never edited once released.
    /// The tables are SQLite's (Store+Schema.swift) as of its `v5-strategy-deletions`, in PostgreSQL's types, plus the
    /// counter row that numbers the event log. Text keys use the "C" collation: SQLite's byte order, so listings sort
    /// the same on both and the rollout id range below is a range of the primary key.
    static let migrations: [(id: String, statements: [String])] = [
        (
            "v1",
            [
                """
                CREATE TABLE strategy_revisions (
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    revision INTEGER NOT NULL,
                    content TEXT NOT NULL,
                    source TEXT,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (namespace, name, revision)
                )
                """,
                """
                CREATE TABLE strategy_deletions (
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    revision INTEGER NOT NULL,
                    deleted_at BIGINT NOT NULL,
                    PRIMARY KEY (namespace, name, revision)
                )
                """,
                """
                CREATE TABLE rollouts (
                    id TEXT COLLATE "C" PRIMARY KEY,
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    phase TEXT NOT NULL,
                    active BOOLEAN NOT NULL,
                    generation BIGINT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    observed_at BIGINT,
                    content TEXT NOT NULL
                )
                """,
                "CREATE INDEX rollouts_by_creation ON rollouts (created_at, id)",
                "CREATE INDEX rollouts_by_strategy ON rollouts (namespace, name, created_at, id)",
                "CREATE INDEX rollouts_by_phase ON rollouts (phase, created_at, id)",
                "CREATE UNIQUE INDEX rollouts_one_active ON rollouts (namespace, name) WHERE active",
                // The last `seq` handed out. Appending takes this row's lock until commit, so appends commit one at a
                // time in `seq` order (docs/ha.md "How seq stays gap-free").
                """
                CREATE TABLE event_seq (
                    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                    last BIGINT NOT NULL
                )
                """,
                "INSERT INTO event_seq (one, last) VALUES (TRUE, 0)",
                """
                CREATE TABLE events (
                    seq BIGINT PRIMARY KEY,
                    time BIGINT NOT NULL,
                    rollout TEXT COLLATE "C" NOT NULL,
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    type TEXT NOT NULL,
                    content TEXT NOT NULL
                )
                """,
                "CREATE INDEX events_by_rollout ON events (rollout, seq)",
                "CREATE INDEX events_by_strategy ON events (namespace, name, seq)",
                """
                CREATE FUNCTION sluice_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    RAISE EXCEPTION 'the event log is append-only' USING ERRCODE = 'integrity_constraint_violation';
                END
                $$
                """,
                """
                CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
                    FOR EACH ROW EXECUTE FUNCTION sluice_events_append_only()
                """,
                """
                CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
                    FOR EACH STATEMENT EXECUTE FUNCTION sluice_events_append_only()
                """,
                """
                CREATE TABLE samples (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    rollout TEXT COLLATE "C" NOT NULL,
                    check_name TEXT NOT NULL,
                    time BIGINT NOT NULL,
                    content TEXT NOT NULL
                )
                """,
                "CREATE INDEX samples_by_check ON samples (rollout, check_name, id)",
                """
                CREATE TABLE effects (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    rollout TEXT COLLATE "C" NOT NULL,
                    status TEXT NOT NULL,
                    content TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    settled_at BIGINT,
                    message TEXT
                )
                """,
                "CREATE INDEX effects_by_rollout ON effects (rollout, status, id)",
                """
                CREATE TABLE pool_roles (
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    content TEXT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (namespace, name)
                )
                """,
                """
                CREATE TABLE delivery_cursors (
                    sink TEXT PRIMARY KEY,
                    seq BIGINT NOT NULL
                )
                """,
            ]
        ),
        (
            // Leases (docs/ha.md "Leases and fencing"): one row per shard, created here, and a heartbeat per replica.
            // A rollout's shard is computed from its strategy key (`Shards.of`), so no rollout row changes.
            "v2-shard-leases",
            [
                """
                CREATE TABLE shard_leases (
                    shard INTEGER PRIMARY KEY,
                    holder TEXT,
                    epoch BIGINT NOT NULL,
                    expires_at TIMESTAMPTZ
                )
                """,
                "INSERT INTO shard_leases (shard, epoch) SELECT shard, 0 FROM generate_series(0, 63) AS shard",
                """
                CREATE TABLE replicas (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    expires_at TIMESTAMPTZ NOT NULL
                )
                """,
            ]
        ),
        (
            // Dashboard sessions in the store, so that every replica knows them (Store+Sessions.swift).
            "v3-sessions",
            [
                """
                CREATE TABLE sessions (
                    digest TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    token_digest TEXT,
                    csrf TEXT NOT NULL,
                    expires_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
            ]
        ),
        (
            // Commands sent to a replica that does not drive the rollout, for the one that does (docs/ha.md).
            "v4-commands",
            [
                """
                CREATE TABLE commands (
                    id BIGSERIAL PRIMARY KEY,
                    shard INTEGER NOT NULL,
                    namespace TEXT COLLATE "C" NOT NULL,
                    name TEXT COLLATE "C" NOT NULL,
                    request TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'refused', 'cancelled')),
                    outcome TEXT,
                    queued_at BIGINT NOT NULL,
                    finished_at BIGINT,
                    finished_by TEXT
                )
                """,
                "CREATE INDEX commands_pending ON commands (shard, id) WHERE status = 'pending'",
            ]
        ),
    ]

    /// The advisory lock key migrations hold (any constant no other code uses): replicas that start together
    /// migrate one after the other, and the later ones find nothing left to do.
    static let migrationLock: Int64 = 0x736C_7569_6365_0001

    /// Applies every migration not yet applied, in one transaction.
    func migrate() async throws {
        try await write("migrate the store's schema") { connection in
            try await connection.run("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                logger: logger)
            let applied = Set(
                try await connection.rows("SELECT id FROM schema_migrations", logger: logger).map {
                    try $0.get("id", String.self)
                })
            for migration in Self.migrations where !applied.contains(migration.id) {
                for statement in migration.statements {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.run(
                    """
                    INSERT INTO schema_migrations (id, applied_at)
                    VALUES (\(migration.id), (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT)
                    """, logger: logger)
            }
        }
    }
}
