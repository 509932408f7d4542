package server_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"wengang/internal/audit"
	"wengang/policy/civil"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/batchtest"
	"wengang/server/citytest"
	"wengang/server/store"
)

const (
	countyA = "371502"
	countyB = "371521"
	countyC = "371526"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testCity is a city server on loopback with a Connect client speaking gRPC
// to it over h2c.
type testCity struct {
	*citytest.City
	client wengangv1connect.SyncServiceClient
	clock  *clock
}

func startCity(t *testing.T) *testCity {
	t.Helper()
	clk := &clock{t: time.Date(2022, 4, 29, 2, 0, 0, 0, time.UTC)}
	c := citytest.Start(t, citytest.Options{Counties: []string{countyA, countyB, countyC}, Now: clk.Now})
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	t.Cleanup(hc.CloseIdleConnections)
	return &testCity{City: c, client: wengangv1connect.NewSyncServiceClient(hc, c.URL, connect.WithGRPC()), clock: clk}
}

// as returns a request from a node whose certificate names counties
// (comma separated; "" for the default, all three).
func as[T any](counties string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if counties != "" {
		req.Header().Set(citytest.CountiesHeader, counties)
	}
	return req
}

func (c *testCity) push(t *testing.T, counties string, b *wengangv1.BatchContent) (*wengangv1.PushBatchResponse, error) {
	t.Helper()
	req, _ := batchtest.Push(b)
	res, err := c.client.PushBatch(context.Background(), as(counties, req))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func (c *testCity) mustPush(t *testing.T, b *wengangv1.BatchContent) *wengangv1.PushBatchResponse {
	t.Helper()
	res, err := c.push(t, b.County, b)
	if err != nil {
		t.Fatalf("push %s: %v", b.BatchId, err)
	}
	return res
}

// pullAll pulls every decision of county from the beginning.
func (c *testCity) pullAll(t *testing.T, county string) []*wengangv1.CityDecision {
	t.Helper()
	var out []*wengangv1.CityDecision
	cursor := ""
	for {
		res, err := c.client.PullDecisions(context.Background(), as(county, &wengangv1.PullDecisionsRequest{Cursor: cursor, Limit: 1000}))
		if err != nil {
			t.Fatalf("pull %s: %v", county, err)
		}
		out = append(out, res.Msg.Decisions...)
		cursor = res.Msg.NextCursor
		if !res.Msg.More {
			return out
		}
	}
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != code {
		t.Fatalf("err = %v, want code %v", err, code)
	}
}

// fieldViolations returns the fields an InvalidArgument error names.
func fieldViolations(err error) []string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var out []string
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			continue
		}
		if fv, ok := v.(*wengangv1.FieldViolations); ok {
			for _, f := range fv.Violations {
				out = append(out, f.Field)
			}
		}
	}
	return out
}

func auditCount(t *testing.T, c *testCity) int64 {
	t.Helper()
	v, err := audit.Verify(context.Background(), c.DB, store.AuditDomain, 0, 0)
	if err != nil || !v.OK {
		t.Fatalf("audit chain: %+v, %v", v, err)
	}
	return v.Checked
}

func TestPushBatchReplayGetsTheFirstAnswer(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	b := batchtest.Batch(countyA, countyA+"-000001", batchtest.USCC(1), batchtest.USCC(2))
	first := c.mustPush(t, b)
	if first.Received.GetCount() != 2 || first.Received.GetAmountFen() != b.TotalFen || first.Rejected.GetCount() != 0 {
		t.Fatalf("first answer = %v", first)
	}
	decisions := c.pullAll(t, countyA)
	audits := auditCount(t, c)

	c.clock.Add(time.Hour)
	for range 3 {
		again := c.mustPush(t, b)
		if !proto.Equal(again, first) {
			t.Fatalf("replay answered\n%v\nfirst answer was\n%v", again, first)
		}
	}
	if got := c.pullAll(t, countyA); len(got) != len(decisions) {
		t.Fatalf("replays added decisions: %d, then %d", len(decisions), len(got))
	}
	if got := auditCount(t, c); got != audits {
		t.Fatalf("replays were audited as changes: %d entries, then %d", audits, got)
	}
	var n int
	if err := c.DB.QueryRow(context.Background(), `SELECT count(*) FROM received_batch`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("received batches = %d, %v; want 1", n, err)
	}
}

