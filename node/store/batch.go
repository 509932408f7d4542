package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// BatchState is a batch's delivery state on the node: sealed (in the
// outbox), delivered (the city acknowledged it) or refused (the city
// refused it as a whole).
type BatchState string

// Batch states.
const (
	BatchSealed    BatchState = "sealed"
	BatchDelivered BatchState = "delivered"
	BatchRefused   BatchState = "refused"
)

// Batch is a sealed batch as the node keeps it.
type Batch struct {
	County        string
	ID            string // such as 371502-B000001
	ScreeningID   int64
	PolicyYear    int
	Content       []byte // the deterministic encoding of wengang.v1.BatchContent (GetBatch only)
	ContentHash   string // lowercase hex SHA-256 of Content
	ItemCount     int64
	TotalFen      int64
	State         BatchState
	SealedBy      string
	SealedAt      time.Time
	PushAttempts  int
	LastPushError string
	DeliveredAt   time.Time // zero until delivered
	// The units the seal left out, as its first answer counted them.
	ObjectedCount       int64
	AlreadyBatchedCount int64
	HoldCount           int64
	// ItemsByState tallies the batch's items (count and sealed refunds) by
	// item state, in ItemStates order, non-empty states only.
	ItemsByState []ItemTally
}

// ItemTally counts a batch's items in one state, with their refunds.
type ItemTally struct {
	State     string // one of ItemStates
	Count     int64
	AmountFen int64
}

// ItemStates are the states of a batch item as the node knows them, in the
// order of wengang.v1.ItemState: the state the city's decisions gave it
// (unit_status), else "rejected" when its batch was refused or it is no
// longer live, else "pending".
var ItemStates = []string{"pending", "received", "rejected", "conflict", "in_round", "in_publicity",
	"objected", "removed", "released", "paid", "returned"}

// SealUnit is one unit of the screening as SealBatch gives it to the seal
// function: its current result, what keeps it out of a batch, and the
// review that reinstated it.
type SealUnit struct {
	USCC             string // the screening result's key, as the units file has it
	CorrectedUSCC    string // the right code recorded by a reviewer; "" when none
	Name             string
	UnitCounty       string
	Industry         string
	Size             refund.Size
	Status           refund.Status
	HeadcountStart   int32
	HeadcountEnd     int32
	MonthsPaid       int32
	BaseFen          int64
	RefundFen        int64
	Decision         refund.Decision
	Reasons          refund.Reasons
	ScreenedDecision refund.Decision
	Payee            refund.Account // Kind 0: none
	USCCVerified     bool
	// Objection is the state of the unit's blocking objection for this
	// screening: open or upheld; "" when it has none.
	Objection ObjectionState
	// LiveBatchID names the live batch of the policy year that holds the
	// unit already; "" when none.
	LiveBatchID string
	// Override is the reviewer's reinstatement of a unit the rules found
	// ineligible; nil when none.
	Override *ReviewOverride
}

// BatchUSCC is the code the unit is batched under: the corrected one when a
// reviewer recorded it, else the screening's.
func (u *SealUnit) BatchUSCC() string {
	if u.CorrectedUSCC != "" {
		return u.CorrectedUSCC
	}
	return u.USCC
}

// ReviewOverride is a reviewer's reinstatement of a unit.
type ReviewOverride struct {
	ReviewID string
	Reason   string
	Reviewer string
	Waived   refund.Reasons // the refusal reasons set aside
}

// MonthlySum sums one month's contribution rows of one unit as they stood
// at the screening's as-of date; late fees are never included.
type MonthlySum struct {
	Period          civil.Month
	Rows            int32
	UnpaidRows      int32 // unpaid at the as-of date (paid later or never)
	PaidEmployerFen int64
	PaidEmployeeFen int64
	UnpaidFen       int64 // employer plus employee parts of the unpaid rows
	LastPaidOn      civil.Date
}

// SealInput is what the seal function of SealBatch decides on. Its
// Contributions method reads within the sealing transaction.
type SealInput struct {
	BatchID   string // the id the batch will have
	SealedAt  time.Time
	SealedBy  access.Principal
	Screening ScreeningFacts
	Units     []SealUnit // the selected units, by USCC
	tx        pgx.Tx
}

