package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"wengang/internal/fault"
	"wengang/node/store"
	"wengang/node/sync/synctest"
	"wengang/policy/access"
	"wengang/policy/refund"
	"wengang/server/batchtest"
)

func TestClaimDueBatchesLeasesEachBatchToOneWorker(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		b, _ := synctest.Seal(t, pool, batchtest.Batch(countyA, countyA+"-B00000"+string(rune('0'+i)), batchtest.USCC(i)))
		ids = append(ids, b.BatchId)
	}
	synctest.Seal(t, pool, batchtest.Batch(countyB, countyB+"-B000001", batchtest.USCC(1)))
	now := time.Now().Add(time.Second)

	// Four workers claim at once: every batch of the county once.
	var (
		mu     sync.Mutex
		seen   = map[string]int{}
		wg     sync.WaitGroup
		errsMu sync.Mutex
		errs   []error
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimDueBatches(ctx, []string{countyA}, now, time.Minute, 2)
				if err != nil {
					errsMu.Lock()
					errs = append(errs, err)
					errsMu.Unlock()
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, b := range got {
					seen[b.ID]++
					if b.County != countyA || len(b.Content) == 0 || len(b.ContentHash) != 64 {
						errs = append(errs, errors.New("claimed "+b.ID+" of "+b.County))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("batch %s claimed %d times: %v", id, seen[id], seen)
		}
	}
	// Leased: not due again before the lease runs out, due after.
	if got, _ := s.ClaimDueBatches(ctx, []string{countyA}, now.Add(59*time.Second), time.Minute, 100); len(got) != 0 {
		t.Fatalf("claimed again within the lease: %d", len(got))
	}
	if got, _ := s.ClaimDueBatches(ctx, []string{countyA}, now.Add(61*time.Second), time.Minute, 100); len(got) != len(ids) {
		t.Fatalf("after the lease: %d of %d", len(got), len(ids))
	}
}

func TestOutboxOutcomes(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	x := batchtest.USCC(1)
	a, _ := synctest.Seal(t, pool, batchtest.Batch(countyA, countyA+"-B000001", x))
	now := time.Now()

	if err := s.BatchPushFailed(ctx, countyA, a.BatchId, "Unavailable: down", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The screening's report went to the city already: only the batch waits.
	if _, err := pool.Exec(ctx, `UPDATE screening_report_outbox SET pushed_revision = revision`); err != nil {
		t.Fatal(err)
	}
	next, ok, err := s.NextPushAt(ctx, []string{countyA})
	if err != nil || !ok || next.Sub(now.Add(time.Hour)).Abs() > time.Millisecond {
		t.Fatalf("next push %v %v %v", next, ok, err)
	}
	if got, _ := s.ClaimDueBatches(ctx, []string{countyA}, now, time.Minute, 10); len(got) != 0 {
		t.Fatal("a batch was claimed before its retry time")
	}
	b, err := s.GetBatch(ctx, countyA, a.BatchId)
	if err != nil || b.PushAttempts != 1 || b.LastPushError != "Unavailable: down" || b.State != store.BatchSealed {
		t.Fatalf("after a failure: %+v, %v", b, err)
	}

	if err := s.BatchRefused(ctx, countyA, a.BatchId, "AlreadyExists: taken", now); err != nil {
		t.Fatal(err)
	}
	// Recording an outcome again changes nothing.
	for range 2 {
		if err := s.BatchDelivered(ctx, countyA, a.BatchId, now, ""); err != nil {
			t.Fatal(err)
		}
	}
	b, _ = s.GetBatch(ctx, countyA, a.BatchId)
	if b.State != store.BatchRefused || b.PushAttempts != 2 || b.LastPushError != "AlreadyExists: taken" {
		t.Fatalf("after the refusal: %+v", b)
	}
	if _, ok, _ := s.NextPushAt(ctx, []string{countyA}); ok {
		t.Fatal("a refused batch is still due")
	}
	// Its unit is free: another batch may take it.
	synctest.Seal(t, pool, batchtest.Batch(countyA, countyA+"-B000002", x))
	us, err := s.ListUnitStatuses(ctx, store.UnitStatusFilter{County: countyA, USCC: x, Limit: 10})
	if err != nil || len(us) != 2 || us[0].State != "rejected" || us[1].State != "pending" {
		t.Fatalf("statuses %+v, %v", us, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE domain = $1 AND action = 'batch.refused'`, countyA).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d audit entries of the refusal (%v)", n, err)
	}
}

func TestCorrectAccountNeedsAReturnedPayment(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	x := batchtest.USCC(1)
	a, _ := synctest.Seal(t, pool, batchtest.Batch(countyA, countyA+"-B000001", x))
	clerk := access.Principal{Kind: access.KindPerson, Subject: "tok-1", Role: "county_clerk"}
	c := store.AccountCorrection{County: countyA, ID: "k1", BatchID: a.BatchId, USCC: x, Reason: "退票",
		Account: refund.Account{Kind: refund.AccountCorporate, Bank: "b", AccountNo: "1", AccountName: "n"}}
	if _, err := s.CorrectAccount(ctx, clerk, c, time.Now()); !errors.Is(err, fault.ErrFailedPrecondition) {
		t.Fatalf("pending unit: %v", err)
	}
	apply := func(seq int64, kind store.DecisionKind) {
		t.Helper()
		if _, err := s.ApplyDecisions(ctx, countyA, []store.CityDecision{{County: countyA, Sequence: seq, Kind: kind, BatchID: a.BatchId, USCC: x, OccurredAt: time.Now()}}, "c", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	apply(1, store.DecisionReceived)
	apply(2, store.DecisionInPublicity)
	apply(3, store.DecisionReleased)
	apply(4, store.DecisionReturned)
	u, err := s.CorrectAccount(ctx, clerk, c, time.Now())
	if err != nil || !u.CorrectionPending || u.Payee.AccountNo != "1" {
		t.Fatalf("%+v, %v", u, err)
	}
	c2 := c
	c2.ID = "k2"
	if _, err := s.CorrectAccount(ctx, clerk, c2, time.Now()); !errors.Is(err, fault.ErrFailedPrecondition) {
		t.Fatalf("a second correction of one return: %v", err)
	}
	c.Reason = "另一理由"
	if _, err := s.CorrectAccount(ctx, clerk, c, time.Now()); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("the key for another correction: %v", err)
	}
	got, err := s.ClaimDueCorrections(ctx, []string{countyA}, time.Now().Add(time.Second), time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != "k1" || got[0].Account.Kind != refund.AccountCorporate {
		t.Fatalf("claimed %+v, %v", got, err)
	}
	if err := s.CorrectionAccepted(ctx, countyA, "k1", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	apply(5, store.DecisionReissued)
	apply(6, store.DecisionReturned) // returned again: a new correction is taken
	if _, err := s.CorrectAccount(ctx, clerk, c2, time.Now()); err != nil {
		t.Fatalf("a correction of the second return: %v", err)
	}
}
