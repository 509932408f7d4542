package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/iso20022"
	"wengang/internal/pgtest"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/access"
	"wengang/policy/civil"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/store"
)

var (
	fiNow   = time.Date(2022, 6, 1, 2, 0, 0, 0, time.UTC)
	fiToday = civil.MustDate(2022, 6, 1)
	// fiFinance is the finance system every test request comes from.
	fiFinance = access.Principal{Kind: access.KindFinance, Subject: "token:9", Name: "财政", Role: access.RoleFinance, Domain: access.DomainCity}
)

// fiInterceptor makes every caller the finance system, as the access
// interceptor does for its bearer token.
type fiInterceptor struct{}

func (fiInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(access.WithPrincipal(ctx, fiFinance), req)
	}
}

func (fiInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (fiInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(access.WithPrincipal(ctx, fiFinance), conn)
	}
}

// fiCity is a city's finance service on a real loopback HTTP/2 (h2c)
// server, with its database.
type fiCity struct {
	pool   *pgxpool.Pool
	store  *store.Store
	deps   *Deps
	client wengangv1connect.FinanceServiceClient
}

func fiStart(tb testing.TB) *fiCity {
	tb.Helper()
	pool := pgtest.NewDB(tb, store.Migrations)
	deps := &Deps{Store: store.New(pool), Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return fiNow }, Today: func() civil.Date { return fiToday }}
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewFinanceServiceHandler(&FinanceService{deps}, connect.WithInterceptors(rpc.ErrorInterceptor(deps.Log), fiInterceptor{})))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: protos}}
	return &fiCity{pool: pool, store: deps.Store, deps: deps, client: wengangv1connect.NewFinanceServiceClient(hc, srv.URL)}
}

// fiRelease stores what a release of round leaves for county: a received
// batch of n released items, a funding request and n instructions of
// amounts 100000+i fen (i = 0..n-1), items and instructions numbered from
// first. It returns the funding request's id.
func (c *fiCity) fiRelease(tb testing.TB, round, county string, first, n int) string {
	tb.Helper()
	ctx := context.Background()
	batch := fmt.Sprintf("%s-%06d", county, first)
	funding := fmt.Sprintf("F%s-%s-%d", strings.TrimPrefix(round, "R"), county, first)
	stmts := []string{
		`INSERT INTO publicity_round (id, title, policy_year, start_date, end_date, workdays, state, contact_office, contact_phone,
			built_by, built_at, approved_by, approved_at, released_by, released_at)
		 VALUES ($1, '2022年第一批', 2022, '2022-05-10', '2022-05-16', 5, 'released', '就业科', '0635-1234567', 'a', $2, 'b', $2, 'b', $2)
		 ON CONFLICT DO NOTHING`,
		`INSERT INTO received_batch (county, id, content_hash, content, screening_id, dataset_hash, as_of, policy_id, policy_year,
			item_count, total_fen, sealed_by, pushed_by, received_at, received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen)
		 SELECT $3, $4, repeat('a', 64), '\x00', 's', 'd', '2022-04-28', 'liaocheng-2022', 2022, $6, 0, 'c', 'node', $2, $6, 0, 0, 0, 0, 0
		 WHERE $1::text <> '' AND $5::int >= 0 AND $7::text <> ''`,
		`INSERT INTO received_item (county, batch_id, uscc, policy_year, name, size, months_paid, base_fen, refund_fen, recomputed_base_fen,
			recomputed_refund_fen, payee_kind, payee_bank, payee_bank_code, payee_account_no, payee_account_name, uscc_verified, item, state, round_id,
			instruction_id, updated_at)
		 SELECT $3, $4, 'U' || $3 || lpad(i::text, 8, '0'), 2022, '测试企业' || i, 'small', 13, 0, 100000 + i, 0, 100000 + i, 'corporate',
			'中国农业银行', '103466000123', '62220200' || lpad(i::text, 8, '0'), '测试企业' || i, true, '\x00', 'released', $1,
			'P2022-' || $3 || '-' || lpad(i::text, 8, '0'), $2
		 FROM generate_series($5::int, $5::int + $6::int - 1) AS i`,
		`INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at)
		 SELECT $3, $7, $1, $6, coalesce(sum(100000 + i), 0), $2 FROM generate_series($5::int, $5::int + $6::int - 1) AS i WHERE $4::text <> ''`,
		`INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year, payee_name, account_no, bank, bank_code,
			account_kind, amount_fen, funding_request_id, released_at)
		 SELECT $3, 'P2022-' || $3 || '-' || lpad(i::text, 8, '0'), 'WG' || $3 || lpad(i::text, 8, '0'), $1, $4, 'U' || $3 || lpad(i::text, 8, '0'), 2022,
			'测试企业' || i, '62220200' || lpad(i::text, 8, '0'), '中国农业银行', '103466000123', 'corporate', 100000 + i, $7, $2
		 FROM generate_series($5::int, $5::int + $6::int - 1) AS i ORDER BY i`,
	}
	args := []any{round, fiNow, county, batch, first, n, funding}
	for k, q := range stmts {
		used := []int{2, 7, 6, 7, 7}[k] // the parameters each statement uses: $1 to $used
		if _, err := c.pool.Exec(ctx, q, args[:used]...); err != nil {
			tb.Fatalf("%v\n%s", err, q)
		}
	}
	return funding
}

