-- Publicity: the lookups of a round's release. ReleaseRound and ReleaseOf
-- read a round's instructions and funding requests by round.
CREATE INDEX payment_instruction_round ON payment_instruction (round_id, county);
CREATE INDEX funding_request_round ON funding_request (round_id, county);