func TestPushBatchChangedContentUnderUsedIDIsRefused(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	b := batchtest.Batch(countyA, countyA+"-000001", batchtest.USCC(1), batchtest.USCC(2))
	first := c.mustPush(t, b)
	decisions := c.pullAll(t, countyA)
	audits := auditCount(t, c)

	changed := proto.Clone(b).(*wengangv1.BatchContent)
	changed.Items[0].Name = "改过的名称"
	_, err := c.push(t, countyA, changed)
	wantCode(t, err, connect.CodeAlreadyExists)

	got, err := c.Store.GetBatch(context.Background(), countyA, b.BatchId)
	if err != nil {
		t.Fatal(err)
	}
	if got.ContentHash != first.ContentHash {
		t.Fatalf("stored hash changed to %s", got.ContentHash)
	}
	items, err := c.Store.Items(context.Background(), countyA, b.BatchId)
	if err != nil || items[0].Name == "改过的名称" {
		t.Fatalf("items changed: %v, %v", items, err)
	}
	if n := len(c.pullAll(t, countyA)); n != len(decisions) {
		t.Fatalf("decisions: %d, then %d", len(decisions), n)
	}
	if n := auditCount(t, c); n != audits {
		t.Fatalf("audit entries: %d, then %d", audits, n)
	}
	// The first content is still answered as before.
	if again := c.mustPush(t, b); !proto.Equal(again, first) {
		t.Fatalf("replay after the refusal answered %v", again)
	}
}

func TestPushBatchMalformed(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	tests := []struct {
		name   string
		change func(req *wengangv1.PushBatchRequest)
		field  string
	}{
		{"hash mismatch", func(r *wengangv1.PushBatchRequest) { r.ContentHash = strings.Repeat("0", 64) }, "content_hash"},
		{"hash of other content", func(r *wengangv1.PushBatchRequest) { r.Batch.SealedBy = "someone else" }, "content_hash"},
		{"no hash", func(r *wengangv1.PushBatchRequest) { r.ContentHash = "" }, "content_hash"},
		{"item count", func(r *wengangv1.PushBatchRequest) { r.Batch.ItemCount = 3; rehash(r) }, "batch.item_count"},
		{"total", func(r *wengangv1.PushBatchRequest) { r.Batch.TotalFen++; rehash(r) }, "batch.total_fen"},
		{"USCC twice", func(r *wengangv1.PushBatchRequest) {
			r.Batch.Items[1].Uscc = r.Batch.Items[0].Uscc
			rehash(r)
		}, "batch.items[1].uscc"},
		{"id of another county", func(r *wengangv1.PushBatchRequest) { r.Batch.BatchId = countyB + "-000001"; rehash(r) }, "batch.batch_id"},
		{"no as-of", func(r *wengangv1.PushBatchRequest) { r.Batch.AsOf = nil; rehash(r) }, "batch.as_of"},
		{"no items", func(r *wengangv1.PushBatchRequest) { r.Batch.Items = nil; batchtest.Total(r.Batch); rehash(r) }, "batch.items"},
		{"policy year", func(r *wengangv1.PushBatchRequest) { r.Batch.PolicyYear = 2022; rehash(r) }, "batch.policy_year"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := batchtest.Batch(countyA, countyA+"-000009", batchtest.USCC(1), batchtest.USCC(2))
			req, _ := batchtest.Push(b)
			tt.change(req)
			_, err := c.client.PushBatch(context.Background(), as(countyA, req))
			wantCode(t, err, connect.CodeInvalidArgument)
			if f := fieldViolations(err); !slices.Contains(f, tt.field) {
				t.Fatalf("violations %v do not name %s (err %v)", f, tt.field, err)
			}
		})
	}
	var n int
	if err := c.DB.QueryRow(context.Background(), `SELECT count(*) FROM received_batch`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("malformed pushes stored %d batches (%v)", n, err)
	}
}