// fiID is the id of instruction i of county.
func fiID(county string, i int) string { return fmt.Sprintf("P2022-%s-%08d", county, i) }

func (c *fiCity) fiConfirm(tb testing.TB, funding string) {
	tb.Helper()
	if _, err := c.client.ConfirmFunding(context.Background(), connect.NewRequest(&wengangv1.ConfirmFundingRequest{FundingRequestId: funding, Reference: "BK-" + funding})); err != nil {
		tb.Fatal(err)
	}
}

// fiPull pulls every message after cursor.
func (c *fiCity) fiPull(tb testing.TB, req *wengangv1.PullInstructionsRequest) []*wengangv1.PullInstructionsResponse {
	tb.Helper()
	st, err := c.client.PullInstructions(context.Background(), connect.NewRequest(req))
	if err != nil {
		tb.Fatal(err)
	}
	var out []*wengangv1.PullInstructionsResponse
	for st.Receive() {
		out = append(out, st.Msg())
	}
	if err := st.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func fiIDs(ms []*wengangv1.PullInstructionsResponse) []string {
	var ids []string
	for _, m := range ms {
		for _, i := range m.GetInstructions() {
			ids = append(ids, i.GetInstructionId())
		}
	}
	return ids
}

func fiCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("err = %v; want %v", err, want)
	}
}

func fiDecisions(t *testing.T, c *fiCity, county string) []store.Decision {
	t.Helper()
	ds, _, err := c.store.PullDecisions(context.Background(), []string{county}, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestFinancePullOnlyConfirmedAndResume(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 5)
	f2 := c.fiRelease(t, "R2022-0001", "371521", 0, 3)
	if got := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{})); len(got) != 0 {
		t.Fatalf("before any confirmation: pulled %v", got)
	}
	c.fiConfirm(t, f1)
	ms := c.fiPull(t, &wengangv1.PullInstructionsRequest{PageSize: 2})
	if got := fiIDs(ms); strings.Join(got, ",") != strings.Join([]string{fiID("371502", 0), fiID("371502", 1), fiID("371502", 2), fiID("371502", 3), fiID("371502", 4)}, ",") {
		t.Fatalf("pulled %v", got)
	}
	if len(ms) != 3 {
		t.Fatalf("%d messages for 5 instructions by 2", len(ms))
	}
	// A client that stored only the first message resumes after it.
	resumed := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{Cursor: ms[0].GetCursor()}))
	if strings.Join(resumed, ",") != strings.Join(fiIDs(ms[1:]), ",") {
		t.Fatalf("resumed %v", resumed)
	}
	last := ms[len(ms)-1].GetCursor()
	if got := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{Cursor: last})); len(got) != 0 {
		t.Fatalf("after the end: %v", got)
	}
	// The second county's funding, confirmed later, comes after the cursor.
	c.fiConfirm(t, f2)
	got := c.fiPull(t, &wengangv1.PullInstructionsRequest{Cursor: last})
	if ids := fiIDs(got); len(ids) != 3 || !strings.HasPrefix(ids[0], "P2022-371521") {
		t.Fatalf("after confirming %s: %v", f2, ids)
	}
	if ids := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{Counties: []string{"371521"}})); len(ids) != 3 {
		t.Fatalf("one county: %v", ids)
	}
	// Later state changes do not re-add an instruction.
	if _, err := c.client.AckInstructions(context.Background(), connect.NewRequest(&wengangv1.AckInstructionsRequest{InstructionIds: []string{fiID("371502", 0)}})); err != nil {
		t.Fatal(err)
	}
	if ids := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{Cursor: got[len(got)-1].GetCursor()})); len(ids) != 0 {
		t.Fatalf("re-added: %v", ids)
	}
	for _, bad := range []string{"x", formatPullCursor(99), "eyJ2IjoyLCJwdWxsIjoxfQ"} {
		st, err := c.client.PullInstructions(context.Background(), connect.NewRequest(&wengangv1.PullInstructionsRequest{Cursor: bad}))
		if err == nil {
			for st.Receive() {
			}
			err = st.Err()
		}
		fiCode(t, err, connect.CodeInvalidArgument)
	}
}

