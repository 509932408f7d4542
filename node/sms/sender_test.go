package sms

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/pgtest"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

const senderCounty = "371502"

// senderUSCCs are valid codes for the fixture's units.
var senderUSCCs = []string{"91440300708461136T", "914403001922038216", "91350200776049653A", "91440101MA5CJQ4N59", "92371581MA3P2D6H90"}

// clock is a settable clock for the sender.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeGateway is a hand-written gateway: send decides each call's outcome;
// it records every message it was given.
type fakeGateway struct {
	send func(call int, m Message) (string, error)

	mu    sync.Mutex
	calls []Message
}

func (g *fakeGateway) Send(ctx context.Context, m Message) (string, error) {
	g.mu.Lock()
	g.calls = append(g.calls, m)
	n := len(g.calls)
	g.mu.Unlock()
	return g.send(n, m)
}

func (g *fakeGateway) sent() []Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Message(nil), g.calls...)
}

// queueFixture makes a database with a screening of n eligible units, all
// with a mobile number, and queues their notifications at now.
func queueFixture(t *testing.T, n int, now time.Time) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewDB(t, store.Migrations)
	s := store.New(pool)
	ds := &refund.Dataset{}
	for i := range n {
		u := senderUSCCs[i]
		ds.Units = append(ds.Units, refund.Unit{USCC: u, Name: fmt.Sprintf("单位%d", i+1), County: senderCounty, Industry: "6210",
			Size: refund.SizeSmall, Status: refund.StatusActive, HeadcountStart: 10, HeadcountEnd: 10, Mobile: fmt.Sprintf("1380000000%d", i)})
		for m := 1; m <= 12; m++ {
			ds.Contributions = append(ds.Contributions, refund.Contribution{USCC: u, Period: civil.Month(202100 + m),
				EmployerFen: 40000, EmployeeFen: 10000, PaidOn: civil.MustDate(2021, m, 15)})
		}
		ds.Accounts = append(ds.Accounts, refund.Account{USCC: u, Kind: refund.AccountCorporate, Bank: "工行", AccountNo: fmt.Sprint(1000 + i), AccountName: "单位"})
	}
	d, err := s.CreateDataset(ctx, senderCounty, "d")
	if err != nil {
		t.Fatal(err)
	}
	meta := func(name string) store.FileMeta {
		return store.FileMeta{Name: name, Format: "csv", Encoding: "utf-8", SHA256: sha256.Sum256([]byte(name))}
	}
	for _, err := range []error{
		s.PutUnits(ctx, senderCounty, d.ID, meta("units.csv"), ds.Units),
		s.PutContributions(ctx, senderCounty, d.ID, meta("contributions.csv"), ds.Contributions),
		s.PutAccounts(ctx, senderCounty, d.ID, meta("accounts.csv"), ds.Accounts),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SealDataset(ctx, senderCounty, d.ID, "hash-d"); err != nil {
		t.Fatal(err)
	}
	p := refund.DefaultParams()
	asOf := civil.MustDate(2022, 4, 20)
	results, err := refund.Screen(ds, p, asOf)
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := json.Marshal(p)
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO screening (county, dataset_id, as_of, policy_id, policy, results_sha256, run_by, run_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, 'clerk', now()) RETURNING id`,
		senderCounty, d.ID, asOf.Time(), p.ID, string(policy), make([]byte, 32)).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Decision != refund.Eligible {
			t.Fatalf("fixture unit %s: %v %v", r.USCC, r.Decision, r.Reasons)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO screening_result (county, screening_id, uscc, name, unit_county, industry, status,
				headcount_start, headcount_end, mobile, months_paid, base_fen, screened_decision, screened_reasons, screened_refund_fen,
				screened_size, screened_payee_kind, screened_payee_account_no, decision, reasons, refund_fen, size, payee_kind,
				payee_bank, payee_bank_code, payee_account_no, payee_account_name)
			VALUES ($1, $2, $3, $4, $1, '6210', 'active', 10, 10, $5, $6, $7, 'eligible', '', $8, 'small', 'corporate', $9,
				'eligible', '', $8, 'small', 'corporate', '工行', '', $9, '单位')`,
			senderCounty, id, r.USCC, r.Name, ds.Units[i].Mobile, r.MonthsPaid, r.BaseFen, r.RefundFen, r.Payee.AccountNo); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := s.QueueNotifications(ctx, senderCounty, id, nil, now, access.System("test"),
		func(_ store.ScreeningFacts, u store.NoticeUnit) (string, error) { return "通知 " + u.Name, nil })
	if err != nil {
		t.Fatal(err)
	}
	if counts.Queued != int64(n) {
		t.Fatalf("queued %d, want %d", counts.Queued, n)
	}
	return s, pool
}

