package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/internal/pgtest"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/server/store"
)

var (
	at    = time.Date(2022, 4, 29, 2, 0, 0, 0, time.UTC)
	actor = access.Principal{Kind: access.KindNode, Subject: "node-1", Counties: []string{"371502"}}
)

func newStore(t *testing.T) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	return store.New(pool), pool
}

// receive stores a batch of county with n items that passed the re-check.
func receive(t *testing.T, s *store.Store, county, id string, n int) {
	t.Helper()
	b := store.Batch{County: county, ID: id, ContentHash: strings.Repeat("a", 64), Content: []byte(id), PolicyID: "liaocheng-2022",
		PolicyYear: 2021, AsOf: civil.MustDate(2022, 4, 28), ItemCount: int64(n), TotalFen: int64(n) * 100}
	for i := range n {
		b.Items = append(b.Items, store.Item{USCC: fmt.Sprintf("%s-%04d", id, i), Name: "n", RefundFen: 100, RecomputedRefundFen: 100, Encoded: []byte{}})
	}
	if _, err := s.ReceiveBatch(context.Background(), actor, b, at); err != nil {
		t.Fatal(err)
	}
}

func TestTransition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from store.ItemState
		kind store.DecisionKind
		to   store.ItemState // "" when refused
	}{
		{store.ItemPending, store.KindReceived, store.ItemReceived},
		{store.ItemPending, store.KindRejected, store.ItemRejected},
		{store.ItemPending, store.KindConflict, store.ItemConflict},
		{store.ItemReceived, store.KindConflict, store.ItemConflict},
		{store.ItemConflict, store.KindReceived, store.ItemReceived},
		{store.ItemConflict, store.KindRejected, store.ItemRejected},
		{store.ItemReceived, store.KindInPublicity, store.ItemInPublicity},
		{store.ItemInPublicity, store.KindObjected, store.ItemObjected},
		{store.ItemObjected, store.KindObjectionDismissed, store.ItemInPublicity},
		{store.ItemObjected, store.KindRemoved, store.ItemRemoved},
		{store.ItemInPublicity, store.KindReleased, store.ItemReleased},
		{store.ItemReleased, store.KindPaid, store.ItemPaid},
		{store.ItemReleased, store.KindReturned, store.ItemReturned},
		{store.ItemReturned, store.KindReissued, store.ItemReleased},
		{store.ItemReceived, store.KindPaid, ""},
		{store.ItemRejected, store.KindReceived, ""},
		{store.ItemPaid, store.KindReturned, store.ItemReturned},
		{store.ItemConflict, store.KindInPublicity, ""},
		{store.ItemRemoved, store.KindObjectionDismissed, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s on %s", tt.kind, tt.from), func(t *testing.T) {
			got, err := store.Transition(tt.from, tt.kind)
			if tt.to == "" {
				if !errors.Is(err, fault.ErrFailedPrecondition) {
					t.Fatalf("got %s, %v; want a refusal", got, err)
				}
				return
			}
			if err != nil || got != tt.to {
				t.Fatalf("got %s, %v; want %s", got, err, tt.to)
			}
		})
	}
	if _, err := store.Transition(store.ItemReceived, "teleported"); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestAppendDecisionsRefusesAndWritesNothing(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	receive(t, s, "371502", "371502-1", 2)
	err := pg.WithTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := store.AppendDecisions(ctx, tx, []store.Decision{
			{County: "371502", BatchID: "371502-1", USCC: "371502-1-0000", Kind: store.KindInPublicity, OccurredAt: at},
			{County: "371502", BatchID: "371502-1", USCC: "371502-1-0001", Kind: store.KindPaid, OccurredAt: at},
		})
		return err
	})
	if !errors.Is(err, fault.ErrFailedPrecondition) {
		t.Fatalf("err = %v", err)
	}
	ds, _, err := s.PullDecisions(ctx, []string{"371502"}, nil, 100)
	if err != nil || len(ds) != 2 {
		t.Fatalf("feed %v, %v: want the 2 intake decisions only", ds, err)
	}
	items, _ := s.Items(ctx, "371502", "371502-1")
	for _, it := range items {
		if it.State != store.ItemReceived || it.LastSequence > 2 {
			t.Fatalf("item changed: %+v", it)
		}
	}
	// The next append gets sequence 3: the refused one left no hole.
	err = pg.WithTx(ctx, pool, func(tx pgx.Tx) error {
		d, err := store.AppendDecision(ctx, tx, store.Decision{County: "371502", BatchID: "371502-1", USCC: "371502-1-0000", Kind: store.KindInPublicity, RoundID: "R7", OccurredAt: at})
		if err == nil && d.Seq != 3 {
			err = fmt.Errorf("sequence %d, want 3", d.Seq)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	items, _ = s.Items(ctx, "371502", "371502-1")
	if items[0].State != store.ItemInPublicity || items[0].RoundID != "R7" || items[0].LastSequence != 3 {
		t.Fatalf("item %+v", items[0])
	}
}

// TestDecisionFeedIsGaplessUnderConcurrentAppends appends from many
// transactions at once, a third of them rolled back, while readers pull:
// every pull sees a gapless run after its position, and the feed ends
// gapless.
func TestDecisionFeedIsGaplessUnderConcurrentAppends(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	const writers, perWriter = 8, 10
	receive(t, s, "371502", "371502-1", writers*perWriter)
	receive(t, s, "371521", "371521-1", writers*perWriter)
	start := int64(writers * perWriter) // the intake's decisions

	var wg sync.WaitGroup
	errs := make(chan error, 4*writers)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				n := w*perWriter + i
				rollback := errors.New("rolled back on purpose")
				err := pg.WithTx(ctx, pool, func(tx pgx.Tx) error {
					// Both counties in one transaction, in varying order.
					ds := []store.Decision{
						{County: "371521", BatchID: "371521-1", USCC: fmt.Sprintf("371521-1-%04d", n), Kind: store.KindInPublicity, OccurredAt: at},
						{County: "371502", BatchID: "371502-1", USCC: fmt.Sprintf("371502-1-%04d", n), Kind: store.KindInPublicity, OccurredAt: at},
					}
					if n%2 == 0 {
						ds[0], ds[1] = ds[1], ds[0]
					}
					if _, err := store.AppendDecisions(ctx, tx, ds); err != nil {
						return err
					}
					if n%3 == 0 {
						return rollback
					}
					return nil
				})
				if err != nil && !errors.Is(err, rollback) {
					errs <- err
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			after := map[string]int64{"371502": start, "371521": start}
			for {
				select {
				case <-done:
					return
				default:
				}
				ds, _, err := s.PullDecisions(ctx, []string{"371502", "371521"}, after, 7)
				if err != nil {
					errs <- err
					return
				}
				for _, d := range ds {
					if d.Seq != after[d.County]+1 {
						errs <- fmt.Errorf("county %s: saw %d after %d", d.County, d.Seq, after[d.County])
						return
					}
					after[d.County] = d.Seq
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	committed := int64(0)
	for n := range writers * perWriter {
		if n%3 != 0 {
			committed++
		}
	}
	for _, county := range []string{"371502", "371521"} {
		ds, more, err := s.PullDecisions(ctx, []string{county}, nil, store.MaxPull)
		if err != nil || more {
			t.Fatal(err, more)
		}
		if int64(len(ds)) != start+committed {
			t.Fatalf("county %s: %d decisions, want %d", county, len(ds), start+committed)
		}
		for i, d := range ds {
			if d.Seq != int64(i+1) {
				t.Fatalf("county %s: decision %d has sequence %d", county, i, d.Seq)
			}
		}
	}
}

func TestPullDecisionsRefusesAPositionNotIssued(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	receive(t, s, "371502", "371502-1", 2)
	if _, _, err := s.PullDecisions(ctx, []string{"371502"}, map[string]int64{"371502": 3}, 10); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("position beyond the feed: %v", err)
	}
	if _, _, err := s.PullDecisions(ctx, []string{"371521"}, map[string]int64{"371521": 1}, 10); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("position in an empty feed: %v", err)
	}
	ds, more, err := s.PullDecisions(ctx, []string{"371502"}, map[string]int64{"371502": 2}, 10)
	if err != nil || len(ds) != 0 || more {
		t.Fatalf("at the end: %v, %v, %v", ds, more, err)
	}
}

func TestReceiveBatchIsAudited(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	receive(t, s, "371502", "371502-1", 3)
	entries, err := audit.List(ctx, pool, audit.Filter{Domain: store.AuditDomain})
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries %v, %v", entries, err)
	}
	e := entries[0]
	if e.Action != "batch.receive" || e.ObjectID != "371502/371502-1" || e.Actor.Subject != "node-1" || !strings.Contains(e.Detail, `"received":3`) {
		t.Fatalf("entry %+v", e)
	}
}

func TestMigrationsHoldTheAuditLog(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(store.Migrations, "0001_intake.sql")
	if err != nil {
		t.Fatal(err)
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if !strings.Contains(squash(string(b)), squash(audit.DDL)) {
		t.Fatal("0001_intake.sql does not hold audit.DDL as it is")
	}
}