func TestFinanceAckIdempotent(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	ctx := context.Background()
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 2)
	ack := func(ids ...string) (*connect.Response[wengangv1.AckInstructionsResponse], error) {
		return c.client.AckInstructions(ctx, connect.NewRequest(&wengangv1.AckInstructionsRequest{InstructionIds: ids}))
	}
	_, err := ack(fiID("371502", 0))
	fiCode(t, err, connect.CodeFailedPrecondition)
	c.fiConfirm(t, f1)
	_, err = ack(fiID("371502", 0), "P-none")
	fiCode(t, err, connect.CodeNotFound)
	_, err = ack()
	fiCode(t, err, connect.CodeInvalidArgument)
	first, err := ack(fiID("371502", 0))
	if err != nil {
		t.Fatal(err)
	}
	c.deps.Now = func() time.Time { return fiNow.Add(time.Hour) }
	again, err := ack(fiID("371502", 0), fiID("371502", 1))
	if err != nil {
		t.Fatal(err)
	}
	a, b := first.Msg.GetInstructions()[0], again.Msg.GetInstructions()[0]
	if a.GetState() != wengangv1.PaymentState_PAYMENT_STATE_ACKNOWLEDGED || !a.GetAcknowledgedAt().AsTime().Equal(b.GetAcknowledgedAt().AsTime()) {
		t.Fatalf("first %v, again %v", a, b)
	}
	if s := again.Msg.GetInstructions()[1].GetState(); s != wengangv1.PaymentState_PAYMENT_STATE_ACKNOWLEDGED {
		t.Fatalf("second: %v", s)
	}
}

func fiPaid(id, ref string, on civil.Date) *wengangv1.PaymentResult {
	return &wengangv1.PaymentResult{InstructionId: id, Outcome: &wengangv1.PaymentResult_Paid{Paid: &wengangv1.PaidResult{BankReference: ref, PaidOn: protoconv.Date(on)}}}
}

func fiReturned(id, reason string, on civil.Date) *wengangv1.PaymentResult {
	return &wengangv1.PaymentResult{InstructionId: id, Outcome: &wengangv1.PaymentResult_Returned{Returned: &wengangv1.ReturnedResult{Reason: reason, ReasonCode: "AC04", ReturnedOn: protoconv.Date(on)}}}
}

func (c *fiCity) fiReport(rs ...*wengangv1.PaymentResult) (*connect.Response[wengangv1.ReportResultsResponse], error) {
	return c.client.ReportResults(context.Background(), connect.NewRequest(&wengangv1.ReportResultsRequest{Results: rs}))
}

