package service

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/audit"
	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// The fixture's county, its units and the screening's as-of date.
const (
	ntCounty = "371502"
	ntOther  = "371521" // served by the node, without an agency phone
	ntPhone  = "0635-8241234"

	ntU1 = "91440300708461136T" // eligible, mobile; refund 4500.04 yuan
	ntU2 = "914403001922038216" // eligible, no mobile
	ntU3 = "91350200776049653A" // eligible, micro, social-insurance account
	ntU4 = "91440101MA5CJQ4N59" // hold: no account
	ntU5 = "123502001549897397" // ineligible: not a service industry
	ntU6 = "92371581MA3P2D6H90" // eligible, with a varied contribution history
	ntU7 = "91350203M0001QAY9B" // hold: the USCC's check character is wrong
)

var ntAsOf = civil.MustDate(2022, 4, 20)

// ntEligible are the fixture's eligible units, by USCC.
var ntEligible = []string{ntU3, ntU2, ntU1, ntU6}

// ntDataset is the fixture's source data for county 371502.
func ntDataset() *refund.Dataset {
	d := civil.MustDate
	ds := &refund.Dataset{}
	unit := func(code, name, industry string, size refund.Size, mobile string) {
		ds.Units = append(ds.Units, refund.Unit{USCC: code, Name: name, County: ntCounty, Industry: industry, Size: size,
			Status: refund.StatusActive, HeadcountStart: 20, HeadcountEnd: 19, Mobile: mobile})
	}
	year := func(code string, y int, employer, employee int64) {
		for m := 1; m <= 12; m++ {
			ds.Contributions = append(ds.Contributions, refund.Contribution{USCC: code, Period: civil.Month(y*100 + m),
				EmployerFen: employer, EmployeeFen: employee, PaidOn: d(y, m, 15)})
		}
	}
	account := func(code string, kind refund.AccountKind, no string) {
		ds.Accounts = append(ds.Accounts, refund.Account{USCC: code, Kind: kind, Bank: "中国工商银行聊城分行", BankCode: "102466000017",
			AccountNo: no, AccountName: "户名" + no})
	}
	unit(ntU1, "聊城市东昌府区鲁西餐饮有限公司", "6210", refund.SizeSmall, "13800000001")
	year(ntU1, 2021, 33333, 8334) // base 500004, refund 450004
	account(ntU1, refund.AccountCorporate, "1611001019200000001")

	unit(ntU2, "东昌府区无手机商店", "5211", refund.SizeSmall, " ")
	year(ntU2, 2021, 40000, 10000)
	account(ntU2, refund.AccountCorporate, "1611001019200000002")

	unit(ntU3, "东昌府区微型理发店", "8010", refund.SizeMicro, "13800000003")
	year(ntU3, 2021, 20000, 5000)
	account(ntU3, refund.AccountSocialInsurance, "1611001019200000003")

	unit(ntU4, "东昌府区无账户咨询公司", "7241", refund.SizeSmall, "13800000004")
	year(ntU4, 2021, 40000, 10000)

	unit(ntU5, "东昌府区机械制造厂", "1311", refund.SizeSmall, "13800000005")
	year(ntU5, 2021, 40000, 10000)
	account(ntU5, refund.AccountCorporate, "1611001019200000005")

	unit(ntU6, "聊城市运河物流有限公司", "5430", refund.SizeMedium, "13800000006")
	year(ntU6, 2020, 30000, 7500)
	year(ntU6, 2021, 40000, 10000)
	ds.Contributions = append(ds.Contributions,
		refund.Contribution{USCC: ntU6, Period: 202005, EmployerFen: 3000, EmployeeFen: 750, PaidOn: d(2022, 5, 10)},            // paid after D: unpaid at D
		refund.Contribution{USCC: ntU6, Period: 202007, EmployerFen: 3000, EmployeeFen: 750, LateFeeFen: 120},                   // never paid
		refund.Contribution{USCC: ntU6, Period: 202103, EmployerFen: 1000, EmployeeFen: 500, PaidOn: d(2022, 3, 1)},             // late, but by D
		refund.Contribution{USCC: ntU6, Period: 202102, EmployerFen: 0, EmployeeFen: 0, LateFeeFen: 350, PaidOn: d(2022, 2, 1)}, // a late fee alone
		refund.Contribution{USCC: ntU6, Period: 202201, EmployerFen: 40000, EmployeeFen: 10000, PaidOn: d(2022, 1, 15)},         // after months_through
	)
	account(ntU6, refund.AccountSocialInsurance, "1611001019200000099") // not for a medium unit
	account(ntU6, refund.AccountCorporate, "1611001019200000006")

	unit(ntU7, "东昌府区校验位错误餐馆", "6210", refund.SizeSmall, "13800000007")
	year(ntU7, 2021, 40000, 10000)
	account(ntU7, refund.AccountCorporate, "1611001019200000007")
	return ds
}

