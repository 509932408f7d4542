-- The city's intake of county batches and the decisions feed back to the
-- counties. Every county-owned table leads its key with the county code, so
-- that the tables distribute by county (Citus) without a schema change; the
-- one exception is conflict, which is about one enterprise in several
-- counties. Money is bigint fen.

-- received_batch is a batch as first pushed: stored exactly once per
-- (county, id); the content hash and the first answer (received_at and the
-- tallies) are kept so that a replay gets the same answer.
CREATE TABLE received_batch (
    county          text        NOT NULL CHECK (county <> ''),
    id              text        NOT NULL CHECK (id <> ''),
    content_hash    text        NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    content         bytea       NOT NULL, -- the deterministic encoding of wengang.v1.BatchContent whose SHA-256 is content_hash
    screening_id    text        NOT NULL,
    dataset_hash    text        NOT NULL,
    as_of           date        NOT NULL,
    policy_id       text        NOT NULL,
    policy_year     int         NOT NULL,
    item_count      bigint      NOT NULL CHECK (item_count > 0),
    total_fen       bigint      NOT NULL CHECK (total_fen >= 0),
    sealed_at       timestamptz,
    sealed_by       text        NOT NULL,
    pushed_by       text        NOT NULL, -- the subject of the node's certificate
    received_at     timestamptz NOT NULL,
    -- the first answer
    received_count  bigint      NOT NULL,
    received_fen    bigint      NOT NULL,
    rejected_count  bigint      NOT NULL,
    rejected_fen    bigint      NOT NULL,
    conflict_count  bigint      NOT NULL,
    conflict_fen    bigint      NOT NULL,
    PRIMARY KEY (county, id)
);
CREATE INDEX received_batch_received ON received_batch (county, received_at DESC);

-- received_item is one enterprise of a received batch with its state on the
-- city (wengang.v1.ItemState, lower case). 'pending' exists only inside the
-- intake transaction, before the item's first decision.
CREATE TABLE received_item (
    county                text        NOT NULL,
    batch_id              text        NOT NULL,
    uscc                  text        NOT NULL,
    policy_year           int         NOT NULL,
    name                  text        NOT NULL,
    size                  text        NOT NULL, -- '' unknown, else large/medium/small/micro
    months_paid           int         NOT NULL,
    base_fen              bigint      NOT NULL, -- as claimed
    refund_fen            bigint      NOT NULL, -- as claimed: what is to be paid
    recomputed_base_fen   bigint      NOT NULL, -- from the evidence
    recomputed_refund_fen bigint      NOT NULL, -- from the evidence under the policy (0 when it cannot be computed)
    payee_kind            text        NOT NULL, -- '' none, else corporate/social_insurance
    payee_bank            text        NOT NULL,
    payee_bank_code       text        NOT NULL,
    payee_account_no      text        NOT NULL,
    payee_account_name    text        NOT NULL,
    uscc_verified         boolean     NOT NULL,
    item                  bytea       NOT NULL, -- the deterministic encoding of wengang.v1.BatchItem, with its evidence
    state                 text        NOT NULL CHECK (state IN ('pending', 'received', 'rejected', 'conflict', 'in_round',
                                          'in_publicity', 'objected', 'removed', 'released', 'paid', 'returned')),
    rejections            jsonb       NOT NULL DEFAULT '[]',
    conflict_id           text        NOT NULL DEFAULT '',
    round_id              text        NOT NULL DEFAULT '',
    instruction_id        text        NOT NULL DEFAULT '',
    last_sequence         bigint      NOT NULL DEFAULT 0, -- of the latest decision about it in its county's feed
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (county, batch_id, uscc),
    FOREIGN KEY (county, batch_id) REFERENCES received_batch (county, id)
);
-- One enterprise, one refund: the live items of an enterprise in a policy
-- year, across counties (intake looks here for duplicates and conflicts).
CREATE INDEX received_item_enterprise ON received_item (policy_year, uscc) WHERE state NOT IN ('rejected', 'removed');
CREATE INDEX received_item_state ON received_item (county, state);