func TestFinanceReportResults(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 3)
	on := civil.MustDate(2022, 6, 2)
	_, err := c.fiReport(fiPaid(fiID("371502", 0), "B1", on))
	fiCode(t, err, connect.CodeFailedPrecondition) // not pullable yet
	c.fiConfirm(t, f1)
	before := len(fiDecisions(t, c, "371502"))

	res, err := c.fiReport(fiPaid(fiID("371502", 0), "B1", on), fiReturned(fiID("371502", 1), "账户已销户", on))
	if err != nil {
		t.Fatal(err)
	}
	p, r := res.Msg.GetInstructions()[0], res.Msg.GetInstructions()[1]
	if p.GetState() != wengangv1.PaymentState_PAYMENT_STATE_PAID || p.GetBankReference() != "B1" ||
		r.GetState() != wengangv1.PaymentState_PAYMENT_STATE_RETURNED || r.GetReturnReason() != "账户已销户" || r.GetReturnCode() != "AC04" {
		t.Fatalf("instructions %v", res.Msg.GetInstructions())
	}
	ds := fiDecisions(t, c, "371502")[before:]
	if len(ds) != 2 || ds[0].Kind != store.KindPaid || ds[0].InstructionID != fiID("371502", 0) || ds[0].BankReference != "B1" || ds[0].SettledOn != on ||
		ds[1].Kind != store.KindReturned || ds[1].AmountFen != 100001 {
		t.Fatalf("decisions %+v", ds)
	}
	items, err := c.store.Items(context.Background(), "371502", "371502-000000")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]store.ItemState{}
	for _, it := range items {
		states[it.USCC] = it.State
	}
	if states["U37150200000000"] != store.ItemPaid || states["U37150200000001"] != store.ItemReturned {
		t.Fatalf("item states %v", states)
	}

	// The same results again change nothing.
	if _, err := c.fiReport(fiPaid(fiID("371502", 0), "B1", on), fiReturned(fiID("371502", 1), "账户已销户", on)); err != nil {
		t.Fatal(err)
	}
	if n := len(fiDecisions(t, c, "371502")) - before; n != 2 {
		t.Fatalf("%d decisions after a repeat", n)
	}
	for name, tc := range map[string]struct {
		rs   []*wengangv1.PaymentResult
		code connect.Code
	}{
		"other bank reference": {[]*wengangv1.PaymentResult{fiPaid(fiID("371502", 0), "B2", on)}, connect.CodeFailedPrecondition},
		"paid after returned":  {[]*wengangv1.PaymentResult{fiPaid(fiID("371502", 1), "B3", on)}, connect.CodeFailedPrecondition},
		"unknown id":           {[]*wengangv1.PaymentResult{fiPaid("P-none", "B3", on)}, connect.CodeNotFound},
		"no outcome":           {[]*wengangv1.PaymentResult{{InstructionId: fiID("371502", 2)}}, connect.CodeInvalidArgument},
		"no bank reference":    {[]*wengangv1.PaymentResult{fiPaid(fiID("371502", 2), "", on)}, connect.CodeInvalidArgument},
		"no date":              {[]*wengangv1.PaymentResult{fiPaid(fiID("371502", 2), "B4", 0)}, connect.CodeInvalidArgument},
		"twice":                {[]*wengangv1.PaymentResult{fiPaid(fiID("371502", 2), "B4", on), fiPaid(fiID("371502", 2), "B4", on)}, connect.CodeInvalidArgument},
		// All or nothing: a good result with a bad one changes nothing.
		"all or nothing": {[]*wengangv1.PaymentResult{fiPaid(fiID("371502", 2), "B4", on), fiPaid(fiID("371502", 0), "B9", on)}, connect.CodeFailedPrecondition},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.fiReport(tc.rs...)
			fiCode(t, err, tc.code)
		})
	}
	i, err := c.store.GetInstruction(context.Background(), fiID("371502", 2))
	if err != nil || i.State != store.PaymentReleased {
		t.Fatalf("instruction 2 after refusals: %v %v", i.State, err)
	}
}

// fiCorrect pushes a corrected account for item i of county, as its node.
func (c *fiCity) fiCorrect(t *testing.T, county string, i int, id string) (*connect.Response[wengangv1.PushAccountCorrectionResponse], error) {
	t.Helper()
	ctx := access.WithPrincipal(context.Background(), access.Principal{Kind: access.KindNode, Subject: "node-" + county, Role: "node", Counties: []string{county}})
	sync := &SyncService{c.deps}
	return sync.PushAccountCorrection(ctx, connect.NewRequest(&wengangv1.PushAccountCorrectionRequest{
		County: county, CorrectionId: id, BatchId: county + "-000000", Uscc: fmt.Sprintf("U%s%08d", county, i),
		Account: &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, Bank: "中国建设银行聊城分行", BankCode: "105466000001",
			AccountNo: "37050166000000009999", AccountName: fmt.Sprintf("测试企业%d", i)},
		Reason: "原账户已销户", CorrectedBy: "clerk",
	}))
}

