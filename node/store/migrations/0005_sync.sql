-- The county's side of the sync with the city (上报与反馈). The batch outbox is
-- the batch table itself (0002): the sync worker claims sealed batches whose
-- next_push_at has come and records each push's outcome there. Here: the
-- mirror of the city's decisions feed (the raw log, each batched unit's
-- status, the pull position per county) and the outbox of corrected accounts.
-- Every table leads its key with the county.

-- sync_cursor is how far each county's decisions feed has been applied: the
-- city's opaque cursor to pull on from, and the highest sequence applied.
CREATE TABLE sync_cursor (
    county        text        PRIMARY KEY,
    cursor        text        NOT NULL DEFAULT '',
    last_sequence bigint      NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- city_decision is the decisions feed as pulled, one row per county and
-- sequence; applying a decision twice finds its row and changes nothing.
CREATE TABLE city_decision (
    county          text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence > 0),
    kind            text        NOT NULL CHECK (kind IN ('received', 'rejected', 'conflict', 'in_publicity', 'objected',
                                    'objection_dismissed', 'removed', 'released', 'paid', 'returned', 'reissued')),
    batch_id        text        NOT NULL,
    uscc            text        NOT NULL,
    reason          text        NOT NULL,
    rejections      jsonb       NOT NULL DEFAULT '[]', -- [{"code": "REFUND_MISMATCH", "detail": "...", "reasons": ["ARREARS"]}]
    conflict_id     text        NOT NULL DEFAULT '',
    round_id        text        NOT NULL DEFAULT '',
    publicity_start date,
    publicity_end   date,
    amount_fen      bigint      NOT NULL DEFAULT 0,
    instruction_id  text        NOT NULL DEFAULT '',
    bank_reference  text        NOT NULL DEFAULT '',
    settled_on      date,
    occurred_at     timestamptz NOT NULL,
    applied_at      timestamptz NOT NULL,
    PRIMARY KEY (county, sequence)
);
CREATE INDEX city_decision_item ON city_decision (county, batch_id, uscc);

-- unit_status is each batched unit's state as the city decided it, one row
-- per batch item (a unit rebatched after a rejection has a row per batch),
-- changed only by a decision with a higher sequence. An item without a row
-- is pending (or rejected, when its batch was refused as a whole).
CREATE TABLE unit_status (
    county          text        NOT NULL,
    batch_id        text        NOT NULL,
    uscc            text        NOT NULL,
    policy_year     int,        -- from the batch item; NULL for a decision about an item this node does not hold
    state           text        NOT NULL CHECK (state IN ('received', 'rejected', 'conflict', 'in_publicity',
                                    'objected', 'removed', 'released', 'paid', 'returned')),
    last_decision   text        NOT NULL,
    last_sequence   bigint      NOT NULL CHECK (last_sequence > 0),
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
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (county, batch_id, uscc)
);
CREATE INDEX unit_status_unit ON unit_status (county, policy_year, uscc);

-- correction_outbox holds the corrected accounts clerks recorded after a
-- returned payment (退票), each pushed to the city (SyncService.
-- PushAccountCorrection) until it answers: 'pending' until then,
-- 'accepted' or 'refused' (with the city's reason) after. id is the
-- clerk's idempotency key and the correction id the city sees.
CREATE TABLE correction_outbox (
    county            text        NOT NULL,
    id                text        NOT NULL CHECK (id <> ''),
    batch_id          text        NOT NULL,
    uscc              text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('corporate', 'social_insurance')),
    bank              text        NOT NULL,
    bank_code         text        NOT NULL,
    account_no        text        NOT NULL,
    account_name      text        NOT NULL,
    reason            text        NOT NULL CHECK (reason <> ''),
    corrected_by      text        NOT NULL,
    returned_sequence bigint      NOT NULL, -- the RETURNED decision it answers
    state             text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'refused')),
    created_at        timestamptz NOT NULL,
    push_attempts     int         NOT NULL DEFAULT 0,
    next_push_at      timestamptz NOT NULL,
    last_push_error   text        NOT NULL DEFAULT '',
    accepted_at       timestamptz,
    instruction_id    text        NOT NULL DEFAULT '',
    PRIMARY KEY (county, id),
    FOREIGN KEY (county, batch_id, uscc) REFERENCES batch_item (county, batch_id, uscc)
);
-- One correction on its way per returned payment.
CREATE UNIQUE INDEX correction_outbox_one ON correction_outbox (county, batch_id, uscc, returned_sequence) WHERE state <> 'refused';
CREATE INDEX correction_outbox_due ON correction_outbox (next_push_at) WHERE state = 'pending';

-- Unit statuses are listed by USCC, then batch.
CREATE INDEX batch_item_unit ON batch_item (county, uscc, batch_id);
