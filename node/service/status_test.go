package service

// Tests of the unit-status mirror and account corrections (prefix sy): a
// node's BatchService on a real PostgreSQL database served over h2c on
// loopback, a real city (citytest) and the real sync worker between them.

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/node/store"
	nodesync "wengang/node/sync"
	"wengang/node/sync/synctest"
	"wengang/policy/access"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/batchtest"
	"wengang/server/citytest"
	cstore "wengang/server/store"
)

const (
	syCounty      = "371502"
	syOtherCounty = "371521"
)

// syEnv is a node with its BatchService, a city, and the worker between.
type syEnv struct {
	db     *pgxpool.Pool
	city   *citytest.City
	worker *nodesync.Worker
	client wengangv1connect.BatchServiceClient
	mu     stdsync.Mutex
	kicks  int
}

func syStart(t *testing.T) *syEnv {
	t.Helper()
	e := &syEnv{db: pgtest.NewDB(t, store.Migrations)}
	e.city = citytest.Start(t, citytest.Options{Counties: []string{syCounty, syOtherCounty}})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := &Deps{Store: store.New(e.db), Log: log, Now: time.Now, Counties: []string{syCounty, syOtherCounty}, Params: DefaultParams}
	svc := &BatchService{Deps: deps, Kick: func() { e.mu.Lock(); e.kicks++; e.mu.Unlock() }}
	principal := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			p := access.Principal{Kind: access.KindPerson, Subject: "tok-clerk", Name: "王经办", Role: "county_clerk", Domain: syCounty}
			return next(access.WithPrincipal(ctx, p), req)
		}
	})
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewBatchServiceHandler(svc, connect.WithInterceptors(principal, rpc.ErrorInterceptor(log))))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&rpc.Server{Handler: mux, Log: log}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	e.client = wengangv1connect.NewBatchServiceClient(&http.Client{Transport: tr}, "http://"+ln.Addr().String(), connect.WithGRPC())

	city, closer, err := nodesync.Dial(e.city.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closer.Close() })
	e.worker = &nodesync.Worker{Store: deps.Store, City: city, Counties: deps.Counties}
	return e
}

func (e *syEnv) sync(t *testing.T) {
	t.Helper()
	if err := e.worker.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// decide appends decisions about one item on the city, as its later steps do.
func (e *syEnv) decide(t *testing.T, county, batch, code string, kinds ...cstore.DecisionKind) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.city.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var ds []cstore.Decision
	for _, k := range kinds {
		d := cstore.Decision{County: county, BatchID: batch, USCC: code, Kind: k, Reason: "市级 " + string(k), OccurredAt: time.Now(), AmountFen: 5400000}
		switch k {
		case cstore.KindInPublicity:
			d.RoundID = "R2022-01"
			d.PublicityStart, d.PublicityEnd = 20220509, 20220513
		case cstore.KindReleased:
			d.InstructionID = "I-0001"
		case cstore.KindReturned:
			d.Reason, d.SettledOn = "户名不符 (account name mismatch)", 20220520
		case cstore.KindReissued:
			d.InstructionID = "I-0002"
		case cstore.KindPaid:
			d.BankReference, d.SettledOn = "BR-1", 20220525
		}
		ds = append(ds, d)
	}
	if _, err := cstore.AppendDecisions(ctx, tx, ds); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *syEnv) list(t *testing.T, req *wengangv1.ListUnitStatusesRequest) []*wengangv1.UnitStatus {
	t.Helper()
	res, err := e.client.ListUnitStatuses(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.Statuses
}

func (e *syEnv) status(t *testing.T, batch, code string) *wengangv1.UnitStatus {
	t.Helper()
	ss := e.list(t, &wengangv1.ListUnitStatusesRequest{County: syCounty, BatchId: batch, Uscc: code})
	if len(ss) != 1 {
		t.Fatalf("%d statuses of %s in %s", len(ss), code, batch)
	}
	return ss[0]
}

func syWantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("err = %v, want %v", err, code)
	}
}

func syStates(ss []*wengangv1.UnitStatus) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Uscc[len(s.Uscc)-3:]+" "+strings.TrimPrefix(s.State.String(), "ITEM_STATE_"))
	}
	return out
}

