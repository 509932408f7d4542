-- Datasets: the source files a county imported, kept as they were read, so that
-- any screening can be recomputed from them later. Every table leads its key
-- with the county (tenant) code. Money is bigint fen; a missing date is NULL;
-- enums are text with CHECK constraints mirroring policy/refund.

CREATE TABLE dataset (
    county       text        NOT NULL CHECK (county <> ''),
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    name         text        NOT NULL CHECK (name <> ''),
    state        text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'sealed')),
    content_hash text        CHECK (content_hash <> ''),
    created_at   timestamptz NOT NULL DEFAULT now(),
    sealed_at    timestamptz,
    PRIMARY KEY (county, id),
    UNIQUE (county, name),
    -- sealed exactly when it has a content hash and a seal time
    CHECK ((state = 'sealed') = (content_hash IS NOT NULL) AND (state = 'sealed') = (sealed_at IS NOT NULL))
);

-- One row per kind of source file imported into a dataset: at most one file
-- of each kind.
CREATE TABLE dataset_file (
    county      text        NOT NULL,
    dataset_id  bigint      NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('units', 'contributions', 'accounts', 'exclusions')),
    file_name   text        NOT NULL,
    format      text        NOT NULL CHECK (format IN ('csv', 'xlsx')),
    encoding    text        NOT NULL, -- of a CSV file ('utf-8', 'gb18030', ...); '' for XLSX
    row_count   int         NOT NULL CHECK (row_count >= 0),
    sha256      bytea       NOT NULL CHECK (octet_length(sha256) = 32),
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county, dataset_id, kind),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);

-- The rows of each kind of file, in file order: seq is a row's 1-based
-- position among the file's data rows.

CREATE TABLE dataset_unit (
    county          text    NOT NULL,
    dataset_id      bigint  NOT NULL,
    seq             int     NOT NULL CHECK (seq > 0),
    uscc            text    NOT NULL,
    name            text    NOT NULL,
    unit_county     text    NOT NULL, -- 参保地 as the row says (normalized)
    industry        text    NOT NULL,
    size            text    CHECK (size IN ('large', 'medium', 'small', 'micro')), -- NULL: unknown
    status          text    NOT NULL CHECK (status IN ('active', 'deregistered', 'revoked')),
    headcount_start int     NOT NULL CHECK (headcount_start >= 0),
    headcount_end   int     NOT NULL CHECK (headcount_end >= 0),
    mobile          text    NOT NULL, -- '' when none
    PRIMARY KEY (county, dataset_id, seq),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);

CREATE TABLE dataset_contribution (
    county       text    NOT NULL,
    dataset_id   bigint  NOT NULL,
    seq          int     NOT NULL CHECK (seq > 0),
    uscc         text    NOT NULL,
    period       int     NOT NULL CHECK (period BETWEEN 190001 AND 299912 AND period % 100 BETWEEN 1 AND 12), -- YYYYMM
    employer_fen bigint  NOT NULL CHECK (employer_fen >= 0),
    employee_fen bigint  NOT NULL CHECK (employee_fen >= 0),
    late_fee_fen bigint  NOT NULL CHECK (late_fee_fen >= 0),
    paid_on      date,   -- NULL: unpaid
    PRIMARY KEY (county, dataset_id, seq),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);

CREATE TABLE dataset_account (
    county       text    NOT NULL,
    dataset_id   bigint  NOT NULL,
    seq          int     NOT NULL CHECK (seq > 0),
    uscc         text    NOT NULL,
    kind         text    NOT NULL CHECK (kind IN ('corporate', 'social_insurance')),
    bank         text    NOT NULL,
    bank_code    text    NOT NULL, -- '' when none
    account_no   text    NOT NULL,
    account_name text    NOT NULL,
    PRIMARY KEY (county, dataset_id, seq),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);

CREATE TABLE dataset_exclusion (
    county     text    NOT NULL,
    dataset_id bigint  NOT NULL,
    seq        int     NOT NULL CHECK (seq > 0),
    uscc       text    NOT NULL,
    list       text    NOT NULL CHECK (list IN ('credit', 'zombie', 'industry_policy', 'environment')),
    source     text    NOT NULL,
    listed_on  date    NOT NULL,
    removed_on date,   -- NULL: still listed
    PRIMARY KEY (county, dataset_id, seq),
    FOREIGN KEY (county, dataset_id) REFERENCES dataset (county, id)
);
