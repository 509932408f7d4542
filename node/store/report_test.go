package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/node/store"
	"wengang/node/sync/synctest"
	"wengang/policy/refund"
	"wengang/server/batchtest"
)

// rpOutbox is a screening's row of the report outbox.
type rpOutbox struct {
	revision, pushed, refused int64
	attempts                  int
	lastErr                   string
}

func rpRow(t *testing.T, pool *pgxpool.Pool, county string, id int64) rpOutbox {
	t.Helper()
	var o rpOutbox
	if err := pool.QueryRow(context.Background(), `SELECT revision, pushed_revision, refused_revision, push_attempts, last_push_error
		FROM screening_report_outbox WHERE county = $1 AND screening_id = $2`, county, id).Scan(
		&o.revision, &o.pushed, &o.refused, &o.attempts, &o.lastErr); err != nil {
		t.Fatal(err)
	}
	return o
}

// rpScreening stores a screening of county whose units (n of them) are all
// eligible, with a batch of them, and returns its id and the sum of their
// refunds.
func rpScreening(t *testing.T, pool *pgxpool.Pool, county, batchID string, n int) (int64, int64) {
	t.Helper()
	var codes []string
	for i := range n {
		codes = append(codes, batchtest.USCC(i+1))
	}
	b, _ := synctest.Seal(t, pool, batchtest.Batch(county, batchID, codes...))
	id, err := strconv.ParseInt(b.ScreeningId, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id, b.TotalFen
}

func rpExec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func rpDue(t *testing.T, s *store.Store, now time.Time, counties ...string) []store.ScreeningReport {
	t.Helper()
	got, err := s.ReportDue(context.Background(), counties, now, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestScreeningReportRevisionFollowsReviews(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	id, total := rpScreening(t, pool, countyA, countyA+"-B000001", 3)
	other, _ := rpScreening(t, pool, countyB, countyB+"-B000001", 1)
	now := time.Now().Add(time.Second)

	// A new screening is due at revision 1, with its tallies; only the
	// counties asked for are claimed.
	if o := rpRow(t, pool, countyA, id); o != (rpOutbox{revision: 1}) {
		t.Fatalf("after the screening: %+v", o)
	}
	got := rpDue(t, s, now, countyA)
	if len(got) != 1 {
		t.Fatalf("due: %+v", got)
	}
	r := got[0]
	if r.County != countyA || r.ScreeningID != id || r.Revision != 1 || r.DatasetHash != strings.Repeat("d", 64) ||
		r.AsOf == 0 || r.PolicyID == "" || r.RunAt.IsZero() {
		t.Fatalf("report: %+v", r)
	}
	for _, tl := range []store.Tally{r.Screened, r.Reviewed} {
		if tl.Units != 3 || tl.Count[refund.Eligible] != 3 || tl.Fen[refund.Eligible] != total || tl.Count[refund.Ineligible] != 0 {
			t.Fatalf("tally: %+v", tl)
		}
	}
	// Leased, then acknowledged: due no more.
	if got := rpDue(t, s, now, countyA); len(got) != 0 {
		t.Fatalf("claimed again within the lease: %+v", got)
	}
	if err := s.RecordReportPushed(ctx, countyA, id, 1, 1, now); err != nil {
		t.Fatal(err)
	}
	if got := rpDue(t, s, now.Add(time.Hour), countyA); len(got) != 0 {
		t.Fatalf("due after the city acknowledged it: %+v", got)
	}

	// A change that leaves every decision and refund as it was is no new
	// revision.
	rpExec(t, pool, `UPDATE screening_result SET payee_bank = 'x', reviewed = true WHERE county = $1 AND screening_id = $2`, countyA, id)
	if o := rpRow(t, pool, countyA, id); o.revision != 1 {
		t.Fatalf("a change of no tally: %+v", o)
	}

	// A review that refuses two units in one statement: one new revision,
	// due now, with the reviewed tallies changed and the screened ones not.
	rpExec(t, pool, `UPDATE screening_result SET decision = 'ineligible', refund_fen = 0
		WHERE county = $1 AND screening_id = $2 AND uscc <> $3`, countyA, id, batchtest.USCC(1))
	if o := rpRow(t, pool, countyA, id); o.revision != 2 || o.pushed != 1 {
		t.Fatalf("after the review: %+v", o)
	}
	got = rpDue(t, s, time.Now().Add(time.Second), countyA)
	if len(got) != 1 || got[0].Revision != 2 {
		t.Fatalf("due after the review: %+v", got)
	}
	r = got[0]
	if r.Screened.Count[refund.Eligible] != 3 || r.Reviewed.Units != 3 || r.Reviewed.Count[refund.Eligible] != 1 ||
		r.Reviewed.Count[refund.Ineligible] != 2 || r.Reviewed.Fen[refund.Eligible] >= total {
		t.Fatalf("tallies after the review: screened %+v, reviewed %+v", r.Screened, r.Reviewed)
	}
	// A refund changed alone is a new revision too.
	rpExec(t, pool, `UPDATE screening_result SET refund_fen = refund_fen + 1 WHERE county = $1 AND screening_id = $2 AND uscc = $3`,
		countyA, id, batchtest.USCC(1))
	if o := rpRow(t, pool, countyA, id); o.revision != 3 {
		t.Fatalf("after a changed refund: %+v", o)
	}

	// The other county's screening is untouched by all this.
	if o := rpRow(t, pool, countyB, other); o != (rpOutbox{revision: 1}) {
		t.Fatalf("county B: %+v", o)
	}
}

func TestScreeningReportOutcomes(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	id, _ := rpScreening(t, pool, countyA, countyA+"-B000001", 2)
	review := func() {
		rpExec(t, pool, `UPDATE screening_result SET refund_fen = refund_fen + 1 WHERE county = $1 AND screening_id = $2 AND uscc = $3`,
			countyA, id, batchtest.USCC(1))
	}
	now := time.Now().Add(time.Second)

	// A failure to retry: due again at next, not before.
	rpDue(t, s, now, countyA)
	next := now.Add(10 * time.Minute)
	if err := s.RecordReportFailure(ctx, countyA, id, 1, "Unavailable: down", true, next); err != nil {
		t.Fatal(err)
	}
	if o := rpRow(t, pool, countyA, id); o.attempts != 1 || o.lastErr != "Unavailable: down" || o.refused != 0 {
		t.Fatalf("after a failure: %+v", o)
	}
	if got := rpDue(t, s, next.Add(-time.Second), countyA); len(got) != 0 {
		t.Fatalf("due before its retry: %+v", got)
	}
	got := rpDue(t, s, next, countyA)
	if len(got) != 1 || got[0].PushAttempts != 1 {
		t.Fatalf("due at its retry: %+v", got)
	}

	// Refused for good: never pushed again, until a review makes a new
	// revision.
	if err := s.RecordReportFailure(ctx, countyA, id, 1, "InvalidArgument: bad", false, next); err != nil {
		t.Fatal(err)
	}
	if got := rpDue(t, s, next.Add(time.Hour), countyA); len(got) != 0 {
		t.Fatalf("a refused revision is due: %+v", got)
	}
	review()
	if got := rpDue(t, s, next.Add(time.Hour), countyA); len(got) != 1 || got[0].Revision != 2 {
		t.Fatalf("the revision after a refused one: %+v", got)
	}

	// A review during the push: the acknowledged revision is not the
	// latest, so the report is due again at once, at its new revision.
	review()
	if err := s.RecordReportPushed(ctx, countyA, id, 2, 2, next.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if o := rpRow(t, pool, countyA, id); o.revision != 3 || o.pushed != 2 || o.attempts != 0 || o.lastErr != "" {
		t.Fatalf("after the push: %+v", o)
	}
	if got := rpDue(t, s, time.Now().Add(time.Second), countyA); len(got) != 1 || got[0].Revision != 3 {
		t.Fatalf("the revision reviewed during the push: %+v", got)
	}

	// The city holds a higher revision than the node's (a node restored from
	// an older backup): the revision jumps past it and is due again.
	at := time.Now().Add(time.Second)
	if err := s.RecordReportPushed(ctx, countyA, id, 3, 7, at); err != nil {
		t.Fatal(err)
	}
	if o := rpRow(t, pool, countyA, id); o.revision != 8 || o.pushed != 3 {
		t.Fatalf("after the city answered a higher revision: %+v", o)
	}
	if got := rpDue(t, s, at, countyA); len(got) != 1 || got[0].Revision != 8 {
		t.Fatalf("due past the city's revision: %+v", got)
	}
}

func TestReportDueSkipsAReviewInProgress(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	id, _ := rpScreening(t, pool, countyA, countyA+"-B000001", 2)
	if err := s.RecordReportPushed(ctx, countyA, id, 1, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE screening_result SET decision = 'hold' WHERE county = $1 AND screening_id = $2 AND uscc = $3`,
		countyA, id, batchtest.USCC(2)); err != nil {
		t.Fatal(err)
	}
	// The review has not committed: neither its revision nor its tallies
	// are to be reported, and the claim does not wait for it.
	if got := rpDue(t, s, time.Now().Add(time.Hour), countyA); len(got) != 0 {
		t.Fatalf("claimed during an uncommitted review: %+v", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := rpDue(t, s, time.Now().Add(time.Second), countyA)
	if len(got) != 1 || got[0].Revision != 2 || got[0].Reviewed.Count[refund.Hold] != 1 || got[0].Reviewed.Count[refund.Eligible] != 1 {
		t.Fatalf("after the review: %+v", got)
	}
}