func rehash(r *wengangv1.PushBatchRequest) {
	r.ContentHash = func() string { req, _ := batchtest.Push(r.Batch); return req.ContentHash }()
}

func TestSyncServiceChecksTheCaller(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	b := batchtest.Batch(countyB, countyB+"-000001", batchtest.USCC(1))
	ctx := context.Background()
	tests := []struct {
		name   string
		caller string
		code   connect.Code
	}{
		{"node of another county", countyA, connect.CodePermissionDenied},
		{"node of other counties", countyA + "," + countyC, connect.CodePermissionDenied},
		{"a person", "person", connect.CodePermissionDenied},
		{"nobody", "none", connect.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.push(t, tt.caller, b)
			wantCode(t, err, tt.code)
			_, err = c.client.PullDecisions(ctx, as(tt.caller, &wengangv1.PullDecisionsRequest{Counties: []string{countyB}}))
			wantCode(t, err, tt.code)
			_, err = c.client.ReportScreening(ctx, as(tt.caller, &wengangv1.ReportScreeningRequest{Report: &wengangv1.ScreeningReport{County: countyB, ScreeningId: "1", Revision: 1}}))
			wantCode(t, err, tt.code)
			_, err = c.client.PushAccountCorrection(ctx, as(tt.caller, &wengangv1.PushAccountCorrectionRequest{CorrectionId: "k", County: countyB, BatchId: b.BatchId, Uscc: batchtest.USCC(1)}))
			wantCode(t, err, tt.code)
		})
	}
	// An item of another county inside the node's own batch is rejected,
	// not stored as that county's.
	mixed := batchtest.Batch(countyA, countyA+"-000002", batchtest.USCC(5))
	mixed.Items[0].County = countyB
	res := c.mustPush(t, mixed)
	if res.Rejected.GetCount() != 1 {
		t.Fatalf("an item of another county was not rejected: %v", res)
	}
	if _, err := c.Store.GetBatch(ctx, countyB, b.BatchId); err == nil {
		t.Fatal("a batch pushed by a node of another county was stored")
	}
}

// codes returns the rejection codes of a decision.
func rejectionCodes(d *wengangv1.CityDecision) []string {
	var out []string
	for _, r := range d.Rejections {
		out = append(out, strings.TrimPrefix(r.Code.String(), "REJECTION_CODE_"))
	}
	return out
}

func reasons(d *wengangv1.CityDecision) []string {
	var out []string
	for _, r := range d.Rejections {
		for _, why := range r.Reasons {
			out = append(out, strings.TrimPrefix(why.String(), "REASON_"))
		}
	}
	return out
}

