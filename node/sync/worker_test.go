package sync_test

import (
	"context"
	"net"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"wengang/internal/pgtest"
	"wengang/node/store"
	"wengang/node/sync"
	"wengang/node/sync/synctest"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/batchtest"
	"wengang/server/citytest"
	cstore "wengang/server/store"
)

const (
	countyA = "371502"
	countyB = "371521"
)

type node struct {
	store *store.Store
	db    *pgxpool.Pool
}

func newNode(t *testing.T) node {
	t.Helper()
	db := pgtest.NewDB(t, store.Migrations)
	return node{store: store.New(db), db: db}
}

// dial returns a grpc-go client of the city at addr.
func dial(t *testing.T, addr string) sync.CityClient {
	t.Helper()
	c, closer, err := sync.Dial(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	return c
}

func newWorker(n node, city sync.CityClient, counties ...string) *sync.Worker {
	return &sync.Worker{
		Store: n.store, City: city, Counties: counties,
		Interval: 50 * time.Millisecond, Backoff: sync.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	}
}

type outbox struct {
	state    string
	attempts int
	lastErr  string
}

func batchRow(t *testing.T, n node, county, id string) outbox {
	t.Helper()
	var o outbox
	if err := n.db.QueryRow(context.Background(), `SELECT state, push_attempts, last_push_error FROM batch WHERE county = $1 AND id = $2`,
		county, id).Scan(&o.state, &o.attempts, &o.lastErr); err != nil {
		t.Fatal(err)
	}
	return o
}

func live(t *testing.T, n node, county, batch, uscc string) bool {
	t.Helper()
	var v bool
	if err := n.db.QueryRow(context.Background(), `SELECT live FROM batch_item WHERE county = $1 AND batch_id = $2 AND uscc = $3`,
		county, batch, uscc).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statuses returns the unit statuses of county by batch and USCC.
func statuses(t *testing.T, n node, county string) map[string]store.UnitStatus {
	t.Helper()
	us, err := n.store.ListUnitStatuses(context.Background(), store.UnitStatusFilter{County: county, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]store.UnitStatus)
	for _, u := range us {
		out[u.BatchID+" "+u.USCC] = u
	}
	return out
}

func codesOf(u store.UnitStatus) []string {
	var out []string
	for _, r := range u.Rejections {
		out = append(out, r.Code)
	}
	return out
}

func TestWorkerDeliversAndMirrorsTheCitysDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA, countyB}})
	n := newNode(t)
	x, y := batchtest.USCC(1), batchtest.USCC(2)
	a := batchtest.Batch(countyA, countyA+"-B000001", x, y)
	a.Items[1].RefundFen++ // the city will reject it
	batchtest.Total(a)
	synctest.Seal(t, n.db, a)
	b := batchtest.Batch(countyB, countyB+"-B000001", x) // the same enterprise in another county
	synctest.Seal(t, n.db, b)

	before := statuses(t, n, countyA)
	if u := before[a.BatchId+" "+x]; u.State != "pending" || u.DecisionSequence != 0 || u.Payee.AccountNo == "" {
		t.Fatalf("before any sync: %+v", u)
	}

	w := newWorker(n, dial(t, city.Addr), countyA, countyB)
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.BatchId, b.BatchId} {
		county := id[:6]
		if o := batchRow(t, n, county, id); o.state != "delivered" || o.attempts != 1 || o.lastErr != "" {
			t.Fatalf("batch %s: %+v", id, o)
		}
	}
	sa, sb := statuses(t, n, countyA), statuses(t, n, countyB)
	ax, ay, bx := sa[a.BatchId+" "+x], sa[a.BatchId+" "+y], sb[b.BatchId+" "+x]
	if ax.State != "conflict" || bx.State != "conflict" || ax.ConflictID == "" || ax.ConflictID != bx.ConflictID {
		t.Fatalf("the cross-county duplicate: A %+v, B %+v", ax, bx)
	}
	if ax.LastDecision != store.DecisionConflict || ax.DecisionSequence != 3 || !strings.Contains(ax.Reason, "跨县重复") {
		t.Fatalf("A's item: %+v", ax)
	}
	if ay.State != "rejected" || !slices.Equal(codesOf(ay), []string{"REFUND_MISMATCH"}) || ay.Rejections[0].Detail == "" {
		t.Fatalf("rejected item: %+v", ay)
	}
	if live(t, n, countyA, a.BatchId, y) || !live(t, n, countyA, a.BatchId, x) {
		t.Fatal("a rejected item must free its unit; a conflicting one stays live")
	}

	// Another round pushes nothing again and applies nothing new.
	decisions := count(t, n.db, `SELECT count(*) FROM city_decision`)
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if o := batchRow(t, n, countyA, a.BatchId); o.attempts != 1 {
		t.Fatalf("a delivered batch was pushed again: %+v", o)
	}
	if got := count(t, city.DB, `SELECT count(*) FROM received_batch`); got != 2 {
		t.Fatalf("the city holds %d batches", got)
	}
	if got := count(t, n.db, `SELECT count(*) FROM city_decision`); got != decisions {
		t.Fatalf("decisions %d, then %d", decisions, got)
	}

	// The city resolves the conflict for A: A's item is received again, B's
	// is rejected as a duplicate and its unit is free.
	tx, err := city.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := cstore.AppendDecisions(ctx, tx, []cstore.Decision{
		{County: countyA, BatchID: a.BatchId, USCC: x, Kind: cstore.KindReceived, Reason: "市级裁定保留", ConflictID: ax.ConflictID, OccurredAt: now},
		{County: countyB, BatchID: b.BatchId, USCC: x, Kind: cstore.KindRejected, Reason: "市级裁定由371502发放", OccurredAt: now,
			Rejections: []cstore.Rejection{{Code: cstore.RejectDuplicate, Detail: "kept by 371502"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ax, bx = statuses(t, n, countyA)[a.BatchId+" "+x], statuses(t, n, countyB)[b.BatchId+" "+x]
	if ax.State != "received" || bx.State != "rejected" || !slices.Equal(codesOf(bx), []string{"DUPLICATE"}) {
		t.Fatalf("after the resolution: A %+v, B %+v", ax, bx)
	}
	if !live(t, n, countyA, a.BatchId, x) || live(t, n, countyB, b.BatchId, x) {
		t.Fatal("the losing county's unit must be free, the kept one live")
	}
}

func TestDecisionsAppliedTwiceChangeNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA}})
	n := newNode(t)
	a := batchtest.Batch(countyA, countyA+"-B000001", batchtest.USCC(1), batchtest.USCC(2), batchtest.USCC(3))
	a.Items[2].Uscc = "91440300708461136U" // check character wrong: rejected
	synctest.Seal(t, n.db, a)
	w := newWorker(n, dial(t, city.Addr), countyA)
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := statuses(t, n, countyA)
	decisions := count(t, n.db, `SELECT count(*) FROM city_decision`)
	audits := count(t, n.db, `SELECT count(*) FROM audit_log`)

	// Forget the cursor (as after a restore): the whole feed comes again.
	if _, err := n.db.Exec(ctx, `UPDATE sync_cursor SET cursor = ''`); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// And apply one page twice by hand.
	page := []store.CityDecision{{County: countyA, Sequence: 1, Kind: store.DecisionRejected, BatchID: a.BatchId, USCC: a.Items[0].Uscc, OccurredAt: time.Now()}}
	for range 2 {
		if applied, err := n.store.ApplyDecisions(ctx, countyA, page, "", time.Now()); err != nil || applied != 0 {
			t.Fatalf("an old decision applied: %d, %v", applied, err)
		}
	}
	after := statuses(t, n, countyA)
	for k, u := range before {
		if v := after[k]; v.State != u.State || v.DecisionSequence != u.DecisionSequence || !v.UpdatedAt.Equal(u.UpdatedAt) {
			t.Fatalf("%s changed: %+v, then %+v", k, u, v)
		}
	}
	if got := count(t, n.db, `SELECT count(*) FROM city_decision`); got != decisions {
		t.Fatalf("decisions %d, then %d", decisions, got)
	}
	if got := count(t, n.db, `SELECT count(*) FROM audit_log`); got != audits {
		t.Fatalf("audit entries %d, then %d", audits, got)
	}
	if !live(t, n, countyA, a.BatchId, a.Items[0].Uscc) {
		t.Fatal("a replayed old decision freed a unit")
	}
}