// ntEnv is one test's node: a fresh database with the fixture screened,
// the notification and batch services served over real HTTP/2 (h2c) on a
// loopback port, and generated clients.
type ntEnv struct {
	pool        *pgxpool.Pool
	store       *store.Store
	ds          *refund.Dataset
	datasetID   int64
	screening   int64 // the first screening of the fixture
	notify      wengangv1connect.NotificationServiceClient
	batch       wengangv1connect.BatchServiceClient
	batchGRPC   wengangv1connect.BatchServiceClient // the same, over the gRPC protocol
	now         time.Time
	notifyKicks atomic.Int64
	batchKicks  atomic.Int64
}

// ntPrincipalHeader carries the test's caller: "subject role".
const ntPrincipalHeader = "X-Test-Principal"

// ntPrincipalInterceptor stands in for authentication: it puts the
// principal the request names into its context (a clerk by default).
func ntPrincipalInterceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			subject, role := "clerk-1", "county_clerk"
			if h := req.Header().Get(ntPrincipalHeader); h != "" {
				subject, role, _ = strings.Cut(h, " ")
			}
			p := access.Principal{Kind: access.KindPerson, Subject: subject, Name: subject, Role: role, Domain: ntCounty}
			return next(access.WithPrincipal(ctx, p), req)
		}
	}
}

// ntBatchHandler serves this file's BatchService methods; the others
// (ListUnitStatuses, CorrectAccount) are not under test here.
type ntBatchHandler struct {
	wengangv1connect.UnimplementedBatchServiceHandler
	svc *BatchService
}

func (h ntBatchHandler) SealBatch(ctx context.Context, r *connect.Request[wengangv1.SealBatchRequest]) (*connect.Response[wengangv1.SealBatchResponse], error) {
	return h.svc.SealBatch(ctx, r)
}

func (h ntBatchHandler) GetBatch(ctx context.Context, r *connect.Request[wengangv1.GetBatchRequest]) (*connect.Response[wengangv1.GetBatchResponse], error) {
	return h.svc.GetBatch(ctx, r)
}

func (h ntBatchHandler) ListBatches(ctx context.Context, r *connect.Request[wengangv1.ListBatchesRequest]) (*connect.Response[wengangv1.ListBatchesResponse], error) {
	return h.svc.ListBatches(ctx, r)
}

var _ wengangv1connect.NotificationServiceHandler = (*NotificationService)(nil)