func TestListUnitStatuses(t *testing.T) {
	t.Parallel()
	e := syStart(t)
	ctx := context.Background()
	b1 := batchtest.Batch(syCounty, syCounty+"-B000001", batchtest.USCC(1), batchtest.USCC(2), batchtest.USCC(3))
	b1.Items[1].RefundFen++ // rejected by the city
	batchtest.Total(b1)
	b1, _ = synctest.Seal(t, e.db, b1)
	other, _ := synctest.Seal(t, e.db, batchtest.Batch(syOtherCounty, syOtherCounty+"-B000001", batchtest.USCC(3)))

	// Before any sync: pending, with the sealed refund and payee.
	ss := e.list(t, &wengangv1.ListUnitStatusesRequest{County: syCounty})
	if got := syStates(ss); !slices.Equal(got, []string{"01X PENDING", "021 PENDING", "034 PENDING"}) {
		t.Fatalf("before sync: %v", got)
	}
	if s := ss[0]; s.RefundFen != b1.Items[0].RefundFen || s.Payee.GetAccountNo() == "" || s.DecisionSequence != 0 || s.ScreeningId != b1.ScreeningId {
		t.Fatalf("pending status %v", s)
	}

	e.sync(t)
	b2, _ := synctest.Seal(t, e.db, batchtest.Batch(syCounty, syCounty+"-B000002", batchtest.USCC(2))) // batched again after its rejection
	ss = e.list(t, &wengangv1.ListUnitStatusesRequest{County: syCounty})
	if got := syStates(ss); !slices.Equal(got, []string{"01X RECEIVED", "021 REJECTED", "021 PENDING", "034 CONFLICT"}) {
		t.Fatalf("after sync: %v", got)
	}
	rejected := ss[1]
	if rejected.LastDecision != wengangv1.CityDecisionKind_CITY_DECISION_KIND_REJECTED || len(rejected.Rejections) != 1 ||
		rejected.Rejections[0].Code != wengangv1.RejectionCode_REJECTION_CODE_REFUND_MISMATCH || rejected.Reason == "" {
		t.Fatalf("rejected status %v", rejected)
	}
	if ss[2].BatchId != b2.BatchId || ss[1].BatchId != b1.BatchId {
		t.Fatalf("a unit's statuses are not in batch order: %v", ss)
	}

	t.Run("by batch and state", func(t *testing.T) {
		got := syStates(e.list(t, &wengangv1.ListUnitStatusesRequest{County: syCounty, BatchId: b1.BatchId,
			States: []wengangv1.ItemState{wengangv1.ItemState_ITEM_STATE_RECEIVED, wengangv1.ItemState_ITEM_STATE_CONFLICT}}))
		if !slices.Equal(got, []string{"01X RECEIVED", "034 CONFLICT"}) {
			t.Fatalf("%v", got)
		}
	})
	t.Run("by unit", func(t *testing.T) {
		got := syStates(e.list(t, &wengangv1.ListUnitStatusesRequest{County: syCounty, Uscc: strings.ToLower(batchtest.USCC(2))}))
		if !slices.Equal(got, []string{"021 REJECTED", "021 PENDING"}) {
			t.Fatalf("%v", got)
		}
	})
	t.Run("pages", func(t *testing.T) {
		var got []string
		token := ""
		for pages := 1; ; pages++ {
			res, err := e.client.ListUnitStatuses(ctx, connect.NewRequest(&wengangv1.ListUnitStatusesRequest{County: syCounty, PageSize: 3, PageToken: token}))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, syStates(res.Msg.Statuses)...)
			if token = res.Msg.NextPageToken; token == "" {
				if pages != 2 {
					t.Fatalf("%d pages", pages)
				}
				break
			}
		}
		if len(got) != 4 {
			t.Fatalf("%v", got)
		}
	})
	t.Run("each county its own", func(t *testing.T) {
		ss := e.list(t, &wengangv1.ListUnitStatusesRequest{County: syOtherCounty})
		if len(ss) != 1 || ss[0].BatchId != other.BatchId || ss[0].State != wengangv1.ItemState_ITEM_STATE_CONFLICT {
			t.Fatalf("%v", ss)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, req := range []*wengangv1.ListUnitStatusesRequest{
			{County: syCounty, States: []wengangv1.ItemState{wengangv1.ItemState_ITEM_STATE_UNSPECIFIED}},
			{County: syCounty, PageToken: "!!"},
			{County: syCounty, PageSize: -1},
			{},
		} {
			_, err := e.client.ListUnitStatuses(ctx, connect.NewRequest(req))
			syWantCode(t, err, connect.CodeInvalidArgument)
		}
		_, err := e.client.ListUnitStatuses(ctx, connect.NewRequest(&wengangv1.ListUnitStatusesRequest{County: "371526"}))
		syWantCode(t, err, connect.CodeNotFound)
	})

	// Later decisions carry the round, the instruction and the payment.
	e.decide(t, syCounty, b1.BatchId, batchtest.USCC(1), cstore.KindInPublicity, cstore.KindReleased, cstore.KindPaid)
	e.sync(t)
	s := e.status(t, b1.BatchId, batchtest.USCC(1))
	if s.State != wengangv1.ItemState_ITEM_STATE_PAID || s.RoundId != "R2022-01" || s.PublicityStart.GetDay() != 9 ||
		s.InstructionId != "I-0001" || s.BankReference != "BR-1" || s.SettledOn.GetDay() != 25 {
		t.Fatalf("paid status %v", s)
	}
}

