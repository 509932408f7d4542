-- The outbox of screening reports (SyncService.ReportScreening): the county
-- tells the city each screening's tallies for the progress dashboard, after
-- the screening and again after each review, with a higher revision.
--
-- A row per screening holds the revision its tallies are at and the highest
-- revision the city has acknowledged. Triggers keep the revision: a new
-- screening starts at 1, and every statement that changes the current
-- decision or refund of some results bumps the revision of their
-- screenings, so that no service code has to remember to. The sync worker
-- claims the reports whose revision is ahead of what the city holds (and
-- ahead of one it refused for good) and whose next_push_at has come, builds
-- their tallies from screening_result when it pushes, and records the
-- outcome here. Keyed by county first, as every table.

CREATE TABLE screening_report_outbox (
    county           text        NOT NULL,
    screening_id     bigint      NOT NULL,
    revision         bigint      NOT NULL DEFAULT 1 CHECK (revision > 0),
    pushed_revision  bigint      NOT NULL DEFAULT 0 CHECK (pushed_revision >= 0), -- the highest the city acknowledged
    refused_revision bigint      NOT NULL DEFAULT 0 CHECK (refused_revision >= 0), -- the last one the city refused for good
    next_push_at     timestamptz NOT NULL DEFAULT now(),
    push_attempts    int         NOT NULL DEFAULT 0, -- failed pushes since the last one that succeeded
    last_push_error  text        NOT NULL DEFAULT '',
    pushed_at        timestamptz,
    PRIMARY KEY (county, screening_id),
    FOREIGN KEY (county, screening_id) REFERENCES screening (county, id) ON DELETE CASCADE
);
CREATE INDEX screening_report_outbox_due ON screening_report_outbox (next_push_at)
    WHERE revision > pushed_revision AND revision > refused_revision;

-- Screenings run before this migration are reported too.
INSERT INTO screening_report_outbox (county, screening_id) SELECT county, id FROM screening;

-- A new screening's report is due at revision 1.
CREATE FUNCTION screening_report_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO screening_report_outbox (county, screening_id) VALUES (NEW.county, NEW.id)
		ON CONFLICT (county, screening_id) DO UPDATE
		SET revision = screening_report_outbox.revision + 1, next_push_at = now();
	RETURN NULL;
END $$;
CREATE TRIGGER screening_report_new AFTER INSERT ON screening
	FOR EACH ROW EXECUTE FUNCTION screening_report_new();

-- A statement that changes the current decision or refund of results bumps
-- the revision of each of their screenings once, and makes it due now.
CREATE FUNCTION screening_report_reviewed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO screening_report_outbox AS o (county, screening_id)
		SELECT DISTINCT n.county, n.screening_id
		FROM new_results n JOIN old_results p USING (county, screening_id, uscc)
		WHERE (n.decision, n.refund_fen) IS DISTINCT FROM (p.decision, p.refund_fen)
		ORDER BY 1, 2
		ON CONFLICT (county, screening_id) DO UPDATE SET revision = o.revision + 1, next_push_at = now();
	RETURN NULL;
END $$;
CREATE TRIGGER screening_report_reviewed AFTER UPDATE ON screening_result
	REFERENCING OLD TABLE AS old_results NEW TABLE AS new_results
	FOR EACH STATEMENT EXECUTE FUNCTION screening_report_reviewed();
