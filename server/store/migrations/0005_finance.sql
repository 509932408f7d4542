-- Finance: the order in which payment instructions become pullable, and the
-- funding requests of re-issues.

-- pull_seq is an instruction's position in the finance feed
-- (PullInstructions), assigned when its funding request is confirmed; NULL
-- while it is not pullable. Positions come from instruction_pull_counter,
-- whose one row is locked until the confirming transaction ends, so a
-- position is visible only once every lower one is: a reader paging by
-- pull_seq never skips one that commits later.
ALTER TABLE payment_instruction ADD COLUMN pull_seq bigint UNIQUE;
CREATE TABLE instruction_pull_counter (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq bigint  NOT NULL DEFAULT 0
);
INSERT INTO instruction_pull_counter DEFAULT VALUES;

CREATE INDEX payment_instruction_funding ON payment_instruction (county, funding_request_id, seq);
CREATE INDEX payment_instruction_item ON payment_instruction (county, batch_id, uscc);

-- reissue marks the funding requests the city raises for re-issued
-- payments (one open request per county and round collects them until
-- finance confirms it).
ALTER TABLE funding_request ADD COLUMN reissue boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX funding_request_open_reissue ON funding_request (county, round_id) WHERE reissue AND state = 'requested';
CREATE INDEX funding_request_requested ON funding_request (requested_at, id);
CREATE SEQUENCE funding_request_reissue_number;
