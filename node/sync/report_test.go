package sync_test

import (
	"context"
	stdsync "sync"
	"testing"

	"wengang/node/sync"
	"wengang/node/sync/synctest"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/batchtest"
	"wengang/server/citytest"
	cstore "wengang/server/store"
)

// rpCountingCity counts the screening reports a node sends the city.
type rpCountingCity struct {
	sync.CityClient
	mu      stdsync.Mutex
	reports int
}

func (c *rpCountingCity) ReportScreening(ctx context.Context, req *wengangv1.ReportScreeningRequest) (*wengangv1.ReportScreeningResponse, error) {
	c.mu.Lock()
	c.reports++
	c.mu.Unlock()
	return c.CityClient.ReportScreening(ctx, req)
}

func (c *rpCountingCity) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reports
}

func rpCityReport(t *testing.T, city *citytest.City, county, id string) cstore.ScreeningReport {
	t.Helper()
	r, err := city.Store.GetScreeningReport(context.Background(), county, id)
	if err != nil {
		t.Fatalf("the city's report of screening %s of county %s: %v", id, county, err)
	}
	return r
}

func TestWorkerReportsScreeningsAndTheirReviews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA}})
	n := newNode(t)
	x, y, z := batchtest.USCC(1), batchtest.USCC(2), batchtest.USCC(3)
	b, _ := synctest.Seal(t, n.db, batchtest.Batch(countyA, countyA+"-B000001", x, y, z))
	cc := &rpCountingCity{CityClient: dial(t, city.Addr)}
	w := newWorker(n, cc, countyA)

	// After the screening: revision 1, screened and reviewed alike.
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := rpCityReport(t, city, countyA, b.ScreeningId)
	if r.Revision != 1 || r.DatasetHash == "" || r.PolicyID != b.PolicyId || r.AsOf == 0 || r.RunAt.IsZero() {
		t.Fatalf("after the screening: %+v", r)
	}
	for _, tl := range []cstore.DecisionTally{r.Screened, r.Reviewed} {
		if tl.Units != 3 || tl.Eligible.Count != 3 || tl.Eligible.AmountFen != b.TotalFen || tl.Ineligible.Count != 0 {
			t.Fatalf("tallies after the screening: %+v", r)
		}
	}

	// A review refuses one unit and holds another: the city gets the next
	// revision with the reviewed tallies; the screened ones stay.
	if _, err := n.db.Exec(ctx, `UPDATE screening_result SET decision = 'ineligible', refund_fen = 0 WHERE county = $1 AND uscc = $2`, countyA, y); err != nil {
		t.Fatal(err)
	}
	if _, err := n.db.Exec(ctx, `UPDATE screening_result SET decision = 'hold' WHERE county = $1 AND uscc = $2`, countyA, z); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r = rpCityReport(t, city, countyA, b.ScreeningId)
	zFen := b.Items[2].RefundFen
	if r.Revision != 3 || r.Screened.Eligible.Count != 3 || r.Screened.Eligible.AmountFen != b.TotalFen ||
		r.Reviewed.Units != 3 || r.Reviewed.Eligible.Count != 1 || r.Reviewed.Eligible.AmountFen != b.Items[0].RefundFen ||
		r.Reviewed.Hold.Count != 1 || r.Reviewed.Hold.AmountFen != zFen || r.Reviewed.Ineligible.Count != 1 {
		t.Fatalf("after the review: %+v", r)
	}
	if got := cc.count(); got != 2 {
		t.Fatalf("%d reports sent for two revisions due", got)
	}

	// Another round sends nothing.
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := cc.count(); got != 2 {
		t.Fatalf("a round with nothing new sent %d reports in all", got)
	}
	if got := count(t, city.DB, `SELECT count(*) FROM audit_log WHERE action = 'screening.report'`); got != 2 {
		t.Fatalf("the city stored %d reports", got)
	}
}

func TestWorkerRetriesAReportUntilTheCityIsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA}})
	n := newNode(t)
	b, _ := synctest.Seal(t, n.db, batchtest.Batch(countyA, countyA+"-B000001", batchtest.USCC(1)))
	w := newWorker(n, dial(t, city.Addr), countyA)
	if err := city.Stop(); err != nil {
		t.Fatal(err)
	}

	// The city is down: the report waits for its retry.
	_ = w.Sync(ctx) // the pull fails too; the pushes are recorded
	var attempts int
	var lastErr string
	if err := n.db.QueryRow(ctx, `SELECT push_attempts, last_push_error FROM screening_report_outbox WHERE county = $1`, countyA).Scan(
		&attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 || lastErr == "" {
		t.Fatalf("after a push to a city that is down: %d attempts, %q", attempts, lastErr)
	}

	// Back on the same address and database: the report arrives.
	city = citytest.Start(t, citytest.Options{Counties: []string{countyA}, Addr: city.Addr, DB: city.DB})
	eventually(t, "the city holds the report", func() bool {
		_ = w.Sync(ctx)
		r, err := city.Store.GetScreeningReport(ctx, countyA, b.ScreeningId)
		return err == nil && r.Revision == 1
	})
}

func TestWorkerStopsReportingARevisionTheCityRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The city takes the node for county A only; the node also serves B.
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA}})
	n := newNode(t)
	synctest.Seal(t, n.db, batchtest.Batch(countyB, countyB+"-B000001", batchtest.USCC(1)))
	cc := &rpCountingCity{CityClient: dial(t, city.Addr)}
	w := newWorker(n, cc, countyB)
	_ = w.Sync(ctx) // the pull of B is refused too
	_ = w.Sync(ctx)
	if got := cc.count(); got != 1 {
		t.Fatalf("a refused report was sent %d times", got)
	}
	var refused int64
	var lastErr string
	if err := n.db.QueryRow(ctx, `SELECT refused_revision, last_push_error FROM screening_report_outbox WHERE county = $1`, countyB).Scan(
		&refused, &lastErr); err != nil {
		t.Fatal(err)
	}
	if refused != 1 || lastErr == "" {
		t.Fatalf("refused revision %d, %q", refused, lastErr)
	}
}
