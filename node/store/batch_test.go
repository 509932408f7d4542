package store_test

import (
	"context"
	"testing"
	"time"

	"wengang/internal/fault"
	"wengang/node/store"
	"wengang/policy/access"
)

// The unique index batch_item_live is the last guard: a seal function that
// tried to batch a unit already in a live batch fails, and nothing is
// stored.
func TestSealBatchUniqueLiveItem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	id := ntScreening(t, s, pool, countyA)
	at := time.Date(2022, 4, 25, 2, 0, 0, 0, time.UTC)
	sealAll := func(_ context.Context, in *store.SealInput) (store.SealOutput, error) {
		out := store.SealOutput{Content: []byte(in.BatchID), ContentHash: "h-" + in.BatchID}
		for _, u := range in.Units { // ignores LiveBatchID on purpose
			out.Items = append(out.Items, store.SealedItem{USCC: u.BatchUSCC(), Name: u.Name, RefundFen: u.RefundFen})
			out.TotalFen += u.RefundFen
		}
		return out, nil
	}
	req := store.SealRequest{ScreeningID: id, IdempotencyKey: "k1", SealedBy: access.System("test"), SealedAt: at}
	b, replayed, err := s.SealBatch(ctx, countyA, req, sealAll)
	if err != nil || replayed || b.ID != countyA+"-B000001" || b.ItemCount != 3 {
		t.Fatalf("first seal: %+v, %v, %v", b, replayed, err)
	}
	req.IdempotencyKey = "k2"
	_, _, err = s.SealBatch(ctx, countyA, req, sealAll)
	wantKind(t, err, fault.ErrConflict)
	var batches int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM batch`).Scan(&batches); err != nil || batches != 1 {
		t.Errorf("%d batches (%v), want 1", batches, err)
	}
	// Another county's screening is not found, whatever its id.
	req.IdempotencyKey = "k3"
	_, _, err = s.SealBatch(ctx, countyB, req, sealAll)
	wantKind(t, err, fault.ErrNotFound)
	_, err = s.GetBatch(ctx, countyB, b.ID)
	wantKind(t, err, fault.ErrNotFound)
}