func TestFinanceReissue(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	ctx := context.Background()
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 3)
	c.fiConfirm(t, f1)
	on := civil.MustDate(2022, 6, 2)
	// Not returned: the correction is refused, nothing is re-issued.
	_, err := c.fiCorrect(t, "371502", 0, "C0")
	if fault := connect.CodeOf(rpc.Error(ctx, c.deps.Log, "", err)); fault != connect.CodeFailedPrecondition {
		t.Fatalf("correction of an unreturned item: %v", err)
	}
	if _, err := c.fiReport(fiReturned(fiID("371502", 0), "户名不符", on)); err != nil {
		t.Fatal(err)
	}
	res, err := c.fiCorrect(t, "371502", 0, "C1")
	if err != nil {
		t.Fatal(err)
	}
	newID := res.Msg.GetInstructionId()
	if newID == "" {
		t.Fatal("no re-issue")
	}
	// Retries give the same instruction, and no other.
	for range 3 {
		again, err := c.fiCorrect(t, "371502", 0, "C1")
		if err != nil || again.Msg.GetInstructionId() != newID {
			t.Fatalf("retry: %v, %v", again, err)
		}
	}
	var n int
	if err := c.pool.QueryRow(ctx, `SELECT count(*) FROM payment_instruction WHERE reissue_of = $1`, fiID("371502", 0)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d re-issues, %v", n, err)
	}
	old, _ := c.store.GetInstruction(ctx, fiID("371502", 0))
	ni, err := c.store.GetInstruction(ctx, newID)
	if err != nil {
		t.Fatal(err)
	}
	if old.State != store.PaymentReissued || old.ReissuedBy != newID || ni.ReissueOf != old.ID || ni.State != store.PaymentReleased ||
		ni.AmountFen != old.AmountFen || ni.Payee.AccountNo != "37050166000000009999" || ni.FundingRequestID == f1 || ni.Pullable() {
		t.Fatalf("old %+v\nnew %+v", old, ni)
	}
	ds := fiDecisions(t, c, "371502")
	if d := ds[len(ds)-1]; d.Kind != store.KindReissued || d.InstructionID != newID {
		t.Fatalf("last decision %+v", d)
	}
	// The re-issue waits for its own funding, then is pulled and paid.
	fr, err := c.store.GetFundingRequest(ctx, ni.FundingRequestID)
	if err != nil || fr.InstructionCount != 1 || fr.TotalFen != ni.AmountFen || fr.State != "requested" {
		t.Fatalf("funding %+v, %v", fr, err)
	}
	before := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{}))
	c.fiConfirm(t, ni.FundingRequestID)
	after := fiIDs(c.fiPull(t, &wengangv1.PullInstructionsRequest{}))
	if len(after) != len(before)+1 || after[len(after)-1] != newID {
		t.Fatalf("pull before %v after %v", before, after)
	}
	if _, err := c.fiReport(fiPaid(newID, "B-new", on)); err != nil {
		t.Fatal(err)
	}

	// A correction waiting when the return is reported is re-issued then.
	if _, err := c.pool.Exec(ctx, `INSERT INTO account_correction (county, id, batch_id, uscc, kind, bank, bank_code, account_no, account_name,
		reason, corrected_by, pushed_by, accepted_at) VALUES ('371502', 'C2', '371502-000000', 'U37150200000001', 'corporate', '建行', '', '99887766',
		'测试企业1', 'r', 'clerk', 'node', $1)`, fiNow); err != nil {
		t.Fatal(err)
	}
	if _, err := c.fiReport(fiReturned(fiID("371502", 1), "账号错误", on)); err != nil {
		t.Fatal(err)
	}
	got, _ := c.store.GetInstruction(ctx, fiID("371502", 1))
	if got.State != store.PaymentReissued || got.ReissuedBy == "" {
		t.Fatalf("waiting correction not re-issued: %+v", got)
	}
	rec, err := c.client.GetReconciliation(ctx, connect.NewRequest(&wengangv1.GetReconciliationRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	tot := rec.Msg.GetTotal()
	if !tot.GetBalanced() || tot.GetReleased().GetCount() != 5 || tot.GetReissued().GetCount() != 2 || tot.GetReturned().GetCount() != 2 || tot.GetPaid().GetCount() != 1 {
		t.Fatalf("reconciliation %v", tot)
	}
}

func TestFinanceReconciliation(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 4)
	c.fiRelease(t, "R2022-0001", "371521", 0, 2)
	c.fiConfirm(t, f1)
	on := civil.MustDate(2022, 6, 2)
	if _, err := c.fiReport(fiPaid(fiID("371502", 0), "B1", on), fiPaid(fiID("371502", 1), "B2", on), fiReturned(fiID("371502", 2), "x", on)); err != nil {
		t.Fatal(err)
	}
	res, err := c.client.GetReconciliation(context.Background(), connect.NewRequest(&wengangv1.GetReconciliationRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	cs := res.Msg.GetCounties()
	if len(cs) != 2 || cs[0].GetCounty() != "371502" || cs[1].GetCounty() != "371521" {
		t.Fatalf("counties %v", cs)
	}
	a := cs[0]
	for name, tc := range map[string]struct {
		got        *wengangv1.Tally
		count, fen int64
	}{
		"released":     {a.GetReleased(), 4, 400006},
		"paid":         {a.GetPaid(), 2, 200001},
		"returned":     {a.GetReturned(), 1, 100002},
		"outstanding":  {a.GetOutstanding(), 1, 100003},
		"funded":       {a.GetFunded(), 4, 400006},
		"other funded": {cs[1].GetFunded(), 0, 0},
		"total":        {res.Msg.GetTotal().GetReleased(), 6, 600007},
	} {
		if tc.got.GetCount() != tc.count || tc.got.GetAmountFen() != tc.fen {
			t.Errorf("%s = %v; want %d, %d fen", name, tc.got, tc.count, tc.fen)
		}
	}
	if !a.GetBalanced() || !cs[1].GetBalanced() || !res.Msg.GetTotal().GetBalanced() || res.Msg.GetAsOf().GetDay() != 1 {
		t.Fatalf("not balanced: %v", res.Msg)
	}
	one, err := c.client.GetReconciliation(context.Background(), connect.NewRequest(&wengangv1.GetReconciliationRequest{Counties: []string{"371521"}}))
	if err != nil || len(one.Msg.GetCounties()) != 1 || one.Msg.GetTotal().GetReleased().GetCount() != 2 {
		t.Fatalf("one county: %v, %v", one, err)
	}
}

func TestFinanceListAndFunding(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	ctx := context.Background()
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 3)
	f2 := c.fiRelease(t, "R2022-0001", "371521", 0, 2)
	_, err := c.client.ConfirmFunding(ctx, connect.NewRequest(&wengangv1.ConfirmFundingRequest{FundingRequestId: f1}))
	fiCode(t, err, connect.CodeInvalidArgument)
	_, err = c.client.ConfirmFunding(ctx, connect.NewRequest(&wengangv1.ConfirmFundingRequest{FundingRequestId: "F-none", Reference: "x"}))
	fiCode(t, err, connect.CodeNotFound)
	first, err := c.client.ConfirmFunding(ctx, connect.NewRequest(&wengangv1.ConfirmFundingRequest{FundingRequestId: f1, Reference: "V1", ConfirmedOn: protoconv.Date(civil.MustDate(2022, 5, 31))}))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.client.ConfirmFunding(ctx, connect.NewRequest(&wengangv1.ConfirmFundingRequest{FundingRequestId: f1, Reference: "V2"}))
	if err != nil || again.Msg.GetFundingRequest().GetReference() != "V1" || first.Msg.GetFundingRequest().GetState() != wengangv1.FundingState_FUNDING_STATE_CONFIRMED ||
		again.Msg.GetFundingRequest().GetConfirmedOn().GetDay() != 31 {
		t.Fatalf("again %v, %v", again, err)
	}
	var ids []string
	for tok := ""; ; {
		res, err := c.client.ListFundingRequests(ctx, connect.NewRequest(&wengangv1.ListFundingRequestsRequest{PageSize: 1, PageToken: tok}))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Msg.GetFundingRequests() {
			ids = append(ids, f.GetFundingRequestId())
		}
		if tok = res.Msg.GetNextPageToken(); tok == "" {
			break
		}
	}
	if strings.Join(ids, ",") != f1+","+f2 {
		t.Fatalf("funding requests %v", ids)
	}
	req, err := c.client.ListFundingRequests(ctx, connect.NewRequest(&wengangv1.ListFundingRequestsRequest{State: wengangv1.FundingState_FUNDING_STATE_REQUESTED}))
	if err != nil || len(req.Msg.GetFundingRequests()) != 1 || req.Msg.GetFundingRequests()[0].GetFundingRequestId() != f2 {
		t.Fatalf("requested: %v, %v", req, err)
	}
	// Listing: pullable ones in feed order first, then the others.
	var listed []string
	for tok := ""; ; {
		res, err := c.client.ListInstructions(ctx, connect.NewRequest(&wengangv1.ListInstructionsRequest{PageSize: 2, PageToken: tok}))
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range res.Msg.GetInstructions() {
			listed = append(listed, i.GetInstructionId())
		}
		if tok = res.Msg.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(listed) != 5 || listed[0] != fiID("371502", 0) || listed[3] != fiID("371521", 0) {
		t.Fatalf("listed %v", listed)
	}
	st, err := c.client.ListInstructions(ctx, connect.NewRequest(&wengangv1.ListInstructionsRequest{
		States: []wengangv1.PaymentState{wengangv1.PaymentState_PAYMENT_STATE_RELEASED}, Counties: []string{"371521"}, Uscc: "U37152100000001"}))
	if err != nil || len(st.Msg.GetInstructions()) != 1 {
		t.Fatalf("filtered: %v, %v", st, err)
	}
	_, err = c.client.ListInstructions(ctx, connect.NewRequest(&wengangv1.ListInstructionsRequest{PageToken: "!"}))
	fiCode(t, err, connect.CodeInvalidArgument)
}

// fiExport exports a selection and returns the document.
func (c *fiCity) fiExport(t *testing.T, req *wengangv1.ExportPain001Request) ([]byte, error) {
	t.Helper()
	st, err := c.client.ExportPain001(context.Background(), connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	var doc bytes.Buffer
	first := true
	for st.Receive() {
		if first && (st.Msg().GetContentType() != "application/xml" || st.Msg().GetFileName() == "") {
			t.Errorf("first message %v", st.Msg())
		}
		first = false
		doc.Write(st.Msg().GetChunk())
	}
	return doc.Bytes(), st.Err()
}

func TestFinanceExportPain001(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 1200) // more than one chunk
	f2 := c.fiRelease(t, "R2022-0001", "371521", 0, 2)
	_, err := c.fiExport(t, &wengangv1.ExportPain001Request{FundingRequestId: f1})
	fiCode(t, err, connect.CodeFailedPrecondition)
	c.fiConfirm(t, f1)
	c.fiConfirm(t, f2)
	doc, err := c.fiExport(t, &wengangv1.ExportPain001Request{FundingRequestId: f1})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc) <= exportChunk {
		t.Fatalf("document of %d bytes: not chunked", len(doc))
	}
	again, err := c.fiExport(t, &wengangv1.ExportPain001Request{FundingRequestId: f1})
	if err != nil || !bytes.Equal(doc, again) {
		t.Fatalf("a second export differs (%v)", err)
	}
	// Amounts to the fen: 1200 instructions of 100000+i fen.
	var want int64
	for i := range 1200 {
		want += 100000 + int64(i)
	}
	s := string(doc)
	for _, frag := range []string{
		"<MsgId>" + f1 + "</MsgId>", "<NbOfTxs>1200</NbOfTxs>", "<CtrlSum>" + iso20022.Yuan(want) + "</CtrlSum>",
		`<InstdAmt Ccy="CNY">1000.00</InstdAmt>`, `<InstdAmt Ccy="CNY">1011.99</InstdAmt>`, "<EndToEndId>WG37150200000007</EndToEndId>",
		"<Nm>" + DebtorName + "</Nm>", "<MmbId>103466000123</MmbId>", "<Ustrd>失业保险稳岗返还</Ustrd>", "<Id>6222020000000007</Id>",
	} {
		if !strings.Contains(s, frag) {
			t.Errorf("document lacks %s", frag)
		}
	}
	var sum int64
	for _, m := range regexp.MustCompile(`<InstdAmt Ccy="CNY">(\d+)\.(\d\d)</InstdAmt>`).FindAllStringSubmatch(s, -1) {
		y, _ := strconv.ParseInt(m[1], 10, 64)
		f, _ := strconv.ParseInt(m[2], 10, 64)
		sum += y*100 + f
	}
	if sum != want {
		t.Errorf("amounts add up to %d fen, want %d", sum, want)
	}
	// A list across counties: one PmtInf per county.
	two, err := c.fiExport(t, &wengangv1.ExportPain001Request{InstructionIds: []string{fiID("371521", 1), fiID("371502", 3)}, MessageId: "M1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(two), "<PmtInf>"); n != 2 || !strings.Contains(string(two), "<PmtInfId>M1-371502</PmtInfId>") {
		t.Fatalf("%d PmtInf:\n%s", n, two)
	}
	if _, err := c.fiReport(fiPaid(fiID("371502", 3), "B", fiToday)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		req  *wengangv1.ExportPain001Request
		code connect.Code
	}{
		"neither": {&wengangv1.ExportPain001Request{}, connect.CodeInvalidArgument},
		"both":    {&wengangv1.ExportPain001Request{FundingRequestId: f1, InstructionIds: []string{fiID("371502", 0)}}, connect.CodeInvalidArgument},
		"long id": {&wengangv1.ExportPain001Request{FundingRequestId: f1, MessageId: strings.Repeat("M", 36)}, connect.CodeInvalidArgument},
		"unknown": {&wengangv1.ExportPain001Request{FundingRequestId: "F-none"}, connect.CodeNotFound},
		"settled": {&wengangv1.ExportPain001Request{InstructionIds: []string{fiID("371502", 3)}}, connect.CodeFailedPrecondition},
		"no such": {&wengangv1.ExportPain001Request{InstructionIds: []string{"P-none"}}, connect.CodeNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.fiExport(t, tc.req)
			fiCode(t, err, tc.code)
		})
	}
}

// fiImport streams doc to ImportPain002 in small chunks.
func (c *fiCity) fiImport(doc []byte) (*connect.Response[wengangv1.ImportPain002Response], error) {
	st := c.client.ImportPain002(context.Background())
	for n := 0; n < len(doc) || n == 0; n += 100 {
		msg := &wengangv1.ImportPain002Request{Chunk: doc[n:min(n+100, len(doc))]}
		if n == 0 {
			msg.FileName = "status.xml"
		}
		if err := st.Send(msg); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	return st.CloseAndReceive()
}

func TestFinanceImportPain002(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	f1 := c.fiRelease(t, "R2022-0001", "371502", 0, 4)
	c.fiConfirm(t, f1)
	on := civil.MustDate(2022, 6, 3)
	report := func(sts ...iso20022.Status) []byte {
		var b bytes.Buffer
		if err := iso20022.WritePain002(&b, iso20022.Pain002{MsgID: "RPT-1", CreatedAt: fiNow, OriginalMsgID: f1, Transactions: sts}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	good := report(
		iso20022.Status{EndToEndID: "WG37150200000000", Status: iso20022.StatusSettled, BankReference: "BK0", On: on},
		iso20022.Status{EndToEndID: "WG37150200000001", Status: iso20022.StatusCreditSettled, On: on},
		iso20022.Status{EndToEndID: "WG37150200000002", Status: iso20022.StatusRejected, ReasonCode: "AC04", Reason: "账户已销户", On: on},
		iso20022.Status{EndToEndID: "WG37150200000003", Status: iso20022.StatusPending},
	)
	// Bad files change nothing, and name each bad element's line.
	bad := report(
		iso20022.Status{EndToEndID: "WG37150200000000", Status: iso20022.StatusSettled, BankReference: "BK0", On: on},
		iso20022.Status{EndToEndID: "WG-unknown", Status: iso20022.StatusSettled, On: on},
		iso20022.Status{EndToEndID: "WG-unknown-2", Status: iso20022.StatusSettled, On: on},
	)
	for name, tc := range map[string]struct {
		doc   []byte
		lines int
	}{
		"unknown ids": {bad, 2},
		"malformed":   {good[:len(good)/2], 1},
		"pain.001":    {[]byte(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>`), 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.fiImport(tc.doc)
			fiCode(t, err, connect.CodeInvalidArgument)
			vs := rpc.RowViolations(err)
			if len(vs) != tc.lines {
				t.Fatalf("violations %v", vs)
			}
			for _, v := range vs {
				if v.GetFile() != "status.xml" || v.GetLine() < 1 {
					t.Errorf("violation %v", v)
				}
			}
		})
	}
	if i, _ := c.store.GetInstruction(context.Background(), fiID("371502", 0)); i.State != store.PaymentReleased {
		t.Fatalf("a bad file changed %s: %s", i.ID, i.State)
	}
	res, err := c.fiImport(good)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Msg
	if m.GetPaid().GetCount() != 2 || m.GetPaid().GetAmountFen() != 200001 || m.GetReturned().GetCount() != 1 || m.GetUnchangedCount() != 1 {
		t.Fatalf("response %v", m)
	}
	i1, _ := c.store.GetInstruction(context.Background(), fiID("371502", 1))
	if i1.State != store.PaymentPaid || i1.BankReference != "RPT-1" || i1.PaidOn != on {
		t.Fatalf("instruction 1 %+v", i1)
	}
	again, err := c.fiImport(good)
	if err != nil || again.Msg.GetUnchangedCount() != 4 || again.Msg.GetPaid().GetCount() != 0 {
		t.Fatalf("again %v, %v", again, err)
	}
	// A status contradicting a reported result.
	_, err = c.fiImport(report(iso20022.Status{EndToEndID: "WG37150200000000", Status: iso20022.StatusSettled, BankReference: "BK-other", On: on}))
	fiCode(t, err, connect.CodeFailedPrecondition)
}

// BenchmarkPullInstructions streams 100,000 instructions to a finance
// client over a real loopback HTTP/2 server.
func BenchmarkPullInstructions(b *testing.B) {
	const n = 100_000
	c := fiStart(b)
	c.fiConfirm(b, c.fiRelease(b, "R2022-0001", "371502", 0, n))
	b.ResetTimer()
	for b.Loop() {
		got := 0
		for _, m := range c.fiPull(b, &wengangv1.PullInstructionsRequest{PageSize: 5000}) {
			got += len(m.GetInstructions())
		}
		if got != n {
			b.Fatalf("pulled %d", got)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "instructions/s")
}

func TestFinanceImportPain002TooLarge(t *testing.T) {
	t.Parallel()
	c := fiStart(t)
	st := c.client.ImportPain002(context.Background())
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	for range MaxPain002Bytes>>20 + 1 {
		if err := st.Send(&wengangv1.ImportPain002Request{Chunk: chunk}); err != nil {
			break
		}
	}
	_, err := st.CloseAndReceive()
	fiCode(t, err, connect.CodeResourceExhausted)
}