func ntNewEnv(t *testing.T) *ntEnv {
	t.Helper()
	ctx := context.Background()
	e := &ntEnv{now: time.Date(2022, 4, 25, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))}
	e.pool = pgtest.NewDB(t, store.Migrations)
	e.store = store.New(e.pool)
	e.ds = ntDataset()
	d, err := e.store.CreateDataset(ctx, ntCounty, "2022年4月")
	if err != nil {
		t.Fatal(err)
	}
	e.datasetID = d.ID
	meta := func(name string) store.FileMeta {
		return store.FileMeta{Name: name, Format: "csv", Encoding: "utf-8", SHA256: sha256.Sum256([]byte(name))}
	}
	for _, err := range []error{
		e.store.PutUnits(ctx, ntCounty, d.ID, meta("units.csv"), e.ds.Units),
		e.store.PutContributions(ctx, ntCounty, d.ID, meta("contributions.csv"), e.ds.Contributions),
		e.store.PutAccounts(ctx, ntCounty, d.ID, meta("accounts.csv"), e.ds.Accounts),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.SealDataset(ctx, ntCounty, d.ID, "dataset-hash-2022-04"); err != nil {
		t.Fatal(err)
	}
	e.screening = e.ntScreen(t)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := &Deps{Store: e.store, Log: log, Now: func() time.Time { return e.now }, Counties: []string{ntCounty, ntOther}, Params: DefaultParams}
	ns := &NotificationService{Deps: deps, Phones: map[string]string{ntCounty: ntPhone}, Kick: func() { e.notifyKicks.Add(1) }}
	bs := &BatchService{Deps: deps, Kick: func() { e.batchKicks.Add(1) }}
	opts := connect.WithInterceptors(ntPrincipalInterceptor(), rpc.ErrorInterceptor(log))
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewNotificationServiceHandler(ns, opts))
	mux.Handle(wengangv1connect.NewBatchServiceHandler(ntBatchHandler{svc: bs}, opts))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- (&rpc.Server{Handler: mux, Log: log}).Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	t.Cleanup(client.CloseIdleConnections)
	url := "http://" + ln.Addr().String()
	e.notify = wengangv1connect.NewNotificationServiceClient(client, url)
	e.batch = wengangv1connect.NewBatchServiceClient(client, url)
	e.batchGRPC = wengangv1connect.NewBatchServiceClient(client, url, connect.WithGRPC())
	return e
}