-- decision_counter holds each county's last decision sequence. Appending
-- decisions updates the county's row, whose lock is held until commit: the
-- sequence is gapless, and a decision is visible only once every lower one of
-- its county is.
CREATE TABLE decision_counter (
    county   text   PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

-- decision is the decisions feed (市级反馈): what the city decided about one
-- item, per county in sequence order. Append-only.
CREATE TABLE decision (
    county          text        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    id              bigint      GENERATED ALWAYS AS IDENTITY UNIQUE, -- global order of appends
    kind            text        NOT NULL CHECK (kind IN ('received', 'rejected', 'conflict', 'in_publicity', 'objected',
                                    'objection_dismissed', 'removed', 'released', 'paid', 'returned', 'reissued')),
    batch_id        text        NOT NULL,
    uscc            text        NOT NULL,
    reason          text        NOT NULL,
    rejections      jsonb       NOT NULL DEFAULT '[]',
    conflict_id     text        NOT NULL DEFAULT '',
    round_id        text        NOT NULL DEFAULT '',
    publicity_start date,
    publicity_end   date,
    amount_fen      bigint      NOT NULL DEFAULT 0,
    instruction_id  text        NOT NULL DEFAULT '',
    bank_reference  text        NOT NULL DEFAULT '',
    settled_on      date,
    occurred_at     timestamptz NOT NULL,
    PRIMARY KEY (county, seq),
    FOREIGN KEY (county, batch_id, uscc) REFERENCES received_item (county, batch_id, uscc)
);
CREATE FUNCTION decision_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'decision is append-only';
END $$;
CREATE TRIGGER decision_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON decision
	FOR EACH STATEMENT EXECUTE FUNCTION decision_append_only();

-- conflict is one enterprise (USCC) in live items of two or more counties in
-- one policy year (跨县重复): its parties are frozen until a city
-- administrator keeps one. Cross-county by nature, so keyed by its own id.
CREATE TABLE conflict (
    id            text        PRIMARY KEY,
    policy_year   int         NOT NULL,
    uscc          text        NOT NULL,
    state         text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    kept_county   text        NOT NULL DEFAULT '',
    kept_batch_id text        NOT NULL DEFAULT '',
    reason        text        NOT NULL DEFAULT '',
    resolved_by   text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    resolved_at   timestamptz
);
-- At most one open conflict per enterprise and policy year.
CREATE UNIQUE INDEX conflict_open ON conflict (policy_year, uscc) WHERE state = 'open';
CREATE SEQUENCE conflict_number;

-- conflict_party is one county's item in a conflict.
CREATE TABLE conflict_party (
    county      text        NOT NULL,
    conflict_id text        NOT NULL REFERENCES conflict (id),
    batch_id    text        NOT NULL,
    uscc        text        NOT NULL,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (county, conflict_id, batch_id),
    FOREIGN KEY (county, batch_id, uscc) REFERENCES received_item (county, batch_id, uscc)
);
CREATE INDEX conflict_party_conflict ON conflict_party (conflict_id);

-- account_correction is a corrected account a county pushed for an item
-- whose payment was returned, stored once per (county, id). The payment
-- instruction that re-issues it is made by the city's release code, which
-- sets instruction_id and state 'reissued'.
CREATE TABLE account_correction (
    county         text        NOT NULL,
    id             text        NOT NULL CHECK (id <> ''),
    batch_id       text        NOT NULL,
    uscc           text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('corporate', 'social_insurance')),
    bank           text        NOT NULL,
    bank_code      text        NOT NULL,
    account_no     text        NOT NULL,
    account_name   text        NOT NULL,
    reason         text        NOT NULL,
    corrected_by   text        NOT NULL,
    pushed_by      text        NOT NULL,
    state          text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'reissued')),
    instruction_id text        NOT NULL DEFAULT '',
    accepted_at    timestamptz NOT NULL,
    PRIMARY KEY (county, id),
    FOREIGN KEY (county, batch_id, uscc) REFERENCES received_item (county, batch_id, uscc)
);
-- At most one correction waiting for its re-issue per item.
CREATE UNIQUE INDEX account_correction_pending ON account_correction (county, batch_id, uscc) WHERE state = 'pending';

-- screening_report is the latest report of each county screening, for the
-- progress dashboard: the highest revision wins.
CREATE TABLE screening_report (
    county                    text        NOT NULL,
    screening_id              text        NOT NULL,
    revision                  bigint      NOT NULL CHECK (revision > 0),
    dataset_hash              text        NOT NULL,
    as_of                     date,
    policy_id                 text        NOT NULL,
    screened_units            bigint      NOT NULL,
    screened_eligible_count   bigint      NOT NULL,
    screened_eligible_fen     bigint      NOT NULL,
    screened_hold_count       bigint      NOT NULL,
    screened_hold_fen         bigint      NOT NULL,
    screened_ineligible_count bigint      NOT NULL,
    reviewed_units            bigint      NOT NULL,
    reviewed_eligible_count   bigint      NOT NULL,
    reviewed_eligible_fen     bigint      NOT NULL,
    reviewed_hold_count       bigint      NOT NULL,
    reviewed_hold_fen         bigint      NOT NULL,
    reviewed_ineligible_count bigint      NOT NULL,
    run_at                    timestamptz,
    reported_by               text        NOT NULL,
    reported_at               timestamptz NOT NULL,
    PRIMARY KEY (county, screening_id)
);

-- The audit log: the same table as in the node's database (internal/audit.DDL).
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