func TestIntakeRechecksEveryItem(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	tests := []struct {
		name    string
		change  func(it *wengangv1.BatchItem)
		codes   []string // empty: received
		reasons []string
	}{
		{"a good item is received", func(it *wengangv1.BatchItem) {}, nil, nil},
		{"USCC not of the GB 32100 shape", func(it *wengangv1.BatchItem) { it.Uscc = "91440300708461136S" }, []string{"USCC_INVALID"}, nil},
		{"USCC check character wrong", func(it *wengangv1.BatchItem) { it.Uscc = "91440300708461136U" }, []string{"USCC_CHECKSUM"}, nil},
		{"USCC check character wrong but verified", func(it *wengangv1.BatchItem) { it.Uscc = "91350203M0001QAY9B"; it.UsccVerified = true }, nil, nil},
		{"item of another county", func(it *wengangv1.BatchItem) { it.County = countyB }, []string{"COUNTY_MISMATCH"}, nil},
		{"refund not 90% of the base", func(it *wengangv1.BatchItem) { it.RefundFen++ }, []string{"REFUND_MISMATCH"}, nil},
		{"base not the evidence's", func(it *wengangv1.BatchItem) {
			it.BaseFen += 100
			it.RefundFen = (it.BaseFen*9 + 5) / 10
		}, []string{"EVIDENCE_MISMATCH"}, nil},
		{"months claimed not the evidence's", func(it *wengangv1.BatchItem) { it.MonthsPaid = 14 }, []string{"EVIDENCE_MISMATCH"}, nil},
		{"paid after the as-of date", func(it *wengangv1.BatchItem) {
			it.Contributions[3].LastPaidOn = &wengangv1.Date{Year: 2022, Month: 5, Day: 1}
		}, []string{"EVIDENCE_MISMATCH"}, nil},
		{"arrears in the policy year", func(it *wengangv1.BatchItem) {
			m := it.Contributions[5]
			m.RowCount, m.UnpaidRowCount, m.UnpaidFen = 2, 1, 30000
			batchtest.Settle(it)
		}, []string{"NOT_ELIGIBLE"}, []string{"ARREARS"}},
		{"too few months", func(it *wengangv1.BatchItem) {
			it.Contributions = it.Contributions[2:] // 11 months
			batchtest.Settle(it)
		}, []string{"NOT_ELIGIBLE"}, []string{"INSUFFICIENT_MONTHS"}},
		{"too few months, reinstated by a reviewer", func(it *wengangv1.BatchItem) {
			it.Contributions = it.Contributions[2:]
			batchtest.Settle(it)
			it.Override = &wengangv1.ReviewOverride{ReviewId: "r1", Reason: "2020年参保记录在外市", Reviewer: "rev",
				WaivedReasons: []wengangv1.Reason{wengangv1.Reason_REASON_INSUFFICIENT_MONTHS}}
		}, nil, nil},
		{"not a service industry", func(it *wengangv1.BatchItem) { it.Industry = "1311" }, []string{"NOT_ELIGIBLE"}, []string{"NOT_SERVICE_INDUSTRY"}},
		{"large", func(it *wengangv1.BatchItem) { it.SizeClass = wengangv1.SizeClass_SIZE_CLASS_LARGE }, []string{"NOT_ELIGIBLE"}, []string{"NOT_SME"}},
		{"size unknown", func(it *wengangv1.BatchItem) { it.SizeClass = wengangv1.SizeClass_SIZE_CLASS_UNSPECIFIED }, []string{"NOT_ELIGIBLE"}, []string{"SIZE_MISSING"}},
		{"layoffs", func(it *wengangv1.BatchItem) { it.HeadcountStart, it.HeadcountEnd = 100, 80 }, []string{"NOT_ELIGIBLE"}, []string{"LAYOFF_RATE_EXCEEDED"}},
		{"deregistered", func(it *wengangv1.BatchItem) {
			it.RegistrationStatus = wengangv1.RegistrationStatus_REGISTRATION_STATUS_DEREGISTERED
		}, []string{"NOT_ELIGIBLE"}, []string{"DEREGISTERED"}},
		{"no account", func(it *wengangv1.BatchItem) { it.Payee = nil }, []string{"ACCOUNT_INVALID"}, nil},
		{"social-insurance account of a medium unit", func(it *wengangv1.BatchItem) {
			it.SizeClass = wengangv1.SizeClass_SIZE_CLASS_MEDIUM
			it.Payee.Kind = wengangv1.AccountKind_ACCOUNT_KIND_SOCIAL_INSURANCE
		}, []string{"ACCOUNT_INVALID"}, nil},
		{"several at once", func(it *wengangv1.BatchItem) { it.County = countyB; it.RefundFen = 1 }, []string{"COUNTY_MISMATCH", "REFUND_MISMATCH"}, nil},
	}
	b := batchtest.Batch(countyA, countyA+"-000001")
	for i, tt := range tests {
		it := batchtest.Item(countyA, batchtest.USCC(100+i))
		tt.change(it)
		b.Items = append(b.Items, it)
	}
	batchtest.Total(b)
	res := c.mustPush(t, b)

	byUSCC := make(map[string]*wengangv1.CityDecision)
	for _, d := range c.pullAll(t, countyA) {
		byUSCC[d.Uscc] = d
	}
	var wantReceived, wantRejected int64
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := b.Items[i]
			d := byUSCC[it.Uscc]
			if d == nil {
				t.Fatalf("no decision about %s", it.Uscc)
			}
			if len(tt.codes) == 0 {
				if d.Kind != wengangv1.CityDecisionKind_CITY_DECISION_KIND_RECEIVED {
					t.Fatalf("decision %v %v (%s), want received", d.Kind, rejectionCodes(d), d.Rejections)
				}
				if d.AmountFen != it.RefundFen {
					t.Errorf("amount %d, want the recomputed refund %d", d.AmountFen, it.RefundFen)
				}
				return
			}
			if d.Kind != wengangv1.CityDecisionKind_CITY_DECISION_KIND_REJECTED {
				t.Fatalf("decision %v, want rejected with %v", d.Kind, tt.codes)
			}
			if got := rejectionCodes(d); !slices.Equal(got, tt.codes) {
				t.Errorf("rejections %v, want %v (%v)", got, tt.codes, d.Rejections)
			}
			if got := reasons(d); !slices.Equal(got, tt.reasons) {
				t.Errorf("reasons %v, want %v", got, tt.reasons)
			}
			if d.Reason == "" || d.Rejections[0].Detail == "" {
				t.Errorf("no words for the clerk: %v", d)
			}
		})
		if len(tt.codes) == 0 {
			wantReceived++
		} else {
			wantRejected++
		}
	}
	if res.Received.GetCount() != wantReceived || res.Rejected.GetCount() != wantRejected {
		t.Fatalf("tallies received %v rejected %v, want %d and %d", res.Received, res.Rejected, wantReceived, wantRejected)
	}
}

