-- Notifications (推送) and enterprises' responses, and what sealing a batch
-- needs to answer a repeated request.
--
-- notification is the SMS outbox: one row per unit and screening, never two
-- (the unique key makes NotifyUnits idempotent). The sender claims due
-- 'queued' rows with FOR UPDATE SKIP LOCKED, counts the attempt and moves
-- next_attempt_at past its send timeout (a lease), sends outside any
-- transaction, then records 'sent' — only from 'queued', so a row recorded
-- sent is never sent again. A sender that dies between sending and recording
-- leaves the row 'queued'; once the lease expires it is sent again under the
-- same message id (county-N<id>), which the provider deduplicates.
--
--   queued ─send ok─► sent ─(delivery receipt)─► delivered
--     │ └─transient failure, attempts left─► queued (next_attempt_at = backoff)
--     └─permanent failure, or attempts used up─► failed
--   no_mobile: the unit has no mobile number; never sent.

CREATE TABLE notification (
    county             text        NOT NULL,
    id                 bigint      GENERATED ALWAYS AS IDENTITY,
    screening_id       bigint      NOT NULL,
    uscc               text        NOT NULL, -- the screening result's key
    name               text        NOT NULL,
    mobile             text        NOT NULL, -- '' with state no_mobile
    text               text        NOT NULL, -- the SMS as sent, in Chinese
    refund_fen         bigint      NOT NULL CHECK (refund_fen >= 0), -- the amount the text quotes
    state              text        NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'failed', 'no_mobile')),
    attempts           int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at    timestamptz NOT NULL, -- when a queued row is due (again)
    gateway_message_id text        NOT NULL DEFAULT '',
    last_error         text        NOT NULL DEFAULT '',
    queued_at          timestamptz NOT NULL,
    sent_at            timestamptz,
    delivered_at       timestamptz,
    PRIMARY KEY (county, id),
    UNIQUE (county, screening_id, uscc),
    FOREIGN KEY (county, screening_id, uscc) REFERENCES screening_result (county, screening_id, uscc),
    CHECK ((state = 'no_mobile') = (mobile = '')),
    CHECK ((state IN ('sent', 'delivered')) = (sent_at IS NOT NULL))
);
CREATE INDEX notification_outbox ON notification (next_attempt_at) WHERE state = 'queued';
CREATE INDEX notification_list ON notification (county, uscc, id);

-- An enterprise's confirmation (确认) or objection (异议). An objection is
-- open until a reviewer resolves it: upheld keeps the unit out of this
-- screening's batches, dismissed lets it be batched.
CREATE TABLE enterprise_response (
    county            text        NOT NULL,
    id                bigint      GENERATED ALWAYS AS IDENTITY,
    screening_id      bigint      NOT NULL,
    uscc              text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('confirmed', 'objected')),
    text              text        NOT NULL,
    channel           text        NOT NULL CHECK (channel IN ('', 'sms', 'phone', 'portal', 'counter', 'other')), -- '' unspecified
    received_at       timestamptz NOT NULL,
    recorded_by       text        NOT NULL,
    recorded_at       timestamptz NOT NULL,
    objection_state   text        CHECK (objection_state IN ('open', 'upheld', 'dismissed')), -- NULL for a confirmation
    resolution_reason text        NOT NULL DEFAULT '',
    resolved_by       text        NOT NULL DEFAULT '',
    resolved_at       timestamptz,
    idempotency_key   text        NOT NULL CHECK (idempotency_key <> ''),
    request_sha256    bytea       NOT NULL CHECK (octet_length(request_sha256) = 32), -- what the key was first used for
    PRIMARY KEY (county, id),
    UNIQUE (county, idempotency_key),
    FOREIGN KEY (county, screening_id, uscc) REFERENCES screening_result (county, screening_id, uscc),
    CHECK ((kind = 'objected') = (objection_state IS NOT NULL)),
    CHECK ((objection_state IN ('upheld', 'dismissed')) = (resolved_at IS NOT NULL))
);
CREATE INDEX enterprise_response_unit ON enterprise_response (county, screening_id, uscc, id);
CREATE INDEX enterprise_response_blocking ON enterprise_response (county, screening_id, uscc)
    WHERE objection_state IN ('open', 'upheld');

-- SealBatch answers a repeat of its idempotency key with the first answer:
-- it keeps what the key was used for and the counts of units left out.
ALTER TABLE batch
    ADD COLUMN request_sha256        bytea  CHECK (octet_length(request_sha256) = 32),
    ADD COLUMN objected_count        bigint NOT NULL DEFAULT 0 CHECK (objected_count >= 0),
    ADD COLUMN already_batched_count bigint NOT NULL DEFAULT 0 CHECK (already_batched_count >= 0),
    ADD COLUMN hold_count            bigint NOT NULL DEFAULT 0 CHECK (hold_count >= 0);

-- A sealed batch is immutable: its content and what was sealed never
-- change, and neither batches nor their items are deleted. Only the outbox
-- columns and the state (the sync worker's) and an item's live flag (the
-- city's decisions) may change.
CREATE FUNCTION batch_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		RAISE EXCEPTION 'batch %: batches are never deleted', OLD.id;
	END IF;
	IF (NEW.county, NEW.id, NEW.screening_id, NEW.policy_year, NEW.content, NEW.content_hash, NEW.item_count,
			NEW.total_fen, NEW.sealed_by, NEW.sealed_at, NEW.idempotency_key, NEW.request_sha256, NEW.objected_count,
			NEW.already_batched_count, NEW.hold_count)
		IS DISTINCT FROM (OLD.county, OLD.id, OLD.screening_id, OLD.policy_year, OLD.content, OLD.content_hash, OLD.item_count,
			OLD.total_fen, OLD.sealed_by, OLD.sealed_at, OLD.idempotency_key, OLD.request_sha256, OLD.objected_count,
			OLD.already_batched_count, OLD.hold_count) THEN
		RAISE EXCEPTION 'batch %: a sealed batch is immutable', OLD.id;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER batch_immutable BEFORE UPDATE OR DELETE ON batch
	FOR EACH ROW EXECUTE FUNCTION batch_immutable();

CREATE FUNCTION batch_item_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		RAISE EXCEPTION 'batch % item %: batch items are never deleted', OLD.batch_id, OLD.uscc;
	END IF;
	IF (NEW.county, NEW.batch_id, NEW.uscc, NEW.policy_year, NEW.name, NEW.refund_fen)
		IS DISTINCT FROM (OLD.county, OLD.batch_id, OLD.uscc, OLD.policy_year, OLD.name, OLD.refund_fen) THEN
		RAISE EXCEPTION 'batch % item %: only whether it is live may change', OLD.batch_id, OLD.uscc;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER batch_item_immutable BEFORE UPDATE OR DELETE ON batch_item
	FOR EACH ROW EXECUTE FUNCTION batch_item_immutable();
