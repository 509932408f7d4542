package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// ntUnits are the eligible units of ntScreening, by USCC.
var ntUnits = []string{"91350200776049653A", "914403001922038216", "91440300708461136T"}

// ntScreening stores a dataset of county with the eligible units ntUnits
// (each with twelve paid months of 2021 and an account) and a screening of
// it, with results written by hand, and returns the screening's id.
func ntScreening(t *testing.T, s *store.Store, pool *pgxpool.Pool, county string) int64 {
	t.Helper()
	ctx := context.Background()
	ds := &refund.Dataset{}
	for i, u := range ntUnits {
		ds.Units = append(ds.Units, refund.Unit{USCC: u, Name: "单位" + u[14:], County: county, Industry: "6210", Size: refund.SizeSmall,
			Status: refund.StatusActive, HeadcountStart: 5, HeadcountEnd: 5, Mobile: "1380000000" + string(rune('0'+i))})
		for m := 1; m <= 12; m++ {
			ds.Contributions = append(ds.Contributions, refund.Contribution{USCC: u, Period: civil.Month(202100 + m),
				EmployerFen: 1000, EmployeeFen: 250, PaidOn: civil.MustDate(2021, m, 10)})
		}
		ds.Accounts = append(ds.Accounts, refund.Account{USCC: u, Kind: refund.AccountCorporate, Bank: "工行", AccountNo: "62" + u[:6], AccountName: "单位"})
	}
	d := createDataset(t, s, county, "ds")
	putAll(t, s, county, d.ID, ds)
	if _, err := s.SealDataset(ctx, county, d.ID, "hash"); err != nil {
		t.Fatal(err)
	}
	policy, _ := json.Marshal(refund.DefaultParams())
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO screening (county, dataset_id, as_of, policy_id, policy, results_sha256, run_by, run_at)
		VALUES ($1, $2, '2022-04-20', 'liaocheng-2022', $3::jsonb, $4, 'clerk', now()) RETURNING id`,
		county, d.ID, string(policy), make([]byte, 32)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i, u := range ds.Units {
		if _, err := pool.Exec(ctx, `INSERT INTO screening_result (county, screening_id, uscc, name, unit_county, industry, status,
				headcount_start, headcount_end, mobile, months_paid, base_fen, screened_decision, screened_reasons, screened_refund_fen,
				screened_size, screened_payee_kind, screened_payee_account_no, decision, reasons, refund_fen, size, payee_kind,
				payee_bank, payee_bank_code, payee_account_no, payee_account_name)
			VALUES ($1, $2, $3, $4, $1, '6210', 'active', 5, 5, $5, 12, 15000, 'eligible', '', 13500, 'small', 'corporate', $6,
				'eligible', '', 13500, 'small', 'corporate', '工行', '', $6, '单位')`,
			county, id, u.USCC, u.Name, u.Mobile, ds.Accounts[i].AccountNo); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func ntQueue(t *testing.T, s *store.Store, county string, screening int64, at time.Time) store.NotifyCounts {
	t.Helper()
	c, err := s.QueueNotifications(context.Background(), county, screening, nil, at, access.System("test"),
		func(_ store.ScreeningFacts, u store.NoticeUnit) (string, error) { return "通知" + u.Name, nil })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQueueNotificationsIsPerCounty(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	id := ntScreening(t, s, pool, countyA)
	at := time.Date(2022, 4, 25, 2, 0, 0, 0, time.UTC)
	_, err := s.QueueNotifications(context.Background(), countyB, id, nil, at, access.System("test"),
		func(store.ScreeningFacts, store.NoticeUnit) (string, error) { return "x", nil })
	wantKind(t, err, fault.ErrNotFound)
	if c := ntQueue(t, s, countyA, id, at); c != (store.NotifyCounts{Queued: 3}) {
		t.Errorf("counts %+v", c)
	}
	ns, err := s.ListNotifications(context.Background(), countyB, store.NotificationFilter{Limit: 10})
	if err != nil || len(ns) != 0 {
		t.Errorf("county B lists %d notifications (%v)", len(ns), err)
	}
}

func TestClaimNotificationsSkipsLockedRowsAndLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	id := ntScreening(t, s, pool, countyA)
	at := time.Date(2022, 4, 25, 2, 0, 0, 0, time.UTC)
	ntQueue(t, s, countyA, id, at)

	// Another sender holds the first row.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var held int64
	if err := tx.QueryRow(ctx, `SELECT id FROM notification WHERE uscc = $1 FOR UPDATE`, ntUnits[0]).Scan(&held); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimNotifications(ctx, at, 10, time.Minute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 2 {
		t.Fatalf("claimed %d, want the 2 rows not held", len(claimed))
	}
	for _, n := range claimed {
		if n.ID == held || n.Attempts != 1 || !n.NextAttemptAt.Equal(at.Add(time.Minute)) {
			t.Errorf("claimed %+v", n)
		}
	}
	tx.Rollback(ctx)
	// Leased rows are not due again before the lease ends.
	again, err := s.ClaimNotifications(ctx, at.Add(30*time.Second), 10, time.Minute, 3)
	if err != nil || len(again) != 1 || again[0].ID != held {
		t.Fatalf("claimed %+v (%v), want only the row that was held", again, err)
	}
}

func TestNotificationOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	id := ntScreening(t, s, pool, countyA)
	at := time.Date(2022, 4, 25, 2, 0, 0, 0, time.UTC)
	ntQueue(t, s, countyA, id, at)
	claimed, err := s.ClaimNotifications(ctx, at, 10, time.Minute, 2)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	sent, retried, lost := claimed[0], claimed[1], claimed[2]
	for range 2 { // recording it twice changes nothing
		if err := s.RecordNotificationSent(ctx, countyA, sent.ID, "gw-1", at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordNotificationFailure(ctx, countyA, retried.ID, "busy", at.Add(5*time.Minute), at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// A late failure of a row already sent leaves it sent.
	if err := s.RecordNotificationFailure(ctx, countyA, sent.ID, "late", time.Time{}, at.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.RecordNotificationSent(ctx, countyB, sent.ID, "gw", at), fault.ErrNotFound)

	// lost's sender died: after its lease it is claimed again (attempt 2);
	// that sender dies too; then the row has used its attempts and fails.
	c2, err := s.ClaimNotifications(ctx, at.Add(2*time.Minute), 10, time.Minute, 2)
	if err != nil || len(c2) != 1 || c2[0].ID != lost.ID || c2[0].Attempts != 2 {
		t.Fatalf("second claim: %+v, %v", c2, err)
	}
	c3, err := s.ClaimNotifications(ctx, at.Add(10*time.Minute), 10, time.Minute, 2)
	if err != nil || len(c3) != 1 || c3[0].ID != retried.ID {
		t.Fatalf("third claim: %+v, %v (want only the retried row)", c3, err)
	}
	ns, err := s.ListNotifications(ctx, countyA, store.NotificationFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	state := map[int64]store.Notification{}
	for _, n := range ns {
		state[n.ID] = n
	}
	if n := state[sent.ID]; n.State != store.NotificationSent || n.GatewayMessageID != "gw-1" || !n.SentAt.Equal(at.Add(time.Second)) {
		t.Errorf("sent: %+v", n)
	}
	if n := state[lost.ID]; n.State != store.NotificationFailed || n.LastError == "" {
		t.Errorf("lost: %+v", n)
	}
	if n := state[retried.ID]; n.State != store.NotificationQueued || n.Attempts != 2 || n.LastError != "busy" {
		t.Errorf("retried: %+v", n)
	}
	es, err := audit.List(ctx, pool, audit.Filter{Domain: countyA, ObjectType: "notification"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action+" "+e.ObjectID)
	}
	want := []string{"notification.sent " + sent.MessageID(), "notification.failed " + lost.MessageID()}
	if len(actions) != 2 || actions[0] != want[0] || actions[1] != want[1] {
		t.Errorf("audit %v, want %v", actions, want)
	}
}
