-- Publicity rounds (公示批次), objections (异议), payment instructions (支付指令)
-- and funding requests (资金拨付). County-owned tables lead their keys with the
-- county; a round spans counties, so round and its batch list are keyed by
-- the round id. Money is bigint fen; dates of business are civil dates.

-- round: built by a city administrator from received batches of one or more
-- counties and a start date; its end date follows the working-day calendar.
-- draft → approved (by an approver who is not the builder) → released (after
-- the end date). Whether it is in publicity or ended is a matter of the
-- business date against start_date/end_date, not a stored state.
CREATE TABLE publicity_round (
    id              text        PRIMARY KEY, -- such as R2022-0001
    title           text        NOT NULL CHECK (title <> ''),
    policy_year     int         NOT NULL,
    start_date      date        NOT NULL,
    end_date        date        NOT NULL CHECK (end_date >= start_date),
    workdays        int         NOT NULL CHECK (workdays > 0),
    state           text        NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'approved', 'released')),
    contact_office  text        NOT NULL,
    contact_phone   text        NOT NULL,
    contact_address text        NOT NULL DEFAULT '',
    contact_email   text        NOT NULL DEFAULT '',
    idempotency_key text        UNIQUE CHECK (idempotency_key <> ''),
    built_by        text        NOT NULL,
    built_at        timestamptz NOT NULL,
    approved_by     text        NOT NULL DEFAULT '',
    approved_at     timestamptz,
    released_by     text        NOT NULL DEFAULT '',
    released_at     timestamptz,
    CHECK (state = 'draft' OR approved_at IS NOT NULL),
    CHECK (state <> 'released' OR released_at IS NOT NULL)
);
CREATE SEQUENCE publicity_round_number;

-- round_batch: the received batches a round was built from.
CREATE TABLE round_batch (
    round_id text NOT NULL REFERENCES publicity_round (id),
    county   text NOT NULL,
    batch_id text NOT NULL,
    PRIMARY KEY (round_id, county, batch_id),
    UNIQUE (county, batch_id), -- a batch goes into one round
    FOREIGN KEY (county, batch_id) REFERENCES received_batch (county, id)
);

-- round_entry: one enterprise published in a round (what the portal lists:
-- name, USCC, county, amount; never an account). Its state follows the
-- item's (in_round, in_publicity, objected, removed, released, paid,
-- returned). An enterprise is in at most one live entry per policy year.
CREATE TABLE round_entry (
    county      text        NOT NULL,
    round_id    text        NOT NULL REFERENCES publicity_round (id),
    batch_id    text        NOT NULL,
    uscc        text        NOT NULL,
    policy_year int         NOT NULL,
    name        text        NOT NULL,
    amount_fen  bigint      NOT NULL CHECK (amount_fen > 0),
    removed     boolean     NOT NULL DEFAULT false, -- an upheld objection took it out
    PRIMARY KEY (county, round_id, uscc),
    FOREIGN KEY (county, batch_id, uscc) REFERENCES received_item (county, batch_id, uscc)
);
CREATE UNIQUE INDEX round_entry_live ON round_entry (policy_year, uscc) WHERE NOT removed;
CREATE INDEX round_entry_round ON round_entry (round_id, uscc);
CREATE INDEX round_entry_name ON round_entry (round_id, name text_pattern_ops);

-- objection: raised during publicity against one enterprise of a round,
-- through the portal's form or recorded by staff. An open objection freezes
-- that enterprise only; upheld removes it (with the reason), dismissed lets
-- it go on.
CREATE TABLE objection (
    county            text        NOT NULL,
    id                text        NOT NULL, -- such as O2022-000001
    round_id          text        NOT NULL REFERENCES publicity_round (id),
    uscc              text        NOT NULL,
    contact_name      text        NOT NULL,
    contact_phone     text        NOT NULL,
    text              text        NOT NULL CHECK (text <> ''),
    channel           text        NOT NULL CHECK (channel IN ('sms', 'phone', 'portal', 'counter', 'other')),
    state             text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'upheld', 'dismissed')),
    recorded_by       text        NOT NULL, -- a staff member, or 'portal'
    received_at       timestamptz NOT NULL,
    idempotency_key   text        UNIQUE CHECK (idempotency_key <> ''),
    resolution_reason text        NOT NULL DEFAULT '',
    resolved_by       text        NOT NULL DEFAULT '',
    resolved_at       timestamptz,
    PRIMARY KEY (county, id),
    UNIQUE (id),
    FOREIGN KEY (county, round_id, uscc) REFERENCES round_entry (county, round_id, uscc),
    CHECK ((state = 'open') = (resolved_at IS NULL))
);
CREATE SEQUENCE objection_number;
CREATE INDEX objection_round ON objection (round_id, state);

