-- Screenings, their results, batches and the audit log.
--
-- A screening is a run of the refund rules over one sealed dataset at one
-- as-of date under recorded policy parameters. Its results keep two faces:
-- the screened_* columns as the rules decided (never updated, so that the
-- screening's results.csv can be exported again byte for byte), and the
-- current columns, which reviews and resolved holds change.
--
-- A batch is an immutable set of reviewed units to be paid, pushed to the
-- city. The batch row is its own outbox: the sync worker pushes every batch
-- in state 'sealed' whose next_push_at has come, until the city answers.

CREATE TABLE screening (
    county          text        NOT NULL,
    id              bigint      GENERATED ALWAYS AS IDENTITY,
    dataset_id      bigint      NOT NULL,
    as_of           date        NOT NULL,
    policy_id       text        NOT NULL,
    policy          jsonb       NOT NULL, -- the refund.Params used, as their JSON file writes them
    results_sha256  bytea       NOT NULL CHECK (octet_length(results_sha256) = 32), -- of results.csv as screened
    run_by          text        NOT NULL,
    run_at          timestamptz NOT NULL,
    idempotency_key text        CHECK (idempotency_key <> ''),
    PRIMARY KEY (county, id),
    UNIQUE (county, idempotency_key),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);

CREATE TABLE screening_result (
    county              text    NOT NULL,
    screening_id        bigint  NOT NULL,
    uscc                text    NOT NULL, -- as the units file has it (the key)
    name                text    NOT NULL,
    unit_county         text    NOT NULL,
    industry            text    NOT NULL,
    status              text    NOT NULL CHECK (status IN ('active', 'deregistered', 'revoked')),
    headcount_start     int     NOT NULL,
    headcount_end       int     NOT NULL,
    mobile              text    NOT NULL,
    months_paid         int     NOT NULL,
    base_fen            bigint  NOT NULL CHECK (base_fen >= 0),
    -- as screened; never updated
    screened_decision   text    NOT NULL CHECK (screened_decision IN ('eligible', 'hold', 'ineligible')),
    screened_reasons    text    NOT NULL, -- sorted codes joined by '|'
    screened_refund_fen bigint  NOT NULL CHECK (screened_refund_fen >= 0),
    screened_size       text    CHECK (screened_size IN ('large', 'medium', 'small', 'micro')),
    screened_payee_kind text    CHECK (screened_payee_kind IN ('corporate', 'social_insurance')),
    screened_payee_account_no text NOT NULL,
    -- current, after reviews and resolved holds
    decision            text    NOT NULL CHECK (decision IN ('eligible', 'hold', 'ineligible')),
    reasons             text    NOT NULL,
    refund_fen          bigint  NOT NULL CHECK (refund_fen >= 0),
    size                text    CHECK (size IN ('large', 'medium', 'small', 'micro')),
    payee_kind          text    CHECK (payee_kind IN ('corporate', 'social_insurance')),
    payee_bank          text    NOT NULL,
    payee_bank_code     text    NOT NULL,
    payee_account_no    text    NOT NULL,
    payee_account_name  text    NOT NULL,
    uscc_verified       boolean NOT NULL DEFAULT false, -- a person confirmed a code whose check character is wrong
    corrected_uscc      text    NOT NULL DEFAULT '',    -- the right code, when the file's was mistyped
    reviewed            boolean NOT NULL DEFAULT false, -- a reviewer excluded, reinstated or resolved it
    PRIMARY KEY (county, screening_id, uscc),
    FOREIGN KEY (county, screening_id) REFERENCES screening (county, id)
);
CREATE INDEX screening_result_decision ON screening_result (county, screening_id, decision);

CREATE TABLE batch (
    county          text        NOT NULL,
    id              text        NOT NULL, -- such as 371502-B000001; unique across the city because it leads with the county
    screening_id    bigint      NOT NULL,
    policy_year     int         NOT NULL,
    content         bytea       NOT NULL, -- deterministic protobuf encoding of wengang.v1.BatchContent, exactly what is pushed
    content_hash    text        NOT NULL, -- hex SHA-256 of content
    item_count      int         NOT NULL CHECK (item_count > 0),
    total_fen       bigint      NOT NULL CHECK (total_fen > 0),
    state           text        NOT NULL DEFAULT 'sealed' CHECK (state IN ('sealed', 'delivered', 'refused')),
    sealed_by       text        NOT NULL,
    sealed_at       timestamptz NOT NULL,
    idempotency_key text        CHECK (idempotency_key <> ''),
    -- the outbox
    push_attempts   int         NOT NULL DEFAULT 0,
    next_push_at    timestamptz NOT NULL DEFAULT now(),
    last_push_error text        NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    PRIMARY KEY (county, id),
    UNIQUE (county, idempotency_key),
    FOREIGN KEY (county, screening_id) REFERENCES screening (county, id)
);
CREATE INDEX batch_outbox ON batch (next_push_at) WHERE state = 'sealed';

CREATE TABLE batch_item (
    county       text    NOT NULL,
    batch_id     text    NOT NULL,
    uscc         text    NOT NULL,
    policy_year  int     NOT NULL,
    name         text    NOT NULL,
    refund_fen   bigint  NOT NULL CHECK (refund_fen > 0),
    live         boolean NOT NULL DEFAULT true, -- false once the city rejected or removed it: it may be batched again
    PRIMARY KEY (county, batch_id, uscc),
    FOREIGN KEY (county, batch_id) REFERENCES batch (county, id)
);
-- A unit is in at most one live batch per policy year.
CREATE UNIQUE INDEX batch_item_live ON batch_item (county, policy_year, uscc) WHERE live;

-- The audit log: the same table in the city's database (internal/audit.DDL).
CREATE TABLE audit_log (
	domain        text        NOT NULL,
	seq           bigint      NOT NULL CHECK (seq > 0),
	at            timestamptz NOT NULL,
	actor_kind    text        NOT NULL,
	actor_subject text        NOT NULL,
	actor_role    text        NOT NULL,
	action        text        NOT NULL,
	object_type   text        NOT NULL,
	object_id     text        NOT NULL,
	detail        text        NOT NULL,
	prev_hash     text        NOT NULL,
	hash          text        NOT NULL,
	PRIMARY KEY (domain, seq)
);
CREATE INDEX audit_log_object ON audit_log (domain, object_type, object_id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
