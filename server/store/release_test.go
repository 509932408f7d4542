package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"wengang/internal/fault"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/server/store"
)

var (
	puAdmin    = access.Principal{Kind: access.KindPerson, Subject: "tok-1", Name: "张三", Role: "city_admin", Domain: access.DomainCity}
	puApprover = access.Principal{Kind: access.KindPerson, Subject: "tok-2", Name: "王五", Role: "city_approver", Domain: access.DomainCity}
)

// puReceive stores a batch of county with n received items, each to be
// paid 100 fen to its corporate account.
func puReceive(t *testing.T, s *store.Store, county, id string, n int) {
	t.Helper()
	b := store.Batch{County: county, ID: id, ContentHash: strings.Repeat("a", 64), Content: []byte(id), PolicyID: "liaocheng-2022",
		PolicyYear: 2021, AsOf: civil.MustDate(2022, 4, 28), ItemCount: int64(n), TotalFen: int64(n) * 100}
	for i := range n {
		b.Items = append(b.Items, store.Item{USCC: fmt.Sprintf("%s-%04d", id, i), Name: "企业" + id, RefundFen: 100, RecomputedRefundFen: 100, Encoded: []byte{},
			Payee: refund.Account{Kind: refund.AccountCorporate, Bank: "工商银行", BankCode: "102466000017", AccountNo: "161100101920012345" + fmt.Sprint(i%10), AccountName: "企业" + id}})
	}
	if _, err := s.ReceiveBatch(context.Background(), actor, b, at); err != nil {
		t.Fatal(err)
	}
}