func TestApplyDecisionsRefusesAGap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newNode(t)
	a, _ := synctest.Seal(t, n.db, batchtest.Batch(countyA, countyA+"-B000001", batchtest.USCC(1), batchtest.USCC(2)))
	d := func(seq int64, uscc string) store.CityDecision {
		return store.CityDecision{County: countyA, Sequence: seq, Kind: store.DecisionReceived, BatchID: a.BatchId, USCC: uscc, OccurredAt: time.Now()}
	}
	if _, err := n.store.ApplyDecisions(ctx, countyA, []store.CityDecision{d(1, a.Items[0].Uscc), d(3, a.Items[1].Uscc)}, "c", time.Now()); err == nil {
		t.Fatal("a page with a gap was applied")
	}
	if _, last, _ := n.store.SyncCursor(ctx, countyA); last != 0 || count(t, n.db, `SELECT count(*) FROM unit_status`) != 0 {
		t.Fatal("part of a refused page was applied")
	}
	if _, err := n.store.ApplyDecisions(ctx, countyB, []store.CityDecision{d(1, a.Items[0].Uscc)}, "c", time.Now()); err == nil {
		t.Fatal("a decision of another county was applied")
	}
}

func TestWorkerRetriesUntilTheCityIsUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet

	n := newNode(t)
	a, _ := synctest.Seal(t, n.db, batchtest.Batch(countyA, countyA+"-B000001", batchtest.USCC(1), batchtest.USCC(2)))
	w := newWorker(n, dial(t, addr), countyA)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	eventually(t, "the worker has tried twice", func() bool {
		o := batchRow(t, n, countyA, a.BatchId)
		return o.state == "sealed" && o.attempts >= 2 && strings.Contains(o.lastErr, "Unavailable")
	})
	city := citytest.Start(t, citytest.Options{Addr: addr, Counties: []string{countyA}})
	eventually(t, "the batch is delivered", func() bool { return batchRow(t, n, countyA, a.BatchId).state == "delivered" })
	eventually(t, "its decisions are mirrored", func() bool {
		return statuses(t, n, countyA)[a.BatchId+" "+a.Items[0].Uscc].State == "received"
	})
	delivered := batchRow(t, n, countyA, a.BatchId)

	// The city goes down; a batch sealed meanwhile waits for it.
	if err := city.Stop(); err != nil {
		t.Fatal(err)
	}
	b, _ := synctest.Seal(t, n.db, batchtest.Batch(countyA, countyA+"-B000002", batchtest.USCC(3)))
	w.Kick()
	eventually(t, "the second batch has failed", func() bool { return batchRow(t, n, countyA, b.BatchId).attempts >= 1 })
	restarted := citytest.Start(t, citytest.Options{Addr: addr, DB: city.DB, Counties: []string{countyA}})
	eventually(t, "the second batch is delivered", func() bool { return batchRow(t, n, countyA, b.BatchId).state == "delivered" })

	if got := count(t, restarted.DB, `SELECT count(*) FROM received_batch`); got != 2 {
		t.Fatalf("the city holds %d batches, want 2", got)
	}
	if o := batchRow(t, n, countyA, a.BatchId); o != delivered {
		t.Fatalf("the delivered batch was pushed again: %+v, then %+v", delivered, o)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// losingCity is a city whose first answer to a push is lost: the city
// stores the batch, then the node's worker dies before it hears back.
type losingCity struct {
	sync.CityClient
	mu   stdsync.Mutex
	lost bool
	kill func()
}

func (c *losingCity) PushBatch(ctx context.Context, req *wengangv1.PushBatchRequest) (*wengangv1.PushBatchResponse, error) {
	res, err := c.CityClient.PushBatch(ctx, req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && !c.lost {
		c.lost = true
		c.kill()
		return nil, status.Error(codes.Unavailable, "connection reset by peer")
	}
	return res, err
}

func TestLostAnswerStillEndsWithTheBatchStoredOnce(t *testing.T) {
	t.Parallel()
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA}})
	n := newNode(t)
	a, _ := synctest.Seal(t, n.db, batchtest.Batch(countyA, countyA+"-B000001", batchtest.USCC(1), batchtest.USCC(2)))
	real := dial(t, city.Addr)

	ctx1, kill := context.WithCancel(context.Background())
	w1 := newWorker(n, &losingCity{CityClient: real, kill: kill}, countyA)
	if err := w1.Run(ctx1); err != nil {
		t.Fatal(err)
	}
	if o := batchRow(t, n, countyA, a.BatchId); o.state != "sealed" || o.attempts != 0 {
		t.Fatalf("the dead worker recorded something: %+v", o)
	}
	first, err := city.Store.GetBatch(context.Background(), countyA, a.BatchId)
	if err != nil {
		t.Fatalf("the city did not store the batch: %v", err)
	}

	// The node comes back; once the dead worker's claim has run out, the
	// new one pushes again and hears the first answer.
	w2 := newWorker(n, real, countyA)
	w2.Now = func() time.Time { return time.Now().Add(5 * time.Minute) }
	if err := w2.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o := batchRow(t, n, countyA, a.BatchId); o.state != "delivered" {
		t.Fatalf("after the restart: %+v", o)
	}
	again, err := city.Store.GetBatch(context.Background(), countyA, a.BatchId)
	if err != nil || !again.Receipt.ReceivedAt.Equal(first.Receipt.ReceivedAt) {
		t.Fatalf("the city's batch changed: %+v, %v", again.Receipt, err)
	}
	if got := count(t, city.DB, `SELECT count(*) FROM received_batch`); got != 1 {
		t.Fatalf("the city holds %d batches", got)
	}
	if got := count(t, city.DB, `SELECT count(*) FROM decision WHERE county = $1`, countyA); got != 2 {
		t.Fatalf("the city decided %d times about 2 items", got)
	}
	for _, u := range statuses(t, n, countyA) {
		if u.State != "received" {
			t.Fatalf("unit %+v", u)
		}
	}
}

func TestWorkerStopsPushingWhatTheCityRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	city := citytest.Start(t, citytest.Options{Counties: []string{countyA}}) // the node's certificate names 371502 only
	n := newNode(t)
	real := dial(t, city.Addr)

	// A batch of a county the certificate does not name.
	other, _ := synctest.Seal(t, n.db, batchtest.Batch(countyB, countyB+"-B000001", batchtest.USCC(1)))
	// A changed batch under an id the city holds with other content.
	held := batchtest.Batch(countyA, countyA+"-B000001", batchtest.USCC(2))
	req, _ := batchtest.Push(held)
	if _, err := real.PushBatch(ctx, req); err != nil {
		t.Fatal(err)
	}
	changed := proto.Clone(held).(*wengangv1.BatchContent)
	changed.Items[0].Name = "改过的名称"
	changed, _ = synctest.Seal(t, n.db, changed)
	// A batch whose recorded hash is not its content's.
	broken, _ := synctest.SealWithHash(t, n.db, batchtest.Batch(countyA, countyA+"-B000002", batchtest.USCC(3)), strings.Repeat("0", 64))

	w := newWorker(n, real, countyA, countyB)
	for range 2 {
		// Pulling 371521's decisions is refused too: the round says so.
		if err := w.Sync(ctx); err == nil || !strings.Contains(err.Error(), "pull decisions of county "+countyB) {
			t.Fatalf("round: %v", err)
		}
	}
	for _, tt := range []struct {
		b    *wengangv1.BatchContent
		code string
	}{{other, "PermissionDenied"}, {changed, "AlreadyExists"}, {broken, "InvalidArgument"}} {
		o := batchRow(t, n, tt.b.County, tt.b.BatchId)
		if o.state != "refused" || o.attempts != 1 || !strings.HasPrefix(o.lastErr, tt.code) {
			t.Errorf("batch %s: %+v, want refused once with %s", tt.b.BatchId, o, tt.code)
		}
		u := statuses(t, n, tt.b.County)[tt.b.BatchId+" "+tt.b.Items[0].Uscc]
		if u.State != "rejected" || !strings.Contains(u.Reason, tt.code) {
			t.Errorf("its unit: %+v", u)
		}
		if live(t, n, tt.b.County, tt.b.BatchId, tt.b.Items[0].Uscc) {
			t.Errorf("the unit of refused batch %s is not free", tt.b.BatchId)
		}
	}
	if got, err := city.Store.GetBatch(ctx, countyA, held.BatchId); err != nil || got.Receipt.Received.Count != 1 {
		t.Fatalf("the city's batch: %+v, %v", got, err)
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := sync.Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for _, tt := range []struct {
		attempt int
		ceiling time.Duration
	}{{1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {3, 40 * time.Millisecond}, {4, 80 * time.Millisecond}, {30, 80 * time.Millisecond}} {
		var top time.Duration
		for range 2000 {
			d := b.Delay(tt.attempt)
			if d < 0 || d > tt.ceiling {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", tt.attempt, d, tt.ceiling)
			}
			top = max(top, d)
		}
		if top < tt.ceiling/2 {
			t.Errorf("attempt %d: delays stay below %v: no jitter up to the ceiling %v", tt.attempt, top, tt.ceiling)
		}
	}
}

func TestDialTargets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		target string
		ok     bool
	}{{"127.0.0.1:8443", true}, {"http://127.0.0.1:8080", true}, {"https://city.example:8443", true},
		{"ftp://x:1", false}, {"", false}, {"http://x:1/path", false}} {
		_, closer, err := sync.Dial(tt.target, nil)
		if (err == nil) != tt.ok {
			t.Errorf("Dial(%q): %v", tt.target, err)
		}
		if closer != nil {
			closer.Close()
		}
	}
}
