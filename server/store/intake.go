package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// Batch is a batch as pushed by a county node, its items already
// re-checked by the caller (Item.Rejections).
type Batch struct {
	County      string
	ID          string
	ContentHash string // lowercase hex SHA-256 of Content
	Content     []byte // the deterministic encoding of wengang.v1.BatchContent
	ScreeningID string
	DatasetHash string
	PolicyID    string
	PolicyYear  int
	AsOf        civil.Date
	ItemCount   int64
	TotalFen    int64
	SealedAt    time.Time
	SealedBy    string
	Items       []Item // each USCC once
}

// Item is one enterprise of a pushed batch with the outcome of the
// re-check of its own facts.
type Item struct {
	USCC                string
	Name                string
	Size                refund.Size
	MonthsPaid          int32
	BaseFen             int64 // as claimed
	RefundFen           int64 // as claimed
	RecomputedBaseFen   int64 // from the evidence
	RecomputedRefundFen int64 // from the evidence under the policy
	Payee               refund.Account
	USCCVerified        bool
	Encoded             []byte      // the deterministic encoding of wengang.v1.BatchItem
	Rejections          []Rejection // empty when the re-check passed
}

// Receipt is the city's answer to a push: the same for every replay.
type Receipt struct {
	BatchID     string
	ContentHash string
	ReceivedAt  time.Time
	Received    Tally // items accepted at intake
	Rejected    Tally // items rejected at intake
	Conflict    Tally // items frozen by a cross-county conflict
	Replay      bool  // the batch was already stored; this is the first answer again
}

