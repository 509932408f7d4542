package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"wengang/internal/protoconv"
	"wengang/node/store"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
)

func TestSealWhyNot(t *testing.T) {
	t.Parallel()
	ok := store.SealUnit{USCC: "91440300708461136T", Decision: refund.Eligible, RefundFen: 100, Size: refund.SizeMedium,
		Payee: refund.Account{Kind: refund.AccountCorporate, AccountNo: "1"}}
	tests := []struct {
		name       string
		edit       func(u *store.SealUnit)
		why        string // a part of the reason; "" when it is to be paid
		ineligible bool
	}{
		{"eligible with an account", func(*store.SealUnit) {}, "", false},
		{"ineligible", func(u *store.SealUnit) { u.Decision = refund.Ineligible }, "ineligible", true},
		{"in a live batch", func(u *store.SealUnit) { u.LiveBatchID = "371502-B000001" }, "already in batch 371502-B000001", false},
		{"open objection", func(u *store.SealUnit) { u.Objection = store.ObjectionOpen }, "objection open", false},
		{"upheld objection", func(u *store.SealUnit) { u.Objection = store.ObjectionUpheld }, "objection upheld", false},
		{"held", func(u *store.SealUnit) {
			u.Decision, u.Reasons = refund.Hold, refund.Reasons(0).With(refund.SizeMissing)
		}, "held: SIZE_MISSING", false},
		{"no refund", func(u *store.SealUnit) { u.RefundFen = 0 }, "no refund", false},
		{"no account", func(u *store.SealUnit) { u.Payee = refund.Account{} }, "no payee account", false},
		{"social insurance account of a medium unit", func(u *store.SealUnit) { u.Payee.Kind = refund.AccountSocialInsurance }, "small and micro", false},
		{"social insurance account of a micro unit", func(u *store.SealUnit) {
			u.Payee.Kind, u.Size = refund.AccountSocialInsurance, refund.SizeMicro
		}, "", false},
		{"check character wrong", func(u *store.SealUnit) { u.USCC = "91350203M0001QAY9B" }, "check character", false},
		{"check character wrong, verified", func(u *store.SealUnit) { u.USCC, u.USCCVerified = "91350203M0001QAY9B", true }, "", false},
		{"check character wrong, corrected", func(u *store.SealUnit) { u.USCC, u.CorrectedUSCC = "91350203M0001QAY9B", "91350200776049653A" }, "", false},
		{"batched beats objected", func(u *store.SealUnit) { u.LiveBatchID, u.Objection = "371502-B000002", store.ObjectionOpen }, "already in batch", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := ok
			tt.edit(&u)
			why, inel := sealWhyNot(&u)
			if (tt.why == "") != (why == "") || !strings.Contains(why, tt.why) || inel != tt.ineligible {
				t.Errorf("sealWhyNot = %q, %v; want %q, %v", why, inel, tt.why, tt.ineligible)
			}
		})
	}
}