// Contributions returns, for each of usccs (screening keys), its months
// with contribution rows up to the policy's months_through, in period
// order, summed as they stood at the screening's as-of date.
func (in *SealInput) Contributions(ctx context.Context, usccs []string) (map[string][]MonthlySum, error) {
	f := &in.Screening
	rows, err := in.tx.Query(ctx, `SELECT uscc, period, count(*)::int, (count(*) FILTER (WHERE NOT paid))::int,
			coalesce(sum(employer_fen) FILTER (WHERE paid), 0), coalesce(sum(employee_fen) FILTER (WHERE paid), 0),
			coalesce(sum(employer_fen::numeric + employee_fen) FILTER (WHERE NOT paid), 0),
			max(paid_on) FILTER (WHERE paid)
		FROM (SELECT uscc, period, employer_fen, employee_fen, paid_on, coalesce(paid_on <= $4, false) AS paid
			FROM dataset_contribution WHERE county = $1 AND dataset_id = $2 AND uscc = ANY($3) AND period <= $5) c
		GROUP BY uscc, period ORDER BY uscc, period`,
		f.County, f.DatasetID, usccs, dateParam(f.AsOf), int32(f.Policy.MonthsThrough))
	if err != nil {
		return nil, fmt.Errorf("contributions: %w", err)
	}
	out := make(map[string][]MonthlySum, len(usccs))
	var (
		uscc   string
		period int32
		m      MonthlySum
		last   pgtype.Date
	)
	_, err = pgx.ForEachRow(rows, []any{&uscc, &period, &m.Rows, &m.UnpaidRows, &m.PaidEmployerFen, &m.PaidEmployeeFen, &m.UnpaidFen, &last}, func() error {
		m.Period, m.LastPaidOn = civil.Month(period), civilDate(last)
		out[uscc] = append(out[uscc], m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("contributions: %w", err)
	}
	return out, nil
}

// dateParam is d as a query parameter (a date at midnight UTC).
func dateParam(d civil.Date) time.Time {
	return time.Date(d.Year(), time.Month(d.Month()), d.Day(), 0, 0, 0, 0, time.UTC)
}

// SealedItem is one item of a batch to store.
type SealedItem struct {
	USCC      string // as batched (SealUnit.BatchUSCC)
	Name      string
	RefundFen int64
}

// SealOutput is the batch the seal function built.
type SealOutput struct {
	Content     []byte // deterministic encoding of the BatchContent
	ContentHash string
	Items       []SealedItem // at least one
	TotalFen    int64
	// The units left out, for the answer.
	ObjectedCount, AlreadyBatchedCount, HoldCount int64
	Detail                                        string // for the audit log
}

// SealRequest asks SealBatch for a batch.
type SealRequest struct {
	ScreeningID    int64
	USCCs          []string // only these units; empty: every unit
	IdempotencyKey string
	RequestSHA256  [32]byte // what the key is used for
	SealedBy       access.Principal
	SealedAt       time.Time
}

// SealBatch seals a batch of screening req.ScreeningID of county in one
// transaction. Seals of a county are serialized, so seal sees every batch
// and objection committed before it: it is given the selected units (all
// the screening's units but the ineligible ones, or the listed ones, each of
// which must be a unit of the screening: fault.ErrNotFound) and returns the
// batch, or an error that SealBatch returns as it is. The batch, its items
// (live) and an audit entry are then stored, with the batch in state sealed
// and due for pushing at once (by the business clock and the database's). The unique index batch_item_live guarantees
// that a unit is in at most one live batch per policy year: a breach is
// fault.ErrConflict.
//
// A repeat of req.IdempotencyKey returns the batch first sealed under it
// and true, without calling seal; a key used for another request is
// fault.ErrConflict. A screening not in county is fault.ErrNotFound.
func (s *Store) SealBatch(ctx context.Context, county string, req SealRequest, seal func(context.Context, *SealInput) (SealOutput, error)) (Batch, bool, error) {
	if req.IdempotencyKey == "" {
		return Batch{}, false, fault.New(fault.ErrInvalid, "seal batch: the idempotency key is required")
	}
	var (
		b        Batch
		replayed bool
	)
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+sealLockKey+`)`, county); err != nil {
			return err
		}
		var sum []byte
		err := tx.QueryRow(ctx, `SELECT request_sha256 FROM batch WHERE county = $1 AND idempotency_key = $2`, county, req.IdempotencyKey).Scan(&sum)
		switch {
		case err == nil:
			if !bytes.Equal(sum, req.RequestSHA256[:]) {
				return fault.New(fault.ErrConflict, "the idempotency key %q was used for another request", req.IdempotencyKey)
			}
			replayed = true
			b, err = getBatch(ctx, tx, county, "idempotency_key = $2", req.IdempotencyKey, false)
			return err
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}

		in := &SealInput{SealedAt: req.SealedAt, SealedBy: req.SealedBy, tx: tx}
		if in.Screening, err = loadScreeningFacts(ctx, tx, county, req.ScreeningID, ""); err != nil {
			return err
		}
		if in.Units, err = sealUnits(ctx, tx, in.Screening, req.USCCs); err != nil {
			return err
		}
		if len(req.USCCs) > 0 {
			if err := checkListedUnits(req.USCCs, len(in.Units), func(i int) string { return in.Units[i].USCC }, func(int) string { return "" }); err != nil {
				return err
			}
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM batch WHERE county = $1`, county).Scan(&n); err != nil {
			return err
		}
		in.BatchID = fmt.Sprintf("%s-B%06d", county, n+1)

		out, err := seal(ctx, in)
		if err != nil {
			return err
		}
		if len(out.Items) == 0 {
			return fault.New(fault.ErrFailedPrecondition, "no unit to seal")
		}
		_, err = tx.Exec(ctx, `INSERT INTO batch (county, id, screening_id, policy_year, content, content_hash, item_count, total_fen,
				sealed_by, sealed_at, idempotency_key, next_push_at, request_sha256, objected_count, already_batched_count, hold_count)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, LEAST($10, now()), $12, $13, $14, $15)`,
			county, in.BatchID, req.ScreeningID, in.Screening.Policy.PolicyYear, out.Content, out.ContentHash, len(out.Items), out.TotalFen,
			req.SealedBy.Subject, req.SealedAt, req.IdempotencyKey, req.RequestSHA256[:], out.ObjectedCount, out.AlreadyBatchedCount, out.HoldCount)
		if err != nil {
			return err
		}
		usccs, names, refunds := make([]string, len(out.Items)), make([]string, len(out.Items)), make([]int64, len(out.Items))
		for i, it := range out.Items {
			usccs[i], names[i], refunds[i] = it.USCC, it.Name, it.RefundFen
		}
		if _, err := tx.Exec(ctx, `INSERT INTO batch_item (county, batch_id, uscc, policy_year, name, refund_fen)
			SELECT $1, $2, u.uscc, $3, u.name, u.refund_fen FROM unnest($4::text[], $5::text[], $6::bigint[]) AS u (uscc, name, refund_fen)`,
			county, in.BatchID, in.Screening.Policy.PolicyYear, usccs, names, refunds); err != nil {
			if fault.Kind(pg.Translate(err)) == fault.ErrConflict {
				return fault.New(fault.ErrConflict, "a unit of the batch is in another live batch of policy year %d: %w", in.Screening.Policy.PolicyYear, err)
			}
			return err
		}
		if _, err := audit.Append(ctx, tx, audit.Entry{
			Domain: county, At: req.SealedAt, Actor: req.SealedBy, Action: "batch.seal",
			ObjectType: "batch", ObjectID: in.BatchID, Detail: out.Detail,
		}); err != nil {
			return err
		}
		b, err = getBatch(ctx, tx, county, "id = $2", in.BatchID, false)
		return err
	})
	if err != nil {
		return Batch{}, false, fail(err, "seal a batch of screening %d of county %s", req.ScreeningID, county)
	}
	return b, replayed, nil
}

// sealUnits reads the units of screening f that a seal selects, by USCC,
// locking their results against a concurrent review (FOR SHARE).
func sealUnits(ctx context.Context, tx pgx.Tx, f ScreeningFacts, usccs []string) ([]SealUnit, error) {
	rows, err := tx.Query(ctx, `SELECT r.uscc, r.corrected_uscc, r.name, r.unit_county, r.industry, r.size, r.status,
			r.headcount_start, r.headcount_end, r.months_paid, r.base_fen, r.refund_fen, r.decision, r.reasons, r.screened_decision,
			r.payee_kind, r.payee_bank, r.payee_bank_code, r.payee_account_no, r.payee_account_name, r.uscc_verified,
			(SELECT e.objection_state FROM enterprise_response e
				WHERE e.county = r.county AND e.screening_id = r.screening_id AND e.uscc = r.uscc AND e.objection_state IN ('open', 'upheld')
				ORDER BY e.objection_state = 'open' DESC, e.id DESC LIMIT 1),
			(SELECT i.batch_id FROM batch_item i
				WHERE i.county = r.county AND i.policy_year = $3 AND i.live AND i.uscc = coalesce(nullif(r.corrected_uscc, ''), r.uscc)),
			v.id, v.reason, v.reviewer
		FROM screening_result r
		LEFT JOIN LATERAL (SELECT v.id, v.reason, v.reviewer FROM review v
			WHERE r.override = 'reinstated' AND v.county = r.county AND v.screening_id = r.screening_id AND v.uscc = r.uscc AND v.action = 'reinstate'
			ORDER BY v.id DESC LIMIT 1) v ON true
		WHERE r.county = $1 AND r.screening_id = $2 AND (($4 AND r.decision <> 'ineligible') OR r.uscc = ANY($5))
		ORDER BY r.uscc
		FOR SHARE OF r`, f.County, f.ID, f.Policy.PolicyYear, len(usccs) == 0, usccs)
	if err != nil {
		return nil, err
	}
	var (
		out                                 []SealUnit
		u                                   SealUnit
		size, payeeKind, objection, batch   pgtype.Text
		status, decision, reasons, screened string
		reviewID                            pgtype.Int8
		reviewReason, reviewer              pgtype.Text
	)
	_, err = pgx.ForEachRow(rows, []any{&u.USCC, &u.CorrectedUSCC, &u.Name, &u.UnitCounty, &u.Industry, &size, &status,
		&u.HeadcountStart, &u.HeadcountEnd, &u.MonthsPaid, &u.BaseFen, &u.RefundFen, &decision, &reasons, &screened,
		&payeeKind, &u.Payee.Bank, &u.Payee.BankCode, &u.Payee.AccountNo, &u.Payee.AccountName, &u.USCCVerified,
		&objection, &batch, &reviewID, &reviewReason, &reviewer}, func() error {
		var err error
		u.Size = parseSize(size.String)
		if u.Status = parseStatus(status); u.Status == 0 {
			return fmt.Errorf("unit %s: status %q", u.USCC, status)
		}
		if u.Decision, err = refund.ParseDecision(decision); err != nil {
			return fmt.Errorf("unit %s: %w", u.USCC, err)
		}
		if u.ScreenedDecision, err = refund.ParseDecision(screened); err != nil {
			return fmt.Errorf("unit %s: %w", u.USCC, err)
		}
		if u.Reasons, err = refund.ParseReasons(reasons); err != nil {
			return fmt.Errorf("unit %s: %w", u.USCC, err)
		}
		u.Payee.USCC, u.Payee.Kind = u.USCC, parseAccountKind(payeeKind.String) // 0 when NULL
		u.Objection, u.LiveBatchID = ObjectionState(objection.String), batch.String
		u.Override = nil
		if reviewID.Valid {
			u.Override = &ReviewOverride{ReviewID: strconv.FormatInt(reviewID.Int64, 10), Reason: reviewReason.String,
				Reviewer: reviewer.String, Waived: u.Reasons.Refusals()}
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const batchColumns = `county, id, screening_id, policy_year, content_hash, item_count, total_fen, state, sealed_by, sealed_at,
	push_attempts, last_push_error, delivered_at, objected_count, already_batched_count, hold_count`

func batchDest(b *Batch, delivered **time.Time) []any {
	return []any{&b.County, &b.ID, &b.ScreeningID, &b.PolicyYear, &b.ContentHash, &b.ItemCount, &b.TotalFen, &b.State, &b.SealedBy, &b.SealedAt,
		&b.PushAttempts, &b.LastPushError, delivered, &b.ObjectedCount, &b.AlreadyBatchedCount, &b.HoldCount}
}

// getBatch reads the batch of county matching where (on $2), with its
// content when withContent, and its item tallies.
func getBatch(ctx context.Context, q querier, county, where string, arg any, withContent bool) (Batch, error) {
	var (
		b         Batch
		delivered *time.Time
		content   = "NULL::bytea"
	)
	if withContent {
		content = "content"
	}
	err := q.QueryRow(ctx, `SELECT `+batchColumns+`, `+content+` FROM batch WHERE county = $1 AND `+where, county, arg).
		Scan(append(batchDest(&b, &delivered), &b.Content)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Batch{}, fault.New(fault.ErrNotFound, "no such batch in county %s", county)
	}
	if err != nil {
		return Batch{}, err
	}
	if delivered != nil {
		b.DeliveredAt = *delivered
	}
	bs := []Batch{b}
	if err := attachItemTallies(ctx, q, county, bs); err != nil {
		return Batch{}, err
	}
	return bs[0], nil
}

// GetBatch returns batch id of county with its content and item tallies,
// or fault.ErrNotFound.
func (s *Store) GetBatch(ctx context.Context, county, id string) (Batch, error) {
	var b Batch
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) (err error) {
		b, err = getBatch(ctx, tx, county, "id = $2", id, true)
		return err
	})
	if err != nil {
		return Batch{}, fail(err, "get batch %s", id)
	}
	return b, nil
}

// BatchFilter selects batches of a county for ListBatches.
type BatchFilter struct {
	State    BatchState // "": every state
	BeforeID string     // the last id of the previous page; "" for the first
	Limit    int        // at least 1
}

// ListBatches returns the batches of county that f selects, newest first,
// with their item tallies but without their content.
func (s *Store) ListBatches(ctx context.Context, county string, f BatchFilter) ([]Batch, error) {
	if f.Limit <= 0 {
		return nil, fault.New(fault.ErrInvalid, "list batches: the limit must be positive")
	}
	var out []Batch
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+batchColumns+` FROM batch
			WHERE county = $1 AND ($2 = '' OR state = $2) AND ($3 = '' OR id < $3)
			ORDER BY id DESC LIMIT $4`, county, string(f.State), f.BeforeID, f.Limit)
		if err != nil {
			return err
		}
		var (
			b         Batch
			delivered *time.Time
		)
		if _, err := pgx.ForEachRow(rows, batchDest(&b, &delivered), func() error {
			b.DeliveredAt = time.Time{}
			if delivered != nil {
				b.DeliveredAt = *delivered
			}
			out = append(out, b)
			return nil
		}); err != nil {
			return err
		}
		return attachItemTallies(ctx, tx, county, out)
	})
	if err != nil {
		return nil, fail(err, "list batches of county %s", county)
	}
	return out, nil
}

// attachItemTallies sets the ItemsByState of each of bs, batches of county.
func attachItemTallies(ctx context.Context, q querier, county string, bs []Batch) error {
	if len(bs) == 0 {
		return nil
	}
	ids := make([]string, len(bs))
	at := make(map[string]int, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
		at[b.ID] = i
	}
	rows, err := q.Query(ctx, `SELECT i.batch_id,
			coalesce(us.state, CASE WHEN b.state = 'refused' OR NOT i.live THEN 'rejected' ELSE 'pending' END) AS state,
			count(*), sum(i.refund_fen)::bigint
		FROM batch_item i
		JOIN batch b ON b.county = i.county AND b.id = i.batch_id
		LEFT JOIN unit_status us ON us.county = i.county AND us.batch_id = i.batch_id AND us.uscc = i.uscc
		WHERE i.county = $1 AND i.batch_id = ANY($2)
		GROUP BY 1, 2`, county, ids)
	if err != nil {
		return err
	}
	var (
		id string
		t  ItemTally
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &t.State, &t.Count, &t.AmountFen}, func() error {
		b := &bs[at[id]]
		b.ItemsByState = append(b.ItemsByState, t)
		return nil
	}); err != nil {
		return err
	}
	for i := range bs {
		sortTallies(bs[i].ItemsByState)
	}
	return nil
}

// sortTallies orders tallies by ItemStates.
func sortTallies(ts []ItemTally) {
	rank := func(s string) int {
		for i, v := range ItemStates {
			if v == s {
				return i
			}
		}
		return len(ItemStates)
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && rank(ts[j].State) < rank(ts[j-1].State); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}