// ntScreen stores a screening of the fixture's dataset, its results as the
// rules give them (refund.Screen), and returns its id.
func (e *ntEnv) ntScreen(t *testing.T) int64 {
	t.Helper()
	ctx := context.Background()
	p := refund.DefaultParams()
	results, err := refund.Screen(e.ds, p, ntAsOf)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := e.pool.QueryRow(ctx, `INSERT INTO screening (county, dataset_id, as_of, policy_id, policy, results_sha256, run_by, run_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, 'clerk-1', $7) RETURNING id`,
		ntCounty, e.datasetID, ntAsOf.Time(), p.ID, string(policy), make([]byte, 32), e.now).Scan(&id); err != nil {
		t.Fatal(err)
	}
	units := map[string]refund.Unit{}
	for _, u := range e.ds.Units {
		units[u.USCC] = u
	}
	for _, r := range results {
		u := units[r.USCC]
		var size, kind any
		if u.Size != refund.SizeUnknown {
			size = u.Size.String()
		}
		if r.Payee.Kind != 0 {
			kind = r.Payee.Kind.String()
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO screening_result (county, screening_id, uscc, name, unit_county, industry, status,
				headcount_start, headcount_end, mobile, months_paid, base_fen, screened_decision, screened_reasons, screened_refund_fen,
				screened_size, screened_payee_kind, screened_payee_account_no, decision, reasons, refund_fen, size, payee_kind,
				payee_bank, payee_bank_code, payee_account_no, payee_account_name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $13, $14, $15, $16, $17, $19, $20, $18, $21)`,
			ntCounty, id, r.USCC, r.Name, r.County, u.Industry, u.Status.String(), r.HeadcountStart, r.HeadcountEnd, u.Mobile,
			r.MonthsPaid, r.BaseFen, r.Decision.String(), r.Reasons.String(), r.RefundFen, size, kind, r.Payee.AccountNo,
			r.Payee.Bank, r.Payee.BankCode, r.Payee.AccountName); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// ntReq wraps msg in a request made by who ("subject role"; "" for the
// default clerk).
func ntReq[T any](msg *T, who string) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if who != "" {
		r.Header().Set(ntPrincipalHeader, who)
	}
	return r
}

const ntReviewer = "reviewer-1 county_reviewer"

func ntID(id int64) string { return strconv.FormatInt(id, 10) }

// ntCode fails t unless err is a Connect error with code.
func ntCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("err = %v (%v), want %v", err, connect.CodeOf(err), code)
	}
}

func ntNotify(t *testing.T, e *ntEnv, usccs ...string) *wengangv1.NotifyUnitsResponse {
	t.Helper()
	res, err := e.notify.NotifyUnits(context.Background(), ntReq(&wengangv1.NotifyUnitsRequest{
		County: ntCounty, ScreeningId: ntID(e.screening), Usccs: usccs}, ""))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg
}

func ntList(t *testing.T, e *ntEnv, req *wengangv1.ListNotificationsRequest) []*wengangv1.Notification {
	t.Helper()
	var out []*wengangv1.Notification
	for {
		res, err := e.notify.ListNotifications(context.Background(), ntReq(req, ""))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Msg.GetNotifications()...)
		if res.Msg.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = res.Msg.GetNextPageToken()
	}
}

func TestNotifyUnitsQueuesEachUnitOnce(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	want := &wengangv1.NotifyUnitsResponse{QueuedCount: 3, AlreadyCount: 0, NoMobileCount: 1}
	if got := ntNotify(t, e); got.String() != want.String() {
		t.Fatalf("first NotifyUnits = %v, want %v", got, want)
	}
	if n := e.notifyKicks.Load(); n != 1 {
		t.Errorf("sender kicked %d times, want 1", n)
	}
	want = &wengangv1.NotifyUnitsResponse{QueuedCount: 0, AlreadyCount: 3, NoMobileCount: 1}
	if got := ntNotify(t, e); got.String() != want.String() {
		t.Fatalf("repeated NotifyUnits = %v, want %v", got, want)
	}
	if n := e.notifyKicks.Load(); n != 1 {
		t.Errorf("sender kicked %d times after a repeat that queued nothing, want 1", n)
	}

	ns := ntList(t, e, &wengangv1.ListNotificationsRequest{County: ntCounty, ScreeningId: ntID(e.screening)})
	var got []string
	for _, n := range ns {
		got = append(got, n.GetUscc()+" "+n.GetState().String())
	}
	wantRows := []string{ // by USCC
		ntU3 + " NOTIFICATION_STATE_QUEUED",
		ntU2 + " NOTIFICATION_STATE_NO_MOBILE",
		ntU1 + " NOTIFICATION_STATE_QUEUED",
		ntU6 + " NOTIFICATION_STATE_QUEUED",
	}
	if strings.Join(got, "\n") != strings.Join(wantRows, "\n") {
		t.Fatalf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRows, "\n"))
	}
	// The text, to the fen, with the county's phone.
	const wantText = "【聊城市人社局】您单位（聊城市东昌府区鲁西餐饮有限公司）符合2022年失业保险稳岗返还政策，拟返还金额4500.04元，" +
		"将于公示期满后直接拨付至单位账户，无需申请。如有异议请于公示期内致电0635-8241234。"
	if n := ns[2]; n.GetText() != wantText || n.GetMobile() != "13800000001" || n.GetName() != "聊城市东昌府区鲁西餐饮有限公司" ||
		n.GetNotificationId() == "" || !n.GetQueuedAt().AsTime().Equal(e.now) || n.GetAttempts() != 0 {
		t.Errorf("notification of %s = %v", ntU1, n)
	}
	if n := ns[1]; n.GetMobile() != "" || n.GetText() == "" {
		t.Errorf("notification without mobile = %v", n)
	}
	var rows int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM notification`).Scan(&rows); err != nil || rows != 4 {
		t.Errorf("%d notification rows (%v), want 4", rows, err)
	}
}

func TestNotifyUnitsConcurrentCallsQueueOnce(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	var (
		wg     sync.WaitGroup
		queued atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			res, err := e.notify.NotifyUnits(context.Background(), ntReq(&wengangv1.NotifyUnitsRequest{County: ntCounty, ScreeningId: ntID(e.screening)}, ""))
			if err != nil {
				t.Error(err)
				return
			}
			queued.Add(res.Msg.GetQueuedCount())
			if sum := res.Msg.GetQueuedCount() + res.Msg.GetAlreadyCount() + res.Msg.GetNoMobileCount(); sum != 4 {
				t.Errorf("answer %v does not add up to the 4 eligible units", res.Msg)
			}
		})
	}
	wg.Wait()
	if queued.Load() != 3 {
		t.Errorf("queued %d in all, want 3", queued.Load())
	}
}