func newSender(s *store.Store, g Gateway, c *clock) *Sender {
	return &Sender{
		Outbox: s, Gateway: g, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now,
		MaxAttempts: 3, BaseDelay: time.Minute, MaxDelay: 10 * time.Minute, SendTimeout: 5 * time.Second,
		Jitter: func(d time.Duration) time.Duration { return d }, // no randomness in tests
	}
}

func notifications(t *testing.T, s *store.Store) []store.Notification {
	t.Helper()
	ns, err := s.ListNotifications(context.Background(), senderCounty, store.NotificationFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func drain(t *testing.T, snd *Sender) int {
	t.Helper()
	n, err := snd.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var errFlaky = errors.New("gateway timeout")

func TestSenderRetriesWithBackoffThenSendsOnce(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)}
	s, _ := queueFixture(t, 1, c.Now())
	g := &fakeGateway{send: func(call int, m Message) (string, error) {
		if call <= 2 {
			return "", errFlaky
		}
		return "gw-1", nil
	}}
	snd := newSender(s, g, c)

	steps := []struct {
		advance   time.Duration
		wantCalls int
		wantState store.NotificationState
	}{
		{0, 1, store.NotificationQueued},                // first attempt fails: retry in 1 min
		{30 * time.Second, 1, store.NotificationQueued}, // not due yet
		{30 * time.Second, 2, store.NotificationQueued}, // second attempt fails: retry in 2 min
		{time.Minute, 2, store.NotificationQueued},      // not due yet
		{time.Minute, 3, store.NotificationSent},        // third succeeds
		{24 * time.Hour, 3, store.NotificationSent},     // never again
	}
	for i, st := range steps {
		c.Add(st.advance)
		drain(t, snd)
		if got := len(g.sent()); got != st.wantCalls {
			t.Fatalf("step %d: %d gateway calls, want %d", i, got, st.wantCalls)
		}
		if n := notifications(t, s)[0]; n.State != st.wantState {
			t.Fatalf("step %d: state %s, want %s (last error %q)", i, n.State, st.wantState, n.LastError)
		}
	}
	n := notifications(t, s)[0]
	if n.Attempts != 3 || n.GatewayMessageID != "gw-1" || n.LastError != "" || !n.SentAt.Equal(c.Now().Add(-24*time.Hour)) {
		t.Errorf("sent notification = %+v", n)
	}
	for _, m := range g.sent() {
		if m.ID != n.MessageID() || m.Mobile != n.Mobile || m.Text != n.Text {
			t.Errorf("attempt carried %+v, want id %s", m, n.MessageID())
		}
	}
}

func TestSenderGivesUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantCalls int
	}{
		{"permanent failure at once", Permanent(errors.New("invalid mobile")), 1},
		{"transient failures up to the max attempts", errFlaky, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)}
			s, _ := queueFixture(t, 1, c.Now())
			g := &fakeGateway{send: func(int, Message) (string, error) { return "", tt.err }}
			snd := newSender(s, g, c)
			for range 6 {
				drain(t, snd)
				c.Add(time.Hour)
			}
			if got := len(g.sent()); got != tt.wantCalls {
				t.Errorf("%d gateway calls, want %d", got, tt.wantCalls)
			}
			n := notifications(t, s)[0]
			if n.State != store.NotificationFailed || n.LastError == "" || n.Attempts != tt.wantCalls {
				t.Errorf("notification = %+v, want failed with the gateway's error", n)
			}
		})
	}
}