-- funding_request: raised per county when a round is released (count and
-- total of its instructions); finance confirms it (资金拨付) before that
-- county's instructions can be pulled.
CREATE TABLE funding_request (
    county           text        NOT NULL,
    id               text        NOT NULL, -- such as F2022-0001-371502
    round_id         text        NOT NULL REFERENCES publicity_round (id),
    instruction_count bigint     NOT NULL CHECK (instruction_count >= 0),
    total_fen        bigint      NOT NULL CHECK (total_fen >= 0),
    state            text        NOT NULL DEFAULT 'requested' CHECK (state IN ('requested', 'confirmed')),
    requested_at     timestamptz NOT NULL,
    reference        text        NOT NULL DEFAULT '',
    confirmed_on     date,
    confirmed_by     text        NOT NULL DEFAULT '',
    confirmed_at     timestamptz,
    PRIMARY KEY (county, id),
    UNIQUE (id),
    CHECK ((state = 'confirmed') = (confirmed_at IS NOT NULL))
);

-- payment_instruction: one per enterprise and policy year (released), or a
-- re-issue of a returned one to a corrected account (reissue_of). seq orders
-- the finance feed: PullInstructions pages by it.
CREATE TABLE payment_instruction (
    county             text        NOT NULL,
    id                 text        NOT NULL, -- such as P2022-00000001
    seq                bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    end_to_end_id      text        NOT NULL UNIQUE CHECK (length(end_to_end_id) BETWEEN 1 AND 35), -- ISO 20022 Max35Text
    round_id           text        NOT NULL REFERENCES publicity_round (id),
    batch_id           text        NOT NULL,
    uscc               text        NOT NULL,
    policy_year        int         NOT NULL,
    payee_name         text        NOT NULL,
    account_no         text        NOT NULL,
    bank               text        NOT NULL,
    bank_code          text        NOT NULL,
    account_kind       text        NOT NULL CHECK (account_kind IN ('corporate', 'social_insurance')),
    amount_fen         bigint      NOT NULL CHECK (amount_fen > 0),
    purpose            text        NOT NULL DEFAULT '失业保险稳岗返还',
    state              text        NOT NULL DEFAULT 'released' CHECK (state IN ('released', 'acknowledged', 'paid', 'returned', 'reissued')),
    reissue_of         text        NOT NULL DEFAULT '',
    reissued_by        text        NOT NULL DEFAULT '',
    funding_request_id text        NOT NULL,
    released_at        timestamptz NOT NULL,
    acknowledged_at    timestamptz,
    bank_reference     text        NOT NULL DEFAULT '',
    paid_on            date,
    return_reason      text        NOT NULL DEFAULT '',
    return_code        text        NOT NULL DEFAULT '',
    returned_on        date,
    PRIMARY KEY (county, id),
    UNIQUE (id),
    FOREIGN KEY (county, batch_id, uscc) REFERENCES received_item (county, batch_id, uscc),
    FOREIGN KEY (county, funding_request_id) REFERENCES funding_request (county, id)
);
-- Exactly once per enterprise and policy year: of an enterprise's
-- instructions, only the first (not a re-issue) may exist; each returned
-- instruction is re-issued at most once.
CREATE UNIQUE INDEX payment_instruction_once ON payment_instruction (policy_year, uscc) WHERE reissue_of = '';
CREATE UNIQUE INDEX payment_instruction_reissue ON payment_instruction (reissue_of) WHERE reissue_of <> '';
CREATE SEQUENCE payment_instruction_number;