func TestNotifyUnitsErrors(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	tests := []struct {
		name string
		req  *wengangv1.NotifyUnitsRequest
		code connect.Code
		msg  string
	}{
		{"held unit listed", &wengangv1.NotifyUnitsRequest{County: ntCounty, ScreeningId: ntID(e.screening), Usccs: []string{ntU1, ntU4}}, connect.CodeFailedPrecondition, ntU4},
		{"ineligible unit listed", &wengangv1.NotifyUnitsRequest{County: ntCounty, ScreeningId: ntID(e.screening), Usccs: []string{ntU5}}, connect.CodeFailedPrecondition, ntU5},
		{"unknown unit listed", &wengangv1.NotifyUnitsRequest{County: ntCounty, ScreeningId: ntID(e.screening), Usccs: []string{"91440300MA5FXXXX0X"}}, connect.CodeNotFound, "91440300MA5FXXXX0X"},
		{"unknown screening", &wengangv1.NotifyUnitsRequest{County: ntCounty, ScreeningId: "999"}, connect.CodeNotFound, "999"},
		{"bad screening id", &wengangv1.NotifyUnitsRequest{County: ntCounty, ScreeningId: "abc"}, connect.CodeInvalidArgument, "screening_id"},
		{"county without a phone", &wengangv1.NotifyUnitsRequest{County: ntOther, ScreeningId: ntID(e.screening)}, connect.CodeFailedPrecondition, ntOther},
		{"county not served", &wengangv1.NotifyUnitsRequest{County: "371525", ScreeningId: ntID(e.screening)}, connect.CodeNotFound, "371525"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.notify.NotifyUnits(context.Background(), ntReq(tt.req, ""))
			ntCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to name %s", err, tt.msg)
			}
		})
	}
	var rows int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM notification`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d notification rows after refused requests (%v), want 0", rows, err)
	}
	// A listed eligible unit alone, given in lower case and full width.
	if got := ntNotify(t, e, "９１４４０３００７０８４６１１３６ｔ"); got.GetQueuedCount() != 1 || got.GetAlreadyCount() != 0 {
		t.Errorf("NotifyUnits(U1) = %v", got)
	}
}

func TestListNotificationsFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	ntNotify(t, e)
	var pages int
	req := &wengangv1.ListNotificationsRequest{County: ntCounty, PageSize: 1}
	for {
		res, err := e.notify.ListNotifications(context.Background(), ntReq(req, ""))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(res.Msg.GetNotifications()) != 1 {
			t.Fatalf("page %d has %d notifications", pages, len(res.Msg.GetNotifications()))
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if pages != 4 {
		t.Errorf("%d pages of 1, want 4", pages)
	}
	if ns := ntList(t, e, &wengangv1.ListNotificationsRequest{County: ntCounty,
		States: []wengangv1.NotificationState{wengangv1.NotificationState_NOTIFICATION_STATE_NO_MOBILE}}); len(ns) != 1 || ns[0].GetUscc() != ntU2 {
		t.Errorf("no-mobile filter: %v", ns)
	}
	if ns := ntList(t, e, &wengangv1.ListNotificationsRequest{County: ntCounty, Uscc: ntU6}); len(ns) != 1 || ns[0].GetUscc() != ntU6 {
		t.Errorf("uscc filter: %v", ns)
	}
	if ns := ntList(t, e, &wengangv1.ListNotificationsRequest{County: ntOther}); len(ns) != 0 {
		t.Errorf("another county sees %d notifications", len(ns))
	}
	_, err := e.notify.ListNotifications(context.Background(), ntReq(&wengangv1.ListNotificationsRequest{County: ntCounty, PageToken: "@@"}, ""))
	ntCode(t, err, connect.CodeInvalidArgument)
}

func ntRecord(e *ntEnv, req *wengangv1.RecordResponseRequest) (*wengangv1.EnterpriseResponse, error) {
	res, err := e.notify.RecordResponse(context.Background(), ntReq(req, ""))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetResponse(), nil
}

func TestRecordResponse(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	ntNotify(t, e)
	sid := ntID(e.screening)
	received := timestamppb.New(e.now.Add(-time.Hour))
	confirm := &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU1,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_CONFIRMED, Channel: wengangv1.ResponseChannel_RESPONSE_CHANNEL_PHONE,
		ReceivedAt: received, IdempotencyKey: "call-0425-1"}
	first, err := ntRecord(e, confirm)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetResponseId() == "" || first.GetRecordedBy() != "clerk-1" || !first.GetReceivedAt().AsTime().Equal(received.AsTime()) ||
		first.GetObjectionState() != wengangv1.ObjectionState_OBJECTION_STATE_UNSPECIFIED || first.GetChannel() != confirm.GetChannel() {
		t.Errorf("confirmation = %v", first)
	}
	again, err := ntRecord(e, confirm)
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != first.String() {
		t.Errorf("repeat = %v, want the first answer %v", again, first)
	}

	objection := &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU6,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "金额与我单位核算不符，少算了3月份补缴",
		Channel: wengangv1.ResponseChannel_RESPONSE_CHANNEL_COUNTER, IdempotencyKey: "counter-0425-7"}
	obj, err := ntRecord(e, objection)
	if err != nil {
		t.Fatal(err)
	}
	if obj.GetObjectionState() != wengangv1.ObjectionState_OBJECTION_STATE_OPEN || !obj.GetReceivedAt().AsTime().Equal(e.now) {
		t.Errorf("objection = %v", obj)
	}

	tests := []struct {
		name string
		edit func(r *wengangv1.RecordResponseRequest)
		code connect.Code
	}{
		{"key used for another request", func(r *wengangv1.RecordResponseRequest) { r.Text = "另一件事" }, connect.CodeAlreadyExists},
		{"no key", func(r *wengangv1.RecordResponseRequest) { r.IdempotencyKey = "" }, connect.CodeInvalidArgument},
		{"no kind", func(r *wengangv1.RecordResponseRequest) { r.Kind = 0; r.IdempotencyKey = "k-nokind" }, connect.CodeInvalidArgument},
		{"objection without text", func(r *wengangv1.RecordResponseRequest) {
			r.Kind, r.Text, r.IdempotencyKey = wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, "  ", "k-notext"
		}, connect.CodeInvalidArgument},
		{"received in the future", func(r *wengangv1.RecordResponseRequest) {
			r.ReceivedAt, r.IdempotencyKey = timestamppb.New(e.now.Add(time.Hour)), "k-future"
		}, connect.CodeInvalidArgument},
		{"unknown unit", func(r *wengangv1.RecordResponseRequest) { r.Uscc, r.IdempotencyKey = "91440300MA5FXXXX0X", "k-unit" }, connect.CodeNotFound},
		{"unknown screening", func(r *wengangv1.RecordResponseRequest) { r.ScreeningId, r.IdempotencyKey = "999", "k-scr" }, connect.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &wengangv1.RecordResponseRequest{}
			*req = wengangv1.RecordResponseRequest{County: confirm.County, ScreeningId: confirm.ScreeningId, Uscc: confirm.Uscc,
				Kind: confirm.Kind, Text: confirm.Text, Channel: confirm.Channel, ReceivedAt: confirm.ReceivedAt, IdempotencyKey: confirm.IdempotencyKey}
			tt.edit(req)
			_, err := ntRecord(e, req)
			ntCode(t, err, tt.code)
		})
	}

	// The notification shows the latest response; ListResponses finds the
	// open objection.
	ns := ntList(t, e, &wengangv1.ListNotificationsRequest{County: ntCounty, Uscc: ntU6})
	if len(ns) != 1 || ns[0].GetResponse().GetResponseId() != obj.GetResponseId() {
		t.Errorf("notification of %s: %v", ntU6, ns)
	}
	res, err := e.notify.ListResponses(context.Background(), ntReq(&wengangv1.ListResponsesRequest{County: ntCounty,
		ObjectionState: wengangv1.ObjectionState_OBJECTION_STATE_OPEN}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if rs := res.Msg.GetResponses(); len(rs) != 1 || rs[0].GetResponseId() != obj.GetResponseId() {
		t.Errorf("open objections: %v", rs)
	}
	res, err = e.notify.ListResponses(context.Background(), ntReq(&wengangv1.ListResponsesRequest{County: ntCounty, PageSize: 1}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if rs := res.Msg.GetResponses(); len(rs) != 1 || rs[0].GetResponseId() != obj.GetResponseId() || res.Msg.GetNextPageToken() == "" {
		t.Errorf("newest first, one a page: %v", res.Msg)
	}
	res, err = e.notify.ListResponses(context.Background(), ntReq(&wengangv1.ListResponsesRequest{County: ntCounty, PageSize: 1, PageToken: res.Msg.GetNextPageToken()}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if rs := res.Msg.GetResponses(); len(rs) != 1 || rs[0].GetResponseId() != first.GetResponseId() || res.Msg.GetNextPageToken() != "" {
		t.Errorf("second page: %v", res.Msg)
	}
}

func ntResolve(e *ntEnv, id string, how wengangv1.ObjectionState, reason string) (*wengangv1.EnterpriseResponse, error) {
	res, err := e.notify.ResolveObjection(context.Background(), ntReq(&wengangv1.NotificationServiceResolveObjectionRequest{
		County: ntCounty, ResponseId: id, Resolution: how, Reason: reason}, ntReviewer))
	if err != nil {
		return nil, err
	}
	return res.Msg.GetResponse(), nil
}

func TestResolveObjection(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	sid := ntID(e.screening)
	obj, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU3,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "我单位已注销，不需要返还", IdempotencyKey: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU1,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_CONFIRMED, IdempotencyKey: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	upheld, err := ntResolve(e, obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "单位确认放弃，数据待更正")
	if err != nil {
		t.Fatal(err)
	}
	if upheld.GetObjectionState() != wengangv1.ObjectionState_OBJECTION_STATE_UPHELD || upheld.GetResolvedBy() != "reviewer-1" ||
		upheld.GetResolutionReason() != "单位确认放弃，数据待更正" || !upheld.GetResolvedAt().AsTime().Equal(e.now) {
		t.Errorf("upheld = %v", upheld)
	}
	e.now = e.now.Add(time.Hour)
	again, err := ntResolve(e, obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "再次")
	if err != nil {
		t.Fatal(err)
	}
	if again.String() != upheld.String() {
		t.Errorf("resolving again the same way = %v, want it as first resolved %v", again, upheld)
	}
	tests := []struct {
		name   string
		id     string
		how    wengangv1.ObjectionState
		reason string
		code   connect.Code
	}{
		{"the other way", obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "改判", connect.CodeFailedPrecondition},
		{"a confirmation", conf.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "x", connect.CodeFailedPrecondition},
		{"no reason", obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, " ", connect.CodeInvalidArgument},
		{"open is no resolution", obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_OPEN, "x", connect.CodeInvalidArgument},
		{"unknown", ntCounty + "-R999", wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "x", connect.CodeNotFound},
		{"malformed id", "R1", wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "x", connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ntResolve(e, tt.id, tt.how, tt.reason)
			ntCode(t, err, tt.code)
		})
	}
	// Another county's response id is not this county's.
	_, err = e.notify.ResolveObjection(context.Background(), ntReq(&wengangv1.NotificationServiceResolveObjectionRequest{
		County: ntOther, ResponseId: obj.GetResponseId(), Resolution: wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, Reason: "x"}, ntReviewer))
	ntCode(t, err, connect.CodeInvalidArgument)
}

// ntAuditActions returns the actions of the county's audit log, after
// checking its hash chain.
func ntAuditActions(t *testing.T, e *ntEnv) []string {
	t.Helper()
	v, err := audit.Verify(context.Background(), e.pool, ntCounty, 0, 0)
	if err != nil || !v.OK {
		t.Fatalf("audit chain: %+v, %v", v, err)
	}
	es, err := audit.List(context.Background(), e.pool, audit.Filter{Domain: ntCounty, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range es {
		out = append(out, en.Action+" "+en.ObjectID+" by "+en.Actor.Subject)
	}
	return out
}

func TestNotificationAudit(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	ntNotify(t, e)
	ntNotify(t, e) // queues nothing: no entry
	obj, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: ntID(e.screening), Uscc: ntU1,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "账户已变更", IdempotencyKey: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: ntID(e.screening), Uscc: ntU1,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "账户已变更", IdempotencyKey: "o1"}); err != nil {
		t.Fatal(err) // a repeat: no entry
	}
	if _, err := ntResolve(e, obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "账户核实无误"); err != nil {
		t.Fatal(err)
	}
	sid := ntID(e.screening)
	want := []string{
		"notification.queue " + sid + " by clerk-1",
		"objection.open " + sid + "/" + ntU1 + " by clerk-1",
		"objection.dismiss " + sid + "/" + ntU1 + " by reviewer-1",
	}
	if got := ntAuditActions(t, e); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