// A sender that dies between the gateway's acceptance and recording it
// leaves the row queued: after the lease, it is sent again under the same
// message id, which the provider deduplicates.
func TestSenderResendsAfterACrashUnderTheSameID(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)}
	s, _ := queueFixture(t, 1, c.Now())
	snd := newSender(s, nil, c)

	// The crashed sender: it claimed the row (and sent it), then died.
	claimed, err := s.ClaimNotifications(context.Background(), c.Now(), 10, snd.SendTimeout*3/2, 3)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v, %d rows", err, len(claimed))
	}
	g := &fakeGateway{send: func(int, Message) (string, error) { return "gw-dedup", nil }}
	snd.Gateway = g
	drain(t, snd) // within the lease: nothing to do
	if len(g.sent()) != 0 {
		t.Fatalf("a leased row was sent again before its lease expired")
	}
	c.Add(10 * time.Second)
	drain(t, snd)
	calls := g.sent()
	if len(calls) != 1 || calls[0].ID != claimed[0].MessageID() {
		t.Fatalf("after the lease: calls %+v, want one with id %s", calls, claimed[0].MessageID())
	}
	if n := notifications(t, s)[0]; n.State != store.NotificationSent || n.Attempts != 2 {
		t.Errorf("notification = %+v, want sent after 2 attempts", n)
	}
}

// Senders draining one outbox at once send each message exactly once.
func TestConcurrentSendersSendEachMessageOnce(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)}
	s, _ := queueFixture(t, len(senderUSCCs), c.Now())
	g := &fakeGateway{send: func(_ int, m Message) (string, error) {
		time.Sleep(20 * time.Millisecond) // hold the claim while the others look
		return "gw-" + m.ID, nil
	}}
	var wg sync.WaitGroup
	for range 4 {
		snd := newSender(s, g, c)
		snd.BatchSize = 1
		wg.Go(func() {
			if _, err := snd.Drain(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for _, m := range g.sent() {
		seen[m.ID]++
	}
	if len(seen) != len(senderUSCCs) {
		t.Errorf("%d distinct messages sent, want %d", len(seen), len(senderUSCCs))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s sent %d times", id, n)
		}
	}
	for _, n := range notifications(t, s) {
		if n.State != store.NotificationSent || n.GatewayMessageID != "gw-"+n.MessageID() {
			t.Errorf("notification %s: %s %q", n.MessageID(), n.State, n.GatewayMessageID)
		}
	}
	// Sent rows are never sent again.
	if err := nothingMoreSent(s, c); err != nil {
		t.Fatal(err)
	}
}

// nothingMoreSent drains once more, much later, and fails if anything is
// sent.
func nothingMoreSent(s *store.Store, c *clock) error {
	c.Add(48 * time.Hour)
	g := &fakeGateway{send: func(int, Message) (string, error) { return "", errors.New("must not be called") }}
	n, err := newSender(s, g, c).Drain(context.Background())
	if err == nil && (n != 0 || len(g.sent()) != 0) {
		err = fmt.Errorf("%d more attempts after everything was sent", n)
	}
	return err
}

func TestSenderKickWakesRun(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)}
	s, _ := queueFixture(t, 1, c.Now())
	calls := make(chan int, 10)
	g := &fakeGateway{send: func(call int, m Message) (string, error) {
		calls <- call
		if call == 1 {
			return "", errFlaky // due again in a minute
		}
		return "gw", nil
	}}
	snd := newSender(s, g, c)
	snd.Poll = time.Hour // only a kick can wake it within the test
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- snd.Run(ctx) }()
	wait := func(want int) {
		t.Helper()
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("call %d, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no call %d", want)
		}
	}
	wait(1) // Run drains once when it starts
	for deadline := time.Now().Add(10 * time.Second); notifications(t, s)[0].LastError == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the failed attempt was never recorded")
		}
	}
	c.Add(2 * time.Minute)
	snd.Kick()
	wait(2)
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if n := notifications(t, s)[0]; n.State != store.NotificationSent {
		t.Errorf("state %s, want sent", n.State)
	}
}