// puApprovedRound builds and approves a round of the given batches from
// Monday 2022-05-09 to Friday 2022-05-13.
func puApprovedRound(t *testing.T, s *store.Store, refs ...store.BatchRef) store.Round {
	t.Helper()
	ctx := context.Background()
	r, err := s.CreateRound(ctx, puAdmin, store.NewRound{Title: "公示", Batches: refs, Start: civil.MustDate(2022, 5, 9), End: civil.MustDate(2022, 5, 13),
		Workdays: 5, Contact: store.Contact{Office: "失业保险科", Phone: "1"}, IdempotencyKey: "k-" + refs[0].BatchID}, civil.MustDate(2022, 5, 6), at)
	if err != nil {
		t.Fatal(err)
	}
	if r, err = s.ApproveRound(ctx, puApprover, r.ID, "", civil.MustDate(2022, 5, 6), at); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReleaseRoundConcurrentlyPaysOnce(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	puReceive(t, s, "371502", "371502-000001", 30)
	puReceive(t, s, "371521", "371521-000001", 20)
	r := puApprovedRound(t, s, store.BatchRef{County: "371502", BatchID: "371502-000001"}, store.BatchRef{County: "371521", BatchID: "371521-000001"})
	after := civil.MustDate(2022, 5, 16)

	var wg sync.WaitGroup
	rels := make([]store.Release, 8)
	errs := make([]error, 8)
	for i := range rels {
		wg.Go(func() {
			rels[i], errs[i] = s.ReleaseRound(ctx, puApprover, r.ID, after, at.Add(time.Duration(i)*time.Second))
		})
	}
	wg.Wait()
	var created int64
	for i := range rels {
		if errs[i] != nil {
			t.Fatalf("release %d: %v", i, errs[i])
		}
		created += rels[i].New.Count
		if rels[i].Released != (store.Tally{Count: 50, AmountFen: 5000}) || len(rels[i].FundingRequests) != 2 {
			t.Errorf("release %d: released %v, %d funding requests", i, rels[i].Released, len(rels[i].FundingRequests))
		}
	}
	if created != 50 {
		t.Errorf("instructions created over the releases: %d, want 50", created)
	}
	var n, funding int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM payment_instruction), (SELECT count(*) FROM funding_request)`).Scan(&n, &funding); err != nil || n != 50 || funding != 2 {
		t.Errorf("%d instructions, %d funding requests, %v", n, funding, err)
	}
	for _, f := range rels[0].FundingRequests {
		want := map[string]int64{"371502": 30, "371521": 20}[f.County]
		if f.InstructionCount != want || f.TotalFen != want*100 || f.State != "requested" {
			t.Errorf("funding request %v", f)
		}
	}

	// The database itself refuses a second first instruction of an enterprise and year.
	_, err := pool.Exec(ctx, `INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year, payee_name, account_no, bank, bank_code,
			account_kind, amount_fen, funding_request_id, released_at)
		SELECT county, id || 'x', end_to_end_id || 'x', round_id, batch_id, uscc, policy_year, payee_name, account_no, bank, bank_code, account_kind, amount_fen, funding_request_id, released_at
		FROM payment_instruction LIMIT 1`)
	if err == nil || !strings.Contains(err.Error(), "payment_instruction_once") {
		t.Errorf("a second instruction: %v", err)
	}
}

func TestReleaseRoundRefusals(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	puReceive(t, s, "371502", "371502-000001", 2)
	r, err := s.CreateRound(ctx, puAdmin, store.NewRound{Title: "公示", Batches: []store.BatchRef{{County: "371502", BatchID: "371502-000001"}},
		Start: civil.MustDate(2022, 5, 9), End: civil.MustDate(2022, 5, 13), Workdays: 5, IdempotencyKey: "k"}, civil.MustDate(2022, 5, 6), at)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		actor access.Principal
		today civil.Date
		want  error
	}{
		{"a draft", puApprover, civil.MustDate(2022, 5, 16), fault.ErrFailedPrecondition},
		{"by the builder", puAdmin, civil.MustDate(2022, 5, 16), fault.ErrPermissionDenied},
		{"the builder under another token", access.Principal{Kind: access.KindPerson, Subject: "tok-9", Name: "张三"}, civil.MustDate(2022, 5, 16), fault.ErrPermissionDenied},
	}
	for _, tt := range tests {
		if _, err := s.ReleaseRound(ctx, tt.actor, r.ID, tt.today, at); fault.Kind(err) != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := s.ApproveRound(ctx, puApprover, r.ID, "", civil.MustDate(2022, 5, 10), at); fault.Kind(err) != fault.ErrFailedPrecondition {
		t.Errorf("approval after the start date: %v", err)
	}
	if _, err := s.ApproveRound(ctx, puApprover, r.ID, "", civil.MustDate(2022, 5, 9), at); err != nil {
		t.Fatal(err)
	}
	for _, d := range []civil.Date{civil.MustDate(2022, 5, 9), civil.MustDate(2022, 5, 13)} {
		if _, err := s.ReleaseRound(ctx, puApprover, r.ID, d, at); fault.Kind(err) != fault.ErrFailedPrecondition {
			t.Errorf("release on %s: %v", d, err)
		}
	}
}

func TestRecordObjectionFromThePortal(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	puReceive(t, s, "371502", "371502-000001", 3)
	r := puApprovedRound(t, s, store.BatchRef{County: "371502", BatchID: "371502-000001"})
	uscc := "371502-000001-0001"
	in := func(today civil.Date, key string) store.NewObjection {
		return store.NewObjection{RoundID: r.ID, USCC: uscc, ContactName: "李四", ContactPhone: "13800000000", Text: "已停业", Channel: "portal",
			RecordedBy: "portal", ReceivedAt: today.Time().Add(2 * time.Hour), IdempotencyKey: key, Today: today}
	}
	for _, d := range []civil.Date{civil.MustDate(2022, 5, 6), civil.MustDate(2022, 5, 14)} {
		if _, err := s.RecordObjection(ctx, in(d, "")); fault.Kind(err) != fault.ErrFailedPrecondition {
			t.Errorf("an objection on %s: %v, want failed precondition", d, err)
		}
	}
	o, err := s.RecordObjection(ctx, in(civil.MustDate(2022, 5, 13), "form-1"))
	if err != nil {
		t.Fatal(err)
	}
	if o.State != store.ObjectionOpen || o.County != "371502" || o.Name != "企业371502-000001" || o.RecordedBy != "portal" {
		t.Errorf("objection %+v", o)
	}
	again, err := s.RecordObjection(ctx, in(civil.MustDate(2022, 5, 13), "form-1"))
	if err != nil || again.ID != o.ID {
		t.Errorf("repeat: %v, %v; want %s", again.ID, err, o.ID)
	}
	other := in(civil.MustDate(2022, 5, 13), "form-1")
	other.Text = "另一异议"
	if _, err := s.RecordObjection(ctx, other); fault.Kind(err) != fault.ErrConflict {
		t.Errorf("the key with other words: %v", err)
	}
	missing := in(civil.MustDate(2022, 5, 13), "")
	missing.USCC = "nobody"
	if _, err := s.RecordObjection(ctx, missing); fault.Kind(err) != fault.ErrNotFound {
		t.Errorf("an enterprise not in the round: %v", err)
	}
	var actor string
	if err := pool.QueryRow(ctx, `SELECT actor_subject FROM audit_log WHERE action = 'objection.record'`).Scan(&actor); err != nil || actor != "portal" {
		t.Errorf("audit actor %q, %v", actor, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM received_item WHERE state = 'objected'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("objected items: %d, %v; want only the enterprise objected to", n, err)
	}
}