// ReceiveBatch stores b exactly once, keyed by county and id, and decides
// each of its items in the same transaction, appending one decision per
// item to the county's feed:
//
//   - an item with rejections is rejected with them;
//   - an enterprise already live in another batch of the same county, or in
//     another county's item that is in a round or later, is rejected as a
//     duplicate (already paid, when paid);
//   - an enterprise live but not yet in a round in another county's item
//     makes a cross-county conflict (跨县重复): both items move to conflict,
//     each county hearing it through its feed, until a city administrator
//     resolves it;
//   - any other item is received.
//
// Intakes of one policy year are serialized, so two counties pushing the
// same enterprise at once still meet. A replay (same county, id and hash)
// returns the first receipt with Replay set and changes nothing; the same id
// with another hash is fault.ErrConflict and changes nothing. The change is
// audited in the city's log under actor.
func (s *Store) ReceiveBatch(ctx context.Context, actor access.Principal, b Batch, now time.Time) (Receipt, error) {
	if b.County == "" || b.ID == "" || len(b.Items) == 0 {
		return Receipt{}, fault.New(fault.ErrInvalid, "receive batch: county, id and items are required")
	}
	now = timestamp(now)
	var rc Receipt
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('intake:' || $1::int, 0))`, b.PolicyYear); err != nil {
			return err
		}
		var err error
		rc, err = firstReceipt(ctx, tx, b.County, b.ID)
		switch {
		case err == nil && rc.ContentHash == b.ContentHash:
			rc.Replay = true
			return nil
		case err == nil:
			return fault.New(fault.ErrConflict, "batch %s of county %s was received with another content (content hash %s); a changed batch needs a new id (批次号已被其他内容使用)",
				b.ID, b.County, rc.ContentHash)
		case fault.Kind(err) != fault.ErrNotFound:
			return err
		}
		rc, err = receive(ctx, tx, actor, b, now)
		return err
	})
	if err != nil {
		return Receipt{}, fail(err, "receive batch %s of county %s", b.ID, b.County)
	}
	return rc, nil
}

// firstReceipt returns the stored answer to batch id of county, or
// fault.ErrNotFound.
func firstReceipt(ctx context.Context, q pgx.Tx, county, id string) (Receipt, error) {
	rc := Receipt{BatchID: id}
	err := q.QueryRow(ctx, `SELECT content_hash, received_at, received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen
		FROM received_batch WHERE county = $1 AND id = $2`, county, id).Scan(
		&rc.ContentHash, &rc.ReceivedAt, &rc.Received.Count, &rc.Received.AmountFen,
		&rc.Rejected.Count, &rc.Rejected.AmountFen, &rc.Conflict.Count, &rc.Conflict.AmountFen)
	if errors.Is(err, pgx.ErrNoRows) {
		return Receipt{}, fault.New(fault.ErrNotFound, "no batch %s of county %s", id, county)
	}
	rc.ReceivedAt = rc.ReceivedAt.UTC()
	return rc, err
}

// liveItem is an item of an earlier batch that still claims its enterprise.
type liveItem struct {
	county, batchID, uscc string
	state                 ItemState
	conflictID            string
	amountFen             int64 // the refund the city recomputed for it
}

func receive(ctx context.Context, tx pgx.Tx, actor access.Principal, b Batch, now time.Time) (Receipt, error) {
	usccs := make([]string, len(b.Items))
	for i := range b.Items {
		usccs[i] = b.Items[i].USCC
	}
	// The enterprise's live items in earlier batches, locked: intake may
	// move them to conflict.
	rows, err := tx.Query(ctx, `SELECT county, batch_id, uscc, state, conflict_id, recomputed_refund_fen FROM received_item
		WHERE policy_year = $1 AND uscc = ANY($2) AND state NOT IN ('rejected', 'removed')
		ORDER BY uscc, county, batch_id FOR UPDATE`, b.PolicyYear, usccs)
	if err != nil {
		return Receipt{}, err
	}
	live := make(map[string][]liveItem)
	var li liveItem
	if _, err := pgx.ForEachRow(rows, []any{&li.county, &li.batchID, &li.uscc, &li.state, &li.conflictID, &li.amountFen}, func() error {
		live[li.uscc] = append(live[li.uscc], li)
		return nil
	}); err != nil {
		return Receipt{}, err
	}

	rc := Receipt{BatchID: b.ID, ContentHash: b.ContentHash, ReceivedAt: now}
	var ds []Decision
	type party struct {
		conflictID string
		county     string
		batchID    string
		uscc       string
	}
	var parties []party
	var conflictIDs []string
	for i := range b.Items {
		it := &b.Items[i]
		d := Decision{County: b.County, BatchID: b.ID, USCC: it.USCC, AmountFen: it.RecomputedRefundFen, OccurredAt: now}
		rej := it.Rejections
		if len(rej) == 0 {
			rej = duplicateOf(b.County, live[it.USCC])
		}
		if len(rej) > 0 {
			d.Kind, d.Rejections, d.Reason = KindRejected, rej, rejectedReason(rej)
			rc.Rejected.add(it.RefundFen)
			ds = append(ds, d)
			continue
		}
		others := live[it.USCC]
		if len(others) == 0 {
			d.Kind, d.Reason = KindReceived, "已接收，市级复核通过 (received; the city's re-check passed)"
			rc.Received.add(it.RefundFen)
			ds = append(ds, d)
			continue
		}
		// A cross-county conflict: join the open one or open one.
		id, err := openConflict(ctx, tx, b.PolicyYear, it.USCC, now)
		if err != nil {
			return Receipt{}, err
		}
		conflictIDs = append(conflictIDs, id)
		var names []string
		for _, o := range others {
			names = append(names, o.county+" "+o.batchID)
			parties = append(parties, party{id, o.county, o.batchID, o.uscc})
			if o.state == ItemReceived {
				ds = append(ds, Decision{County: o.county, BatchID: o.batchID, USCC: o.uscc, Kind: KindConflict, ConflictID: id, OccurredAt: now,
					Reason:    fmt.Sprintf("跨县重复：县 %s 的批次 %s 也有该企业，待市级裁定 (the same enterprise is in county %s's batch %s; frozen until the city resolves conflict %s)", b.County, b.ID, b.County, b.ID, id),
					AmountFen: o.amountFen})
			}
		}
		parties = append(parties, party{id, b.County, b.ID, it.USCC})
		d.Kind, d.ConflictID = KindConflict, id
		d.Reason = fmt.Sprintf("跨县重复：该企业已在 %s 的批次中，待市级裁定 (the same enterprise is in %s; frozen until the city resolves conflict %s)",
			strings.Join(names, "、"), strings.Join(names, ", "), id)
		rc.Conflict.add(it.RefundFen)
		ds = append(ds, d)
	}

	_, err = tx.Exec(ctx, `INSERT INTO received_batch (county, id, content_hash, content, screening_id, dataset_hash, as_of, policy_id, policy_year,
			item_count, total_fen, sealed_at, sealed_by, pushed_by, received_at,
			received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		b.County, b.ID, b.ContentHash, b.Content, b.ScreeningID, b.DatasetHash, dateValue(b.AsOf), b.PolicyID, b.PolicyYear,
		b.ItemCount, b.TotalFen, nullTime(b.SealedAt), b.SealedBy, actor.Subject, now,
		rc.Received.Count, rc.Received.AmountFen, rc.Rejected.Count, rc.Rejected.AmountFen, rc.Conflict.Count, rc.Conflict.AmountFen)
	if err != nil {
		return Receipt{}, err
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"received_item"}, []string{
		"county", "batch_id", "uscc", "policy_year", "name", "size", "months_paid", "base_fen", "refund_fen",
		"recomputed_base_fen", "recomputed_refund_fen", "payee_kind", "payee_bank", "payee_bank_code", "payee_account_no",
		"payee_account_name", "uscc_verified", "item", "state", "updated_at",
	}, pgx.CopyFromSlice(len(b.Items), func(i int) ([]any, error) {
		it := &b.Items[i]
		kind := ""
		if it.Payee.Kind != 0 {
			kind = it.Payee.Kind.String()
		}
		return []any{
			b.County, b.ID, it.USCC, b.PolicyYear, it.Name, it.Size.String(), it.MonthsPaid, it.BaseFen, it.RefundFen,
			it.RecomputedBaseFen, it.RecomputedRefundFen, kind, it.Payee.Bank, it.Payee.BankCode, it.Payee.AccountNo,
			it.Payee.AccountName, it.USCCVerified, it.Encoded, string(ItemPending), now,
		}, nil
	}))
	if err != nil {
		return Receipt{}, err
	}
	for _, p := range parties {
		if _, err := tx.Exec(ctx, `INSERT INTO conflict_party (county, conflict_id, batch_id, uscc, added_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, p.county, p.conflictID, p.batchID, p.uscc, now); err != nil {
			return Receipt{}, err
		}
	}
	if _, err := AppendDecisions(ctx, tx, ds); err != nil {
		return Receipt{}, err
	}
	detail, _ := json.Marshal(map[string]any{
		"content_hash": b.ContentHash, "items": len(b.Items), "total_fen": b.TotalFen,
		"received": rc.Received.Count, "rejected": rc.Rejected.Count, "conflict": rc.Conflict.Count, "conflicts": conflictIDs,
	})
	_, err = audit.Append(ctx, tx, audit.Entry{
		Domain: AuditDomain, At: now, Actor: actor, Action: "batch.receive",
		ObjectType: "batch", ObjectID: b.County + "/" + b.ID, Detail: string(detail),
	})
	return rc, err
}

// duplicateOf returns the rejection of an enterprise whose earlier live
// items (others) already claim it, or nil when none does or only other
// counties' items that are not yet in a round do (a conflict instead).
func duplicateOf(county string, others []liveItem) []Rejection {
	for _, o := range others {
		if o.state == ItemPaid {
			return []Rejection{{Code: RejectAlreadyPaid, Detail: fmt.Sprintf("该企业本年度已由县 %s 的批次 %s 支付 (already paid for the policy year through county %s's batch %s)", o.county, o.batchID, o.county, o.batchID)}}
		}
	}
	for _, o := range others {
		if o.county == county {
			return []Rejection{{Code: RejectDuplicate, Detail: fmt.Sprintf("该企业已在本县批次 %s 中 (already in this county's batch %s)", o.batchID, o.batchID)}}
		}
		if o.state != ItemReceived && o.state != ItemConflict {
			return []Rejection{{Code: RejectDuplicate, Detail: fmt.Sprintf("该企业已进入县 %s 批次 %s 的公示或支付流程 (already %s in county %s's batch %s)", o.county, o.batchID, o.state, o.county, o.batchID)}}
		}
	}
	return nil
}

// openConflict returns the id of the open conflict about the enterprise,
// creating it when there is none.
func openConflict(ctx context.Context, tx pgx.Tx, year int, uscc string, now time.Time) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM conflict WHERE policy_year = $1 AND uscc = $2 AND state = 'open'`, year, uscc).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	err = tx.QueryRow(ctx, `INSERT INTO conflict (id, policy_year, uscc, created_at)
		VALUES ('CF' || $1::int || '-' || lpad(nextval('conflict_number')::text, 6, '0'), $1, $2, $3) RETURNING id`, year, uscc, now).Scan(&id)
	return id, err
}

// rejectedReason sums up rejections for the clerk.
func rejectedReason(rs []Rejection) string {
	codes := make([]string, len(rs))
	for i, r := range rs {
		codes[i] = string(r.Code)
	}
	return "市级复核未通过 (rejected at intake): " + strings.Join(codes, ", ")
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
