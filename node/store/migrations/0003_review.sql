-- Import bookkeeping, the four-eyes record of screenings, and review (复核).
--
-- 0001 and 0002 are never edited: what import, screening and review need of
-- their tables beyond them is added here with ALTER TABLE.

-- What ImportService reports of each file and dataset.
ALTER TABLE dataset_file
    ADD COLUMN size_bytes    bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    ADD COLUMN warning_count bigint NOT NULL DEFAULT 0 CHECK (warning_count >= 0),
    ADD COLUMN imported_by   text   NOT NULL DEFAULT '';
ALTER TABLE dataset ADD COLUMN sealed_by text NOT NULL DEFAULT '';

-- The line of its file each row was read from, so that the warnings found
-- when a dataset is sealed (rows whose USCC is not a unit of the dataset)
-- name it. NULL for rows stored without one.
ALTER TABLE dataset_contribution ADD COLUMN line int CHECK (line > 0);
ALTER TABLE dataset_account      ADD COLUMN line int CHECK (line > 0);
ALTER TABLE dataset_exclusion    ADD COLUMN line int CHECK (line > 0);

-- The first answer to each idempotency key of ImportService.Import, sent
-- again to a repeat; request_sha256 is what the key was used for (dataset,
-- kind, file name, format and the file's SHA-256), so that the same key for
-- another file is refused.
CREATE TABLE import_request (
    county          text        NOT NULL,
    idempotency_key text        NOT NULL CHECK (idempotency_key <> ''),
    request_sha256  bytea       NOT NULL CHECK (octet_length(request_sha256) = 32),
    dataset_id      bigint      NOT NULL,
    response        bytea       NOT NULL, -- wengang.v1.ImportResponse as first sent
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county, idempotency_key),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);

-- Four eyes: the name of the person who ran a screening, besides the
-- subject of their token (run_by), so that the same person with another
-- token is still refused as its reviewer.
ALTER TABLE screening ADD COLUMN run_by_name text NOT NULL DEFAULT '';

-- A reviewer's override of the rules' decision: '' none, 'excluded' (剔除:
-- ineligible, refund 0), 'reinstated' (恢复: refusals set aside). The current
-- columns of screening_result are always the rules' decision on the unit's
-- rows with the recorded facts (review.fact_*), then this override.
ALTER TABLE screening_result
    ADD COLUMN override text NOT NULL DEFAULT '' CHECK (override IN ('', 'excluded', 'reinstated'));

-- Review actions, append-only. A resolve_hold row records one fact (its
-- fact_* columns); the facts of a unit apply in id order.
CREATE TABLE review (
    county              text        NOT NULL,
    id                  bigint      GENERATED ALWAYS AS IDENTITY,
    screening_id        bigint      NOT NULL,
    uscc                text        NOT NULL, -- the screening result's key
    action              text        NOT NULL CHECK (action IN ('exclude', 'reinstate', 'resolve_hold')),
    reason              text        NOT NULL CHECK (btrim(reason) <> ''),
    fact_kind           text        CHECK (fact_kind IN ('account', 'size', 'uscc')),
    fact_size           text        CHECK (fact_size IN ('large', 'medium', 'small', 'micro')),
    fact_account_kind   text        CHECK (fact_account_kind IN ('corporate', 'social_insurance')),
    fact_bank           text        NOT NULL DEFAULT '',
    fact_bank_code      text        NOT NULL DEFAULT '',
    fact_account_no     text        NOT NULL DEFAULT '',
    fact_account_name   text        NOT NULL DEFAULT '',
    fact_corrected_uscc text        NOT NULL DEFAULT '', -- '' with fact_kind 'uscc': the code is confirmed as issued
    decision_before     text        NOT NULL CHECK (decision_before IN ('eligible', 'hold', 'ineligible')),
    decision_after      text        NOT NULL CHECK (decision_after IN ('eligible', 'hold', 'ineligible')),
    refund_before_fen   bigint      NOT NULL CHECK (refund_before_fen >= 0),
    refund_after_fen    bigint      NOT NULL CHECK (refund_after_fen >= 0),
    reviewer            text        NOT NULL, -- subject of the reviewer's token
    reviewer_name       text        NOT NULL,
    reviewed_at         timestamptz NOT NULL,
    idempotency_key     text        NOT NULL CHECK (idempotency_key <> ''),
    request_sha256      bytea       NOT NULL CHECK (octet_length(request_sha256) = 32),
    PRIMARY KEY (county, id),
    UNIQUE (county, idempotency_key),
    FOREIGN KEY (county, screening_id, uscc) REFERENCES screening_result (county, screening_id, uscc),
    CHECK ((action = 'resolve_hold') = (fact_kind IS NOT NULL)),
    CHECK ((fact_kind = 'size') = (fact_size IS NOT NULL)),
    CHECK ((fact_kind = 'account') = (fact_account_kind IS NOT NULL AND fact_account_no <> ''))
);
CREATE INDEX review_unit ON review (county, screening_id, uscc, id);