func TestIntakeOfUnknownPolicyRejectsEveryItem(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	b := batchtest.Batch(countyA, countyA+"-000001", batchtest.USCC(1), batchtest.USCC(2))
	b.PolicyId = "shenzhen-2030"
	res := c.mustPush(t, b)
	if res.Rejected.GetCount() != 2 || res.Received.GetCount() != 0 {
		t.Fatalf("answer %v", res)
	}
	for _, d := range c.pullAll(t, countyA) {
		if got := rejectionCodes(d); !slices.Equal(got, []string{"POLICY_UNKNOWN"}) {
			t.Fatalf("rejections %v", got)
		}
	}
}

func kinds(ds []*wengangv1.CityDecision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, strings.TrimPrefix(d.Kind.String(), "CITY_DECISION_KIND_")+" "+d.BatchId+" "+d.Uscc)
	}
	return out
}

func TestCrossCountyDuplicates(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	ctx := context.Background()
	x := batchtest.USCC(7)

	c.mustPush(t, batchtest.Batch(countyA, countyA+"-000001", x, batchtest.USCC(8)))
	resB := c.mustPush(t, batchtest.Batch(countyB, countyB+"-000001", x))
	if resB.Conflict.GetCount() != 1 || resB.Received.GetCount() != 0 {
		t.Fatalf("B's answer %v, want one conflict", resB)
	}
	decA, decB := c.pullAll(t, countyA), c.pullAll(t, countyB)
	wantA := []string{"RECEIVED 371502-000001 " + x, "RECEIVED 371502-000001 " + batchtest.USCC(8), "CONFLICT 371502-000001 " + x}
	if got := kinds(decA); !slices.Equal(got, wantA) {
		t.Fatalf("A's feed %v, want %v", got, wantA)
	}
	if got := kinds(decB); !slices.Equal(got, []string{"CONFLICT 371521-000001 " + x}) {
		t.Fatalf("B's feed %v", got)
	}
	id := decB[0].ConflictId
	if id == "" || decA[2].ConflictId != id {
		t.Fatalf("conflict ids %q and %q", decA[2].ConflictId, id)
	}
	for _, d := range []*wengangv1.CityDecision{decA[2], decB[0]} {
		if !strings.Contains(d.Reason, "跨县重复") {
			t.Errorf("reason %q does not say what happened", d.Reason)
		}
	}

	// A third county joins the same conflict; the first two hear nothing new.
	resC := c.mustPush(t, batchtest.Batch(countyC, countyC+"-000001", x))
	if resC.Conflict.GetCount() != 1 {
		t.Fatalf("C's answer %v", resC)
	}
	if n := len(c.pullAll(t, countyA)); n != 3 {
		t.Fatalf("A's feed grew to %d", n)
	}
	conflict, err := c.Store.GetConflict(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var parties []string
	for _, p := range conflict.Parties {
		parties = append(parties, p.County)
	}
	if !conflict.Open || !slices.Equal(parties, []string{countyA, countyB, countyC}) {
		t.Fatalf("conflict %+v", conflict)
	}

	// The same county pushing the enterprise again is a duplicate.
	resA2 := c.mustPush(t, batchtest.Batch(countyA, countyA+"-000002", x))
	decA = c.pullAll(t, countyA)
	if resA2.Rejected.GetCount() != 1 || !slices.Equal(rejectionCodes(decA[len(decA)-1]), []string{"DUPLICATE"}) {
		t.Fatalf("A's second push %v, decision %v", resA2, decA[len(decA)-1])
	}
}

// advance moves an item through decisions, as the city's later steps do.
func advance(t *testing.T, c *testCity, county, batch, code string, kinds ...store.DecisionKind) {
	t.Helper()
	ctx := context.Background()
	for _, k := range kinds {
		tx, err := c.DB.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := store.Decision{County: county, BatchID: batch, USCC: code, Kind: k, OccurredAt: c.clock.Now(), Reason: string(k)}
		if k == store.KindInPublicity {
			d.RoundID, d.PublicityStart, d.PublicityEnd = "R1", civil.MustDate(2022, 5, 9), civil.MustDate(2022, 5, 13)
		}
		if k == store.KindReleased {
			d.InstructionID = "I-" + code
		}
		if _, err := store.AppendDecision(ctx, tx, d); err != nil {
			tx.Rollback(ctx)
			t.Fatalf("%s: %v", k, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIntakeRejectsAnEnterpriseAlreadyInPublicityOrPaid(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	x, y := batchtest.USCC(1), batchtest.USCC(2)
	c.mustPush(t, batchtest.Batch(countyA, countyA+"-000001", x, y))
	advance(t, c, countyA, countyA+"-000001", x, store.KindInPublicity)
	advance(t, c, countyA, countyA+"-000001", y, store.KindInPublicity, store.KindReleased, store.KindPaid)

	res := c.mustPush(t, batchtest.Batch(countyB, countyB+"-000001", x, y))
	if res.Rejected.GetCount() != 2 || res.Conflict.GetCount() != 0 {
		t.Fatalf("answer %v", res)
	}
	got := map[string][]string{}
	for _, d := range c.pullAll(t, countyB) {
		got[d.Uscc] = rejectionCodes(d)
	}
	if !slices.Equal(got[x], []string{"DUPLICATE"}) || !slices.Equal(got[y], []string{"ALREADY_PAID"}) {
		t.Fatalf("rejections %v", got)
	}
	// A's items were left alone.
	for _, d := range c.pullAll(t, countyA) {
		if d.Kind == wengangv1.CityDecisionKind_CITY_DECISION_KIND_CONFLICT {
			t.Fatalf("A's item moved to conflict: %v", d)
		}
	}
}

func TestPullDecisionsByCursor(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	ctx := context.Background()
	c.mustPush(t, batchtest.Batch(countyA, countyA+"-000001", batchtest.USCC(1), batchtest.USCC(2), batchtest.USCC(3)))
	c.mustPush(t, batchtest.Batch(countyB, countyB+"-000001", batchtest.USCC(11), batchtest.USCC(12)))
	c.mustPush(t, batchtest.Batch(countyA, countyA+"-000002", batchtest.USCC(4), batchtest.USCC(5)))
	c.mustPush(t, batchtest.Batch(countyC, countyC+"-000001", batchtest.USCC(21)))

	pull := func(counties string, req *wengangv1.PullDecisionsRequest) *wengangv1.PullDecisionsResponse {
		t.Helper()
		res, err := c.client.PullDecisions(ctx, as(counties, req))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}

	t.Run("pages in sequence order per county, each once", func(t *testing.T) {
		var got []*wengangv1.CityDecision
		cursor, pages := "", 0
		for {
			res := pull(countyA+","+countyB, &wengangv1.PullDecisionsRequest{Cursor: cursor, Limit: 2})
			pages++
			if len(res.Decisions) > 2 {
				t.Fatalf("page of %d", len(res.Decisions))
			}
			got = append(got, res.Decisions...)
			cursor = res.NextCursor
			if !res.More {
				break
			}
		}
		if pages != 4 || len(got) != 7 {
			t.Fatalf("%d decisions in %d pages, want 7 in 4", len(got), pages)
		}
		next := map[string]int64{countyA: 1, countyB: 1}
		for _, d := range got {
			if d.County == countyC {
				t.Fatalf("a decision of %s, not asked for", countyC)
			}
			if d.Sequence != next[d.County] {
				t.Fatalf("county %s: sequence %d, want %d", d.County, d.Sequence, next[d.County])
			}
			next[d.County]++
		}
		// Nothing new: the same cursor back, nothing more.
		res := pull(countyA+","+countyB, &wengangv1.PullDecisionsRequest{Cursor: cursor})
		if len(res.Decisions) != 0 || res.More || res.NextCursor != cursor {
			t.Fatalf("after the end: %v", res)
		}
		// New decisions appear after the cursor.
		c.mustPush(t, batchtest.Batch(countyB, countyB+"-000002", batchtest.USCC(13)))
		res = pull(countyA+","+countyB, &wengangv1.PullDecisionsRequest{Cursor: cursor})
		if len(res.Decisions) != 1 || res.Decisions[0].Sequence != 3 || res.Decisions[0].County != countyB {
			t.Fatalf("after a new push: %v", res.Decisions)
		}
		// The cursor serves other counties too: C starts from the beginning.
		res = pull("", &wengangv1.PullDecisionsRequest{Cursor: cursor, Counties: []string{countyC}})
		if len(res.Decisions) != 1 || res.Decisions[0].County != countyC {
			t.Fatalf("C with A and B's cursor: %v", res.Decisions)
		}
	})
	t.Run("no counties means the certificate's", func(t *testing.T) {
		res := pull(countyC, &wengangv1.PullDecisionsRequest{})
		if len(res.Decisions) != 1 || res.Decisions[0].County != countyC {
			t.Fatalf("%v", res.Decisions)
		}
	})
	t.Run("a county the certificate does not name", func(t *testing.T) {
		_, err := c.client.PullDecisions(ctx, as(countyA, &wengangv1.PullDecisionsRequest{Counties: []string{countyA, countyB}}))
		wantCode(t, err, connect.CodePermissionDenied)
	})
	for _, bad := range []string{"not base64!", "eyJ2Ijo5fQ", "eyJ2IjoxLCJhZnRlciI6eyIzNzE1MDIiOjk5OX19"} {
		t.Run("cursor "+bad, func(t *testing.T) {
			_, err := c.client.PullDecisions(ctx, as(countyA, &wengangv1.PullDecisionsRequest{Cursor: bad}))
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	}
}

func TestPushAccountCorrection(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	ctx := context.Background()
	x := batchtest.USCC(1)
	batch := countyA + "-000001"
	c.mustPush(t, batchtest.Batch(countyA, batch, x, batchtest.USCC(2)))
	acct := &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, Bank: "农业银行聊城分行", BankCode: "103466000015", AccountNo: "15301001040001234", AccountName: "测试公司"}
	correct := func(id, uscc string, a *wengangv1.Account) (*wengangv1.PushAccountCorrectionResponse, error) {
		res, err := c.client.PushAccountCorrection(ctx, as(countyA, &wengangv1.PushAccountCorrectionRequest{
			CorrectionId: id, County: countyA, BatchId: batch, Uscc: uscc, Account: a, Reason: "户名不符，已核对开户许可证", CorrectedBy: "clerk"}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}

	_, err := correct("c1", x, acct)
	wantCode(t, err, connect.CodeFailedPrecondition) // received, not returned

	advance(t, c, countyA, batch, x, store.KindInPublicity, store.KindReleased, store.KindReturned)
	first, err := correct("c1", x, acct)
	if err != nil {
		t.Fatal(err)
	}
	c.clock.Add(time.Minute)
	again, err := correct("c1", x, acct)
	if err != nil || !proto.Equal(again, first) {
		t.Fatalf("replay: %v, %v; first %v", again, err, first)
	}
	other := proto.Clone(acct).(*wengangv1.Account)
	other.AccountNo = "999"
	_, err = correct("c1", x, other)
	wantCode(t, err, connect.CodeAlreadyExists)
	_, err = correct("c2", x, other)
	wantCode(t, err, connect.CodeFailedPrecondition) // c1 waits for its re-issue
	_, err = correct("c3", batchtest.USCC(99), acct)
	wantCode(t, err, connect.CodeNotFound)
	bad := proto.Clone(acct).(*wengangv1.Account)
	bad.AccountNo, bad.BankCode = "12 34", "123"
	_, err = correct("c4", x, bad)
	wantCode(t, err, connect.CodeInvalidArgument)
	if f := fieldViolations(err); !slices.Contains(f, "account.account_no") || !slices.Contains(f, "account.bank_code") {
		t.Fatalf("violations %v", f)
	}
}

func TestReportScreeningKeepsTheHighestRevision(t *testing.T) {
	t.Parallel()
	c := startCity(t)
	ctx := context.Background()
	report := func(rev, eligible int64) (int64, error) {
		res, err := c.client.ReportScreening(ctx, as(countyB, &wengangv1.ReportScreeningRequest{Report: &wengangv1.ScreeningReport{
			County: countyB, ScreeningId: "7", Revision: rev, PolicyId: "liaocheng-2022", AsOf: &wengangv1.Date{Year: 2022, Month: 4, Day: 28},
			Screened: &wengangv1.DecisionTally{UnitCount: 10, Eligible: &wengangv1.Tally{Count: 6, AmountFen: 600}, Hold: &wengangv1.Tally{Count: 1, AmountFen: 10}, Ineligible: &wengangv1.Tally{Count: 3}},
			Reviewed: &wengangv1.DecisionTally{UnitCount: 10, Eligible: &wengangv1.Tally{Count: eligible, AmountFen: eligible * 100}, Ineligible: &wengangv1.Tally{Count: 10 - eligible}},
		}}))
		if err != nil {
			return 0, err
		}
		return res.Msg.Revision, nil
	}
	for _, step := range []struct{ rev, eligible, want int64 }{{2, 6, 2}, {1, 1, 2}, {2, 1, 2}, {3, 7, 3}} {
		got, err := report(step.rev, step.eligible)
		if err != nil || got != step.want {
			t.Fatalf("report revision %d: %d, %v; want %d", step.rev, got, err, step.want)
		}
	}
	held, err := c.Store.GetScreeningReport(ctx, countyB, "7")
	if err != nil || held.Revision != 3 || held.Reviewed.Eligible.Count != 7 || held.AsOf != civil.MustDate(2022, 4, 28) {
		t.Fatalf("held %+v, %v", held, err)
	}
	_, err = report(0, 1)
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = report(4, 11) // 11 eligible of 10 units
	wantCode(t, err, connect.CodeInvalidArgument)
}
