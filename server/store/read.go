package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/civil"
)

// ReceivedBatch is a batch as the city holds it, with the first answer to
// its push.
type ReceivedBatch struct {
	County      string
	ID          string
	ContentHash string
	Content     []byte
	ScreeningID string
	DatasetHash string
	PolicyID    string
	PolicyYear  int
	AsOf        civil.Date
	ItemCount   int64
	TotalFen    int64
	SealedAt    time.Time
	SealedBy    string
	PushedBy    string
	Receipt     Receipt
}

// GetBatch returns received batch id of county, or fault.ErrNotFound.
func (s *Store) GetBatch(ctx context.Context, county, id string) (ReceivedBatch, error) {
	b := ReceivedBatch{County: county, ID: id}
	var (
		asOf   pgtype.Date
		sealed *time.Time
		rc     = &b.Receipt
	)
	err := s.pool.QueryRow(ctx, `SELECT content_hash, content, screening_id, dataset_hash, policy_id, policy_year, as_of, item_count, total_fen,
			sealed_at, sealed_by, pushed_by, received_at, received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen
		FROM received_batch WHERE county = $1 AND id = $2`, county, id).Scan(
		&b.ContentHash, &b.Content, &b.ScreeningID, &b.DatasetHash, &b.PolicyID, &b.PolicyYear, &asOf, &b.ItemCount, &b.TotalFen,
		&sealed, &b.SealedBy, &b.PushedBy, &rc.ReceivedAt, &rc.Received.Count, &rc.Received.AmountFen,
		&rc.Rejected.Count, &rc.Rejected.AmountFen, &rc.Conflict.Count, &rc.Conflict.AmountFen)
	if err != nil {
		return ReceivedBatch{}, fail(err, "get batch %s of county %s", id, county)
	}
	b.AsOf = civilDate(asOf)
	if sealed != nil {
		b.SealedAt = sealed.UTC()
	}
	rc.BatchID, rc.ContentHash, rc.ReceivedAt = id, b.ContentHash, rc.ReceivedAt.UTC()
	return b, nil
}

// ItemStatus is a received item's state on the city.
type ItemStatus struct {
	County              string
	BatchID             string
	USCC                string
	PolicyYear          int
	Name                string
	RefundFen           int64 // as claimed
	RecomputedRefundFen int64
	State               ItemState
	Rejections          []Rejection
	ConflictID          string
	RoundID             string
	InstructionID       string
	LastSequence        int64
	UpdatedAt           time.Time
}

// Items returns the items of received batch id of county in USCC order
// (none when there is no such batch).
func (s *Store) Items(ctx context.Context, county, batchID string) ([]ItemStatus, error) {
	rows, err := s.pool.Query(ctx, `SELECT county, batch_id, uscc, policy_year, name, refund_fen, recomputed_refund_fen, state, rejections,
			conflict_id, round_id, instruction_id, last_sequence, updated_at
		FROM received_item WHERE county = $1 AND batch_id = $2 ORDER BY uscc`, county, batchID)
	if err != nil {
		return nil, fail(err, "items of batch %s of county %s", batchID, county)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ItemStatus, error) {
		var (
			it    ItemStatus
			state string
			rej   []byte
		)
		err := row.Scan(&it.County, &it.BatchID, &it.USCC, &it.PolicyYear, &it.Name, &it.RefundFen, &it.RecomputedRefundFen, &state, &rej,
			&it.ConflictID, &it.RoundID, &it.InstructionID, &it.LastSequence, &it.UpdatedAt)
		if err != nil {
			return ItemStatus{}, err
		}
		it.State, it.UpdatedAt = ItemState(state), it.UpdatedAt.UTC()
		it.Rejections, err = parseRejections(rej)
		return it, err
	})
	if err != nil {
		return nil, fail(err, "items of batch %s of county %s", batchID, county)
	}
	return out, nil
}

// ConflictParty is one county's item in a conflict.
type ConflictParty struct {
	County  string
	BatchID string
	AddedAt time.Time
}

// Conflict is one enterprise in live items of two or more counties.
type Conflict struct {
	ID          string
	PolicyYear  int
	USCC        string
	Open        bool
	KeptCounty  string
	KeptBatchID string
	Reason      string
	ResolvedBy  string
	CreatedAt   time.Time
	ResolvedAt  time.Time
	Parties     []ConflictParty // in order of receipt of their batches
}

// GetConflict returns conflict id with its parties, or fault.ErrNotFound.
func (s *Store) GetConflict(ctx context.Context, id string) (Conflict, error) {
	c := Conflict{ID: id}
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var (
			state    string
			resolved *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT policy_year, uscc, state, kept_county, kept_batch_id, reason, resolved_by, created_at, resolved_at
			FROM conflict WHERE id = $1`, id).Scan(&c.PolicyYear, &c.USCC, &state, &c.KeptCounty, &c.KeptBatchID, &c.Reason, &c.ResolvedBy, &c.CreatedAt, &resolved)
		if err != nil {
			if err == pgx.ErrNoRows {
				return fault.New(fault.ErrNotFound, "no conflict %s", id)
			}
			return err
		}
		c.Open, c.CreatedAt = state == "open", c.CreatedAt.UTC()
		if resolved != nil {
			c.ResolvedAt = resolved.UTC()
		}
		rows, err := tx.Query(ctx, `SELECT p.county, p.batch_id, p.added_at FROM conflict_party p
			JOIN received_batch b ON b.county = p.county AND b.id = p.batch_id
			WHERE p.conflict_id = $1 ORDER BY b.received_at, p.county, p.batch_id`, id)
		if err != nil {
			return err
		}
		c.Parties, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ConflictParty, error) {
			var p ConflictParty
			err := row.Scan(&p.County, &p.BatchID, &p.AddedAt)
			p.AddedAt = p.AddedAt.UTC()
			return p, err
		})
		return err
	})
	if err != nil {
		return Conflict{}, fail(err, "get conflict %s", id)
	}
	return c, nil
}