func ntSeal(e *ntEnv, screening int64, key string, usccs ...string) (*wengangv1.SealBatchResponse, error) {
	res, err := e.batch.SealBatch(context.Background(), ntReq(&wengangv1.SealBatchRequest{
		County: ntCounty, ScreeningId: ntID(screening), Usccs: usccs, IdempotencyKey: key}, ""))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func ntMustSeal(t *testing.T, e *ntEnv, key string, usccs ...string) *wengangv1.SealBatchResponse {
	t.Helper()
	res, err := ntSeal(e, e.screening, key, usccs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// ntContent returns the stored content of a batch, decoded, after checking
// that its hash is what the batch says and that encoding it again gives
// the same bytes.
func ntContent(t *testing.T, e *ntEnv, b *wengangv1.Batch) *wengangv1.BatchContent {
	t.Helper()
	stored, err := e.store.GetBatch(context.Background(), ntCounty, b.GetBatchId())
	if err != nil {
		t.Fatal(err)
	}
	c := &wengangv1.BatchContent{}
	if err := proto.Unmarshal(stored.Content, c); err != nil {
		t.Fatal(err)
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(again)
	if hex.EncodeToString(sum[:]) != b.GetContentHash() || stored.ContentHash != b.GetContentHash() || string(again) != string(stored.Content) {
		t.Fatalf("content hash %s: re-encoded content hashes to %x (%d bytes, stored %d)", b.GetContentHash(), sum, len(again), len(stored.Content))
	}
	return c
}

func ntItemUSCCs(c *wengangv1.BatchContent) []string {
	var out []string
	for _, it := range c.GetItems() {
		out = append(out, it.GetUscc())
	}
	return out
}

func TestSealBatchSealsTheUnitsToBePaid(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	res := ntMustSeal(t, e, "seal-1")
	b := res.GetBatch()
	if res.GetHoldCount() != 2 || res.GetObjectedCount() != 0 || res.GetAlreadyBatchedCount() != 0 {
		t.Errorf("left out: %v", res)
	}
	if b.GetBatchId() != "371502-B000001" || b.GetCounty() != ntCounty || b.GetScreeningId() != ntID(e.screening) || b.GetPolicyYear() != 2021 ||
		b.GetState() != wengangv1.BatchState_BATCH_STATE_SEALED || b.GetItemCount() != 4 || b.GetSealedBy() != "clerk-1" ||
		!b.GetSealedAt().AsTime().Equal(e.now) || b.GetPushAttempts() != 0 || b.GetDeliveredAt() != nil {
		t.Errorf("batch = %v", b)
	}
	if n := e.batchKicks.Load(); n != 1 {
		t.Errorf("sync worker kicked %d times, want 1", n)
	}
	c := ntContent(t, e, b)
	if got := ntItemUSCCs(c); !slices.Equal(got, ntEligible) {
		t.Errorf("items %v, want %v", got, ntEligible)
	}
	var total int64
	for _, it := range c.GetItems() {
		total += it.GetRefundFen()
	}
	want := &wengangv1.BatchContent{BatchId: b.GetBatchId(), County: ntCounty, ScreeningId: ntID(e.screening), DatasetHash: "dataset-hash-2022-04",
		AsOf: protoconv.Date(ntAsOf), PolicyId: "liaocheng-2022", PolicyYear: 2021, SealedAt: b.GetSealedAt(), SealedBy: "clerk-1",
		ItemCount: 4, TotalFen: total, Items: c.GetItems()}
	if !proto.Equal(c, want) {
		t.Errorf("content header = %v", c)
	}
	if b.GetTotalFen() != total || total != 450004+540000+270000+541350 {
		t.Errorf("total %d, items add up to %d", b.GetTotalFen(), total)
	}
	if tl := b.GetItemsByState(); len(tl) != 1 || tl[0].GetState() != wengangv1.ItemState_ITEM_STATE_PENDING ||
		tl[0].GetTally().GetCount() != 4 || tl[0].GetTally().GetAmountFen() != total {
		t.Errorf("items by state = %v", tl)
	}
	// U6: a medium unit whose first account is a social-insurance one is
	// paid to its corporate account; U3, micro, to its social-insurance one.
	for _, it := range c.GetItems() {
		switch it.GetUscc() {
		case ntU6:
			if it.GetPayee().GetKind() != wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE || it.GetPayee().GetAccountNo() != "1611001019200000006" {
				t.Errorf("payee of %s = %v", ntU6, it.GetPayee())
			}
		case ntU3:
			if it.GetPayee().GetKind() != wengangv1.AccountKind_ACCOUNT_KIND_SOCIAL_INSURANCE || it.GetSizeClass() != wengangv1.SizeClass_SIZE_CLASS_MICRO {
				t.Errorf("item %s = %v", ntU3, it)
			}
		case ntU1:
			if it.GetName() != "聊城市东昌府区鲁西餐饮有限公司" || it.GetCounty() != ntCounty || it.GetIndustry() != "6210" || it.GetRefundFen() != 450004 ||
				it.GetBaseFen() != 500004 || it.GetMonthsPaid() != 12 || it.GetHeadcountStart() != 20 || it.GetHeadcountEnd() != 19 ||
				it.GetRegistrationStatus() != wengangv1.RegistrationStatus_REGISTRATION_STATUS_ACTIVE || it.GetOverride() != nil || it.GetUsccVerified() {
				t.Errorf("item %s = %v", ntU1, it)
			}
		}
	}
	want2 := []string{"batch.seal " + b.GetBatchId() + " by clerk-1"}
	if got := ntAuditActions(t, e); !slices.Equal(got, want2) {
		t.Errorf("audit log %v, want %v", got, want2)
	}
}

func TestSealBatchIsIdempotentByKey(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	first := ntMustSeal(t, e, "seal-1")
	again, err := e.batchGRPC.SealBatch(context.Background(), ntReq(&wengangv1.SealBatchRequest{
		County: ntCounty, ScreeningId: ntID(e.screening), IdempotencyKey: "seal-1"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again.Msg, first) {
		t.Errorf("repeat = %v\nwant the first answer %v", again.Msg, first)
	}
	if n := e.batchKicks.Load(); n != 1 {
		t.Errorf("sync worker kicked %d times, want 1 (a repeat seals nothing)", n)
	}
	_, err = ntSeal(e, e.screening, "seal-1", ntU1)
	ntCode(t, err, connect.CodeAlreadyExists)
	_, err = ntSeal(e, e.screening, "")
	ntCode(t, err, connect.CodeInvalidArgument)
	// A new key: nothing is left to seal.
	_, err = ntSeal(e, e.screening, "seal-2")
	ntCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), "4 already in a live batch") || !strings.Contains(err.Error(), "2 held") {
		t.Errorf("err = %v, want it to say why nothing is left", err)
	}
	var batches int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM batch`).Scan(&batches); err != nil || batches != 1 {
		t.Errorf("%d batches (%v), want 1", batches, err)
	}
}

func TestSealBatchListedUnits(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	tests := []struct {
		name  string
		usccs []string
		code  connect.Code
		names string
	}{
		{"a held unit", []string{ntU1, ntU4}, connect.CodeFailedPrecondition, ntU4},
		{"an ineligible unit", []string{ntU5}, connect.CodeFailedPrecondition, ntU5},
		{"a unit not screened", []string{"91440300MA5FXXXX0X"}, connect.CodeNotFound, "91440300MA5FXXXX0X"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ntSeal(e, e.screening, "k-"+tt.name, tt.usccs...)
			ntCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("err = %v, want it to name %s", err, tt.names)
			}
		})
	}
	one := ntMustSeal(t, e, "just-u1", ntU1)
	if c := ntContent(t, e, one.GetBatch()); !slices.Equal(ntItemUSCCs(c), []string{ntU1}) {
		t.Errorf("items %v", ntItemUSCCs(c))
	}
	rest := ntMustSeal(t, e, "the-rest")
	if rest.GetAlreadyBatchedCount() != 1 || rest.GetBatch().GetItemCount() != 3 || rest.GetBatch().GetBatchId() != "371502-B000002" {
		t.Errorf("the rest: %v", rest)
	}
	_, err := ntSeal(e, e.screening, "u1-again", ntU1)
	ntCode(t, err, connect.CodeFailedPrecondition)
}

func TestObjectionKeepsUnitOutUntilDismissed(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	sid := ntID(e.screening)
	obj, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU1,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "返还金额有误", IdempotencyKey: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	first := ntMustSeal(t, e, "s1")
	if first.GetObjectedCount() != 1 || first.GetBatch().GetItemCount() != 3 {
		t.Fatalf("with an open objection: %v", first)
	}
	if slices.Contains(ntItemUSCCs(ntContent(t, e, first.GetBatch())), ntU1) {
		t.Fatalf("the objected unit was sealed")
	}
	_, err = ntSeal(e, e.screening, "s-u1", ntU1)
	ntCode(t, err, connect.CodeFailedPrecondition)

	if _, err := ntResolve(e, obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "经核实金额无误"); err != nil {
		t.Fatal(err)
	}
	second := ntMustSeal(t, e, "s2")
	if second.GetObjectedCount() != 0 || second.GetAlreadyBatchedCount() != 3 || second.GetBatch().GetItemCount() != 1 {
		t.Fatalf("after dismissal: %v", second)
	}
	if got := ntItemUSCCs(ntContent(t, e, second.GetBatch())); !slices.Equal(got, []string{ntU1}) {
		t.Errorf("second batch: %v", got)
	}
	// Once batched, an objection goes to the city's publicity instead.
	_, err = ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU2,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "晚了", IdempotencyKey: "o2"})
	ntCode(t, err, connect.CodeFailedPrecondition)
	// A confirmation is still recorded.
	if _, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: sid, Uscc: ntU2,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_CONFIRMED, IdempotencyKey: "c2"}); err != nil {
		t.Error(err)
	}
}

func TestUpheldObjectionKeepsUnitOut(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	obj, err := ntRecord(e, &wengangv1.RecordResponseRequest{County: ntCounty, ScreeningId: ntID(e.screening), Uscc: ntU3,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "我单位放弃返还", IdempotencyKey: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ntResolve(e, obj.GetResponseId(), wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "单位书面放弃"); err != nil {
		t.Fatal(err)
	}
	res := ntMustSeal(t, e, "s1")
	if res.GetObjectedCount() != 1 || slices.Contains(ntItemUSCCs(ntContent(t, e, res.GetBatch())), ntU3) {
		t.Errorf("with an upheld objection: %v", res)
	}
	_, err = ntSeal(e, e.screening, "s-u3", ntU3)
	ntCode(t, err, connect.CodeFailedPrecondition)
}

// Concurrent seals of two screenings of the same policy year: every unit
// ends up in exactly one live batch.
func TestSealBatchConcurrentSealsNeverBatchAUnitTwice(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	screenings := []int64{e.screening, e.ntScreen(t)}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		sealed   []*wengangv1.SealBatchResponse
		refusals int
	)
	for i := range 8 {
		wg.Go(func() {
			res, err := ntSeal(e, screenings[i%2], fmt.Sprintf("k%d", i))
			mu.Lock()
			defer mu.Unlock()
			switch connect.CodeOf(err) {
			case connect.CodeFailedPrecondition:
				refusals++
			default:
				if err != nil {
					t.Error(err)
					return
				}
				sealed = append(sealed, res)
			}
		})
	}
	wg.Wait()
	if len(sealed) != 1 || refusals != 7 {
		t.Fatalf("%d seals and %d refusals, want 1 and 7", len(sealed), refusals)
	}
	var units []string
	rows, err := e.pool.Query(context.Background(), `SELECT uscc FROM batch_item WHERE live ORDER BY uscc`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		units = append(units, u)
	}
	if !slices.Equal(units, ntEligible) {
		t.Errorf("live items %v, want each of %v once", units, ntEligible)
	}

	// When the city refuses the batch its units are free again: the other
	// screening may batch them.
	if _, err := e.pool.Exec(context.Background(), `UPDATE batch_item SET live = false`); err != nil {
		t.Fatal(err)
	}
	again, err := ntSeal(e, screenings[1], "after-refusal")
	if err != nil {
		t.Fatal(err)
	}
	if again.GetBatch().GetItemCount() != 4 || again.GetBatch().GetScreeningId() != ntID(screenings[1]) {
		t.Errorf("after refusal: %v", again)
	}
}

// ntEvidence computes a unit's monthly contributions from the dataset, as
// BatchItem.contributions defines them.
func ntEvidence(ds *refund.Dataset, code string, asOf civil.Date, through civil.Month) []*wengangv1.MonthlyContribution {
	by := map[civil.Month]*wengangv1.MonthlyContribution{}
	var last = map[civil.Month]civil.Date{}
	var months []civil.Month
	for _, c := range ds.Contributions {
		if c.USCC != code || c.Period > through {
			continue
		}
		m := by[c.Period]
		if m == nil {
			m = &wengangv1.MonthlyContribution{Period: protoconv.Month(c.Period)}
			by[c.Period] = m
			months = append(months, c.Period)
		}
		m.RowCount++
		if c.PaidOn != 0 && c.PaidOn <= asOf {
			m.PaidEmployerFen += c.EmployerFen
			m.PaidEmployeeFen += c.EmployeeFen
			last[c.Period] = max(last[c.Period], c.PaidOn)
		} else {
			m.UnpaidRowCount++
			m.UnpaidFen += c.EmployerFen + c.EmployeeFen
		}
	}
	slices.Sort(months)
	var out []*wengangv1.MonthlyContribution
	for _, p := range months {
		by[p].LastPaidOn = protoconv.Date(last[p])
		out = append(out, by[p])
	}
	return out
}

func TestBatchEvidenceMatchesTheDataset(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	p := refund.DefaultParams()
	c := ntContent(t, e, ntMustSeal(t, e, "s1").GetBatch())
	for _, it := range c.GetItems() {
		want := ntEvidence(e.ds, it.GetUscc(), ntAsOf, p.MonthsThrough)
		if len(it.GetContributions()) != len(want) {
			t.Errorf("%s: %d months of evidence, want %d", it.GetUscc(), len(it.GetContributions()), len(want))
			continue
		}
		for i := range want {
			if !proto.Equal(it.GetContributions()[i], want[i]) {
				t.Errorf("%s month %d: %v, want %v", it.GetUscc(), i, it.GetContributions()[i], want[i])
			}
		}
		// The city's re-check: months paid, base and refund from the evidence.
		var base int64
		var paid int32
		for _, m := range it.GetContributions() {
			if m.GetUnpaidRowCount() == 0 {
				paid++
			}
			if m.GetPeriod().GetYear() == int32(p.PolicyYear) {
				base += m.GetPaidEmployerFen() + m.GetPaidEmployeeFen()
			}
		}
		if base != it.GetBaseFen() || paid != it.GetMonthsPaid() || p.Refund(base) != it.GetRefundFen() {
			t.Errorf("%s: evidence gives base %d, %d months, refund %d; the item claims %d, %d, %d",
				it.GetUscc(), base, paid, p.Refund(base), it.GetBaseFen(), it.GetMonthsPaid(), it.GetRefundFen())
		}
		if it.GetUscc() != ntU6 {
			continue
		}
		// U6's history: 2020 with a month paid after D and one never paid,
		// 2021 with a late payment by D, a late fee, and 2022-01 beyond
		// months_through.
		if it.GetMonthsPaid() != 22 || it.GetBaseFen() != 601500 || it.GetRefundFen() != 541350 || len(it.GetContributions()) != 24 {
			t.Errorf("%s: %d months, base %d, refund %d, %d months of evidence", ntU6, it.GetMonthsPaid(), it.GetBaseFen(), it.GetRefundFen(), len(it.GetContributions()))
		}
		may := it.GetContributions()[4] // 2020-05
		if may.GetRowCount() != 2 || may.GetUnpaidRowCount() != 1 || may.GetUnpaidFen() != 3750 || may.GetPaidEmployerFen() != 30000 ||
			may.GetLastPaidOn().GetDay() != 15 {
			t.Errorf("2020-05 = %v", may)
		}
		mar := it.GetContributions()[14] // 2021-03
		if mar.GetRowCount() != 2 || mar.GetPaidEmployerFen() != 41000 || mar.GetPaidEmployeeFen() != 10500 ||
			!proto.Equal(mar.GetLastPaidOn(), &wengangv1.Date{Year: 2022, Month: 3, Day: 1}) {
			t.Errorf("2021-03 = %v", mar)
		}
	}
}

func TestSealBatchCarriesReviewFacts(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	ctx := context.Background()
	// A unit held for its check character is not sealed until verified.
	_, err := ntSeal(e, e.screening, "u7", ntU7)
	ntCode(t, err, connect.CodeFailedPrecondition)
	// What ReviewService does (simulated here): U7's code verified, U5
	// reinstated by a reviewer.
	if _, err := e.pool.Exec(ctx, `UPDATE screening_result SET decision = 'eligible', uscc_verified = true, reviewed = true
		WHERE county = $1 AND screening_id = $2 AND uscc = $3`, ntCounty, e.screening, ntU7); err != nil {
		t.Fatal(err)
	}
	var reviewID int64
	if err := e.pool.QueryRow(ctx, `WITH u AS (UPDATE screening_result SET decision = 'eligible', refund_fen = 540000, override = 'reinstated', reviewed = true
			WHERE county = $1 AND screening_id = $2 AND uscc = $3 RETURNING uscc)
		INSERT INTO review (county, screening_id, uscc, action, reason, decision_before, decision_after, refund_before_fen, refund_after_fen,
			reviewer, reviewer_name, reviewed_at, idempotency_key, request_sha256)
		SELECT $1, $2, uscc, 'reinstate', '主营为服务业，行业代码登记有误', 'ineligible', 'eligible', 0, 540000, 'reviewer-1', '复核员甲', now(), 'rv-1', $4 FROM u
		RETURNING id`, ntCounty, e.screening, ntU5, make([]byte, 32)).Scan(&reviewID); err != nil {
		t.Fatal(err)
	}
	res := ntMustSeal(t, e, "reviewed", ntU5, ntU7)
	c := ntContent(t, e, res.GetBatch())
	if len(c.GetItems()) != 2 {
		t.Fatalf("items %v", ntItemUSCCs(c))
	}
	reinstated, verified := c.GetItems()[0], c.GetItems()[1]
	wantOverride := &wengangv1.ReviewOverride{ReviewId: ntID(reviewID), Reason: "主营为服务业，行业代码登记有误", Reviewer: "reviewer-1",
		WaivedReasons: []wengangv1.Reason{wengangv1.Reason_REASON_NOT_SERVICE_INDUSTRY}}
	if reinstated.GetUscc() != ntU5 || !proto.Equal(reinstated.GetOverride(), wantOverride) || reinstated.GetRefundFen() != 540000 {
		t.Errorf("reinstated item = %v", reinstated)
	}
	if verified.GetUscc() != ntU7 || !verified.GetUsccVerified() || verified.GetOverride() != nil {
		t.Errorf("verified item = %v", verified)
	}
}

func TestGetAndListBatches(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	ctx := context.Background()
	first := ntMustSeal(t, e, "s1", ntU1).GetBatch()
	second := ntMustSeal(t, e, "s2").GetBatch()

	got, err := e.batch.GetBatch(ctx, ntReq(&wengangv1.GetBatchRequest{County: ntCounty, BatchId: first.GetBatchId()}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.Msg.GetBatch(), first) {
		t.Errorf("GetBatch = %v, want %v", got.Msg.GetBatch(), first)
	}
	for _, req := range []*wengangv1.GetBatchRequest{
		{County: ntCounty, BatchId: "371502-B000009"},
		{County: ntOther, BatchId: first.GetBatchId()}, // another county's batch
		{County: "371525", BatchId: first.GetBatchId()},
	} {
		_, err := e.batch.GetBatch(ctx, ntReq(req, ""))
		ntCode(t, err, connect.CodeNotFound)
	}

	var ids []string
	req := &wengangv1.ListBatchesRequest{County: ntCounty, PageSize: 1}
	for {
		res, err := e.batch.ListBatches(ctx, ntReq(req, ""))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range res.Msg.GetBatches() {
			ids = append(ids, b.GetBatchId())
			if b.GetBatchId() == second.GetBatchId() && !proto.Equal(b, second) {
				t.Errorf("listed %v, want %v", b, second)
			}
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if want := []string{second.GetBatchId(), first.GetBatchId()}; !slices.Equal(ids, want) {
		t.Errorf("listed %v, want newest first %v", ids, want)
	}
	for state, want := range map[wengangv1.BatchState]int{
		wengangv1.BatchState_BATCH_STATE_SEALED:    2,
		wengangv1.BatchState_BATCH_STATE_DELIVERED: 0,
	} {
		res, err := e.batch.ListBatches(ctx, ntReq(&wengangv1.ListBatchesRequest{County: ntCounty, State: state}, ""))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Msg.GetBatches()) != want {
			t.Errorf("state %v: %d batches, want %d", state, len(res.Msg.GetBatches()), want)
		}
	}
	res, err := e.batch.ListBatches(ctx, ntReq(&wengangv1.ListBatchesRequest{County: ntOther}, ""))
	if err != nil || len(res.Msg.GetBatches()) != 0 {
		t.Errorf("another county lists %v (%v)", res, err)
	}
	_, err = e.batch.ListBatches(ctx, ntReq(&wengangv1.ListBatchesRequest{County: ntCounty, PageToken: "371521-B000001"}, ""))
	ntCode(t, err, connect.CodeInvalidArgument)
}

func TestSealedBatchIsImmutable(t *testing.T) {
	t.Parallel()
	e := ntNewEnv(t)
	ctx := context.Background()
	b := ntMustSeal(t, e, "s1").GetBatch()
	for _, sql := range []string{
		`UPDATE batch SET content = '\x00'::bytea`,
		`UPDATE batch SET total_fen = total_fen + 1`,
		`UPDATE batch SET sealed_by = 'someone else'`,
		`DELETE FROM batch`,
		`UPDATE batch_item SET refund_fen = refund_fen + 1`,
		`UPDATE batch_item SET uscc = 'X' || uscc`,
		`DELETE FROM batch_item`,
	} {
		if _, err := e.pool.Exec(ctx, sql); err == nil {
			t.Errorf("%s: changed a sealed batch", sql)
		}
	}
	// The outbox and the items' liveness are the sync worker's to change.
	for _, sql := range []string{
		`UPDATE batch SET push_attempts = 3, last_push_error = 'unavailable', next_push_at = now() + interval '1 minute'`,
		`UPDATE batch SET state = 'delivered', delivered_at = now()`,
		`UPDATE batch_item SET live = false WHERE uscc = '` + ntU1 + `'`,
	} {
		if _, err := e.pool.Exec(ctx, sql); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
	// The mirror of the city's decisions gives the items' states.
	if _, err := e.pool.Exec(ctx, `INSERT INTO unit_status (county, batch_id, uscc, policy_year, state, last_decision, last_sequence, reason, updated_at)
		VALUES ($1, $2, $3, 2021, 'received', 'received', 1, '', now())`, ntCounty, b.GetBatchId(), ntU2); err != nil {
		t.Fatal(err)
	}
	ntContent(t, e, b) // the content still hashes to the sealed hash
	got, err := e.batch.GetBatch(ctx, ntReq(&wengangv1.GetBatchRequest{County: ntCounty, BatchId: b.GetBatchId()}, ""))
	if err != nil {
		t.Fatal(err)
	}
	g := got.Msg.GetBatch()
	if g.GetState() != wengangv1.BatchState_BATCH_STATE_DELIVERED || g.GetPushAttempts() != 3 || g.GetLastPushError() != "unavailable" || g.GetDeliveredAt() == nil {
		t.Errorf("batch = %v", g)
	}
	var tl []string
	for _, x := range g.GetItemsByState() {
		tl = append(tl, fmt.Sprintf("%s %d %d", strings.TrimPrefix(x.GetState().String(), "ITEM_STATE_"), x.GetTally().GetCount(), x.GetTally().GetAmountFen()))
	}
	if want := []string{"PENDING 2 811350", "RECEIVED 1 540000", "REJECTED 1 450004"}; !slices.Equal(tl, want) {
		t.Errorf("items by state = %v, want %v", tl, want)
	}
}
