package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"wengang/internal/pg"
	"wengang/policy/civil"
)

// This file is the outbox of screening reports (0007_report.sql): each
// screening's tallies, told to the city for its progress dashboard after
// the screening and again after each review with a higher revision. The
// revision is kept by triggers on screening and screening_result; the sync
// worker claims due reports here and records each push's outcome.

// ScreeningReport is a screening's tallies at one revision, as the sync
// worker reports them (wengang.v1.ScreeningReport).
type ScreeningReport struct {
	County       string
	ScreeningID  int64
	Revision     int64 // increases with every change of the screening's current decisions or refunds
	DatasetHash  string
	AsOf         civil.Date
	PolicyID     string
	RunAt        time.Time
	Screened     Tally // as the rules decided
	Reviewed     Tally // after review
	PushAttempts int   // failed pushes since the last one that succeeded
}

// ReportDue claims up to limit reports of counties whose revision is ahead
// of what the city acknowledged (and of a revision it refused for good) and
// whose next_push_at has come (at now), oldest first, for one push each:
// their next_push_at moves to now+lease, as ClaimDueBatches does. Reports
// locked by another claim, or by a review that has not committed yet, are
// skipped.
//
// Each report's tallies are read after its claim, in the same transaction,
// so that they are those of the revision claimed: a review that changes
// them afterwards bumps the revision and makes the report due again.
func (s *Store) ReportDue(ctx context.Context, counties []string, now time.Time, lease time.Duration, limit int) ([]ScreeningReport, error) {
	var out []ScreeningReport
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE screening_report_outbox o SET next_push_at = $3
			FROM (SELECT county, screening_id FROM screening_report_outbox
				WHERE revision > pushed_revision AND revision > refused_revision AND next_push_at <= $2 AND county = ANY($1)
				ORDER BY next_push_at, county, screening_id LIMIT $4 FOR UPDATE SKIP LOCKED) due
			WHERE o.county = due.county AND o.screening_id = due.screening_id
			RETURNING o.county, o.screening_id, o.revision, o.push_attempts`, counties, now, now.Add(lease), limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ScreeningReport, error) {
			var r ScreeningReport
			err := row.Scan(&r.County, &r.ScreeningID, &r.Revision, &r.PushAttempts)
			return r, err
		})
		if err != nil {
			return err
		}
		// A new statement: its snapshot sees every change up to the
		// revisions just locked, and none after them (a later review waits
		// for these locks before its revision bump can commit).
		for i := range out {
			r := &out[i]
			sc, err := s.getScreening(ctx, tx, r.County, r.ScreeningID)
			if err != nil {
				return err
			}
			r.DatasetHash, r.AsOf, r.PolicyID, r.RunAt = sc.DatasetHash, sc.AsOf, sc.PolicyID, sc.RunAt
			r.Screened, r.Reviewed = sc.Screened, sc.Reviewed
		}
		return nil
	})
	if err != nil {
		return nil, fail(err, "claim due screening reports")
	}
	return out, nil
}

// RecordReportPushed records that the city acknowledged revision of the
// report of screening id of county at at, answering that it holds held.
// Acknowledging a revision at or below one already acknowledged changes
// nothing of the kind. When the city holds a revision at or above the
// node's own (the node's database was restored from an older backup), the
// revision jumps past it and the report is due again at at, so that the
// city takes the node's tallies.
func (s *Store) RecordReportPushed(ctx context.Context, county string, id, revision, held int64, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE screening_report_outbox SET
			pushed_revision = greatest(pushed_revision, $3), pushed_at = $5, push_attempts = 0, last_push_error = '',
			revision = CASE WHEN $4 > $3 AND $4 >= revision THEN $4 + 1 ELSE revision END,
			next_push_at = CASE WHEN $4 > $3 AND $4 >= revision THEN $5 ELSE next_push_at END
		WHERE county = $1 AND screening_id = $2`, county, id, revision, held, at)
	if err != nil {
		return fail(err, "record push of the report of screening %d of county %s", id, county)
	}
	return nil
}

// RecordReportFailure records a failed push of revision of the report of
// screening id of county. When retry is true the push is tried again at
// next; otherwise the city refused that revision for good and it is not
// pushed again (a later revision is). A report whose revision moved on
// since the claim keeps its next_push_at: the new revision is due as the
// trigger that bumped it said.
func (s *Store) RecordReportFailure(ctx context.Context, county string, id, revision int64, reason string, retry bool, next time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE screening_report_outbox SET
			push_attempts = push_attempts + 1, last_push_error = $4,
			refused_revision = CASE WHEN $5 THEN refused_revision ELSE greatest(refused_revision, $3) END,
			next_push_at = CASE WHEN revision = $3 THEN $6 ELSE next_push_at END
		WHERE county = $1 AND screening_id = $2`, county, id, revision, reason, retry, next)
	if err != nil {
		return fail(err, "record failed push of the report of screening %d of county %s", id, county)
	}
	return nil
}