func TestCorrectAccount(t *testing.T) {
	t.Parallel()
	e := syStart(t)
	ctx := context.Background()
	x, y := batchtest.USCC(1), batchtest.USCC(2)
	b := batchtest.Batch(syCounty, syCounty+"-B000001", x, y)
	b.Items[1].SizeClass = wengangv1.SizeClass_SIZE_CLASS_MEDIUM
	b, _ = synctest.Seal(t, e.db, b)
	e.sync(t)
	e.decide(t, syCounty, b.BatchId, x, cstore.KindInPublicity, cstore.KindReleased, cstore.KindReturned)
	e.decide(t, syCounty, b.BatchId, y, cstore.KindInPublicity, cstore.KindReleased, cstore.KindReturned)
	e.sync(t)
	if s := e.status(t, b.BatchId, x); s.State != wengangv1.ItemState_ITEM_STATE_RETURNED || s.SettledOn.GetDay() != 20 {
		t.Fatalf("returned status %v", s)
	}

	acct := &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_SOCIAL_INSURANCE, Bank: "农业银行聊城分行", BankCode: "103466000015",
		AccountNo: "15301001040001234", AccountName: "聊城市测试服务有限公司"}
	correct := func(key, code string, a *wengangv1.Account, reason string) (*wengangv1.UnitStatus, error) {
		res, err := e.client.CorrectAccount(ctx, connect.NewRequest(&wengangv1.CorrectAccountRequest{
			County: syCounty, BatchId: b.BatchId, Uscc: code, Account: a, Reason: reason, IdempotencyKey: key}))
		if err != nil {
			return nil, err
		}
		return res.Msg.Status, nil
	}
	const why = "银行退票：户名不符；已核对开户许可证"

	t.Run("bad requests change nothing", func(t *testing.T) {
		bad := proto.Clone(acct).(*wengangv1.Account)
		bad.AccountNo = "1530 1001"
		for _, c := range []struct {
			name   string
			key    string
			code   string
			a      *wengangv1.Account
			reason string
			want   connect.Code
		}{
			{"no key", "", x, acct, why, connect.CodeInvalidArgument},
			{"no reason", "k0", x, acct, "  ", connect.CodeInvalidArgument},
			{"no account", "k0", x, nil, why, connect.CodeInvalidArgument},
			{"malformed account", "k0", x, bad, why, connect.CodeInvalidArgument},
			{"social insurance of a medium unit", "k0", y, acct, why, connect.CodeInvalidArgument},
			{"unknown unit", "k0", batchtest.USCC(9), acct, why, connect.CodeNotFound},
		} {
			_, err := correct(c.key, c.code, c.a, c.reason)
			if connect.CodeOf(err) != c.want {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if n := syCount(t, e.db, `SELECT count(*) FROM correction_outbox`); n != 0 {
			t.Fatalf("%d corrections recorded", n)
		}
	})

	first, err := correct("k1", x, acct, why)
	if err != nil {
		t.Fatal(err)
	}
	if !first.CorrectionPending || first.Payee.GetAccountNo() != acct.AccountNo || first.State != wengangv1.ItemState_ITEM_STATE_RETURNED {
		t.Fatalf("after the correction %v", first)
	}
	if again, err := correct("k1", x, acct, why); err != nil || again.Payee.GetAccountNo() != acct.AccountNo {
		t.Fatalf("repeat: %v, %v", again, err)
	}
	other := proto.Clone(acct).(*wengangv1.Account)
	other.AccountNo = "999"
	_, err = correct("k1", x, other, why)
	syWantCode(t, err, connect.CodeAlreadyExists)
	_, err = correct("k2", x, other, why)
	syWantCode(t, err, connect.CodeFailedPrecondition) // k1 is on its way
	e.mu.Lock()
	kicks := e.kicks
	e.mu.Unlock()
	if kicks == 0 {
		t.Fatal("the worker was not woken")
	}
	if n := syCount(t, e.db, `SELECT count(*) FROM audit_log WHERE action = 'unit.correct_account'`); n != 1 {
		t.Fatalf("%d audit entries of corrections", n)
	}

	// The worker delivers it; the city holds it, once.
	e.sync(t)
	e.sync(t)
	if s := e.status(t, b.BatchId, x); s.CorrectionPending || s.Payee.GetAccountNo() != acct.AccountNo {
		t.Fatalf("after delivery %v", s)
	}
	if n := syCount(t, e.city.DB, `SELECT count(*) FROM account_correction WHERE county = $1 AND id = 'k1' AND account_no = $2`, syCounty, acct.AccountNo); n != 1 {
		t.Fatalf("the city holds %d corrections", n)
	}
	_, err = correct("k3", x, other, why)
	syWantCode(t, err, connect.CodeFailedPrecondition) // accepted, waiting for the re-issue

	// Re-issued, returned again: a new correction is taken.
	e.decide(t, syCounty, b.BatchId, x, cstore.KindReissued)
	e.sync(t)
	if s := e.status(t, b.BatchId, x); s.State != wengangv1.ItemState_ITEM_STATE_RELEASED || s.InstructionId != "I-0002" || s.SettledOn != nil {
		t.Fatalf("re-issued %v", s)
	}
	_, err = correct("k4", x, other, why)
	syWantCode(t, err, connect.CodeFailedPrecondition) // released, not returned
}

func TestCorrectionRefusedByTheCityFreesTheUnitForAnother(t *testing.T) {
	t.Parallel()
	e := syStart(t)
	x := batchtest.USCC(1)
	b, _ := synctest.Seal(t, e.db, batchtest.Batch(syCounty, syCounty+"-B000001", x))
	e.sync(t)
	e.decide(t, syCounty, b.BatchId, x, cstore.KindInPublicity, cstore.KindReleased, cstore.KindReturned)
	e.sync(t)
	// The city's item is re-issued behind the node's back, so it is no
	// longer returned when the correction arrives.
	e.decide(t, syCounty, b.BatchId, x, cstore.KindReissued)
	acct := &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, Bank: "建设银行", AccountNo: "3705016", AccountName: "测试公司"}
	if _, err := e.client.CorrectAccount(context.Background(), connect.NewRequest(&wengangv1.CorrectAccountRequest{
		County: syCounty, BatchId: b.BatchId, Uscc: x, Account: acct, Reason: "退票", IdempotencyKey: "k1"})); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	var state, lastErr string
	if err := e.db.QueryRow(context.Background(), `SELECT state, last_push_error FROM correction_outbox WHERE id = 'k1'`).Scan(&state, &lastErr); err != nil {
		t.Fatal(err)
	}
	if state != "refused" || !strings.HasPrefix(lastErr, "FailedPrecondition") {
		t.Fatalf("correction %s: %s", state, lastErr)
	}
	if s := e.status(t, b.BatchId, x); s.CorrectionPending || s.Payee.GetAccountNo() == acct.AccountNo {
		t.Fatalf("a refused correction still shows: %v", s)
	}
}

func syCount(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
