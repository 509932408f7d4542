package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// This file is the node's side of the sync with the city: the outboxes the
// sync worker drains (sealed batches, corrected accounts), the mirror of the
// city's decisions feed, and what the clerks read of it (unit statuses) and
// write back (corrected accounts).

// syncActor is the audit actor of the sync worker's changes.
var syncActor = access.System("sync-worker")

// DecisionKind is the kind of one entry of the city's decisions feed:
// wengang.v1.CityDecisionKind in lower case.
type DecisionKind string

// Decision kinds.
const (
	DecisionReceived           DecisionKind = "received"
	DecisionRejected           DecisionKind = "rejected"
	DecisionConflict           DecisionKind = "conflict"
	DecisionInPublicity        DecisionKind = "in_publicity"
	DecisionObjected           DecisionKind = "objected"
	DecisionObjectionDismissed DecisionKind = "objection_dismissed"
	DecisionRemoved            DecisionKind = "removed"
	DecisionReleased           DecisionKind = "released"
	DecisionPaid               DecisionKind = "paid"
	DecisionReturned           DecisionKind = "returned"
	DecisionReissued           DecisionKind = "reissued"
)

// decisionStates is the item state (one of ItemStates) each decision kind
// moves the county's mirror of an item to (wengang.v1.CityDecisionKind).
var decisionStates = map[DecisionKind]string{
	DecisionReceived:           "received",
	DecisionRejected:           "rejected",
	DecisionConflict:           "conflict",
	DecisionInPublicity:        "in_publicity",
	DecisionObjected:           "objected",
	DecisionObjectionDismissed: "in_publicity",
	DecisionRemoved:            "removed",
	DecisionReleased:           "released",
	DecisionPaid:               "paid",
	DecisionReturned:           "returned",
	DecisionReissued:           "released",
}

// StateAfter returns the item state a decision of kind k leads to, and
// whether k is a known kind.
func (k DecisionKind) StateAfter() (string, bool) {
	s, ok := decisionStates[k]
	return s, ok
}

// freesUnit reports whether a decision of kind k ends the item's claim on
// its unit, so that the unit may be batched again: rejected (which is also
// how a conflict resolved for another county arrives) and removed.
func (k DecisionKind) freesUnit() bool { return k == DecisionRejected || k == DecisionRemoved }

// Rejection is one reason the city refused an item.
type Rejection struct {
	Code    string   `json:"code"` // wengang.v1.RejectionCode without its prefix, such as "REFUND_MISMATCH"
	Detail  string   `json:"detail,omitempty"`
	Reasons []string `json:"reasons,omitempty"` // refund reason codes, such as "ARREARS"
}

// CityDecision is one entry of the city's decisions feed about an item of
// this node's county.
type CityDecision struct {
	County         string
	Sequence       int64 // 1, 2, 3… per county, without gaps
	Kind           DecisionKind
	BatchID        string
	USCC           string
	Reason         string
	Rejections     []Rejection
	ConflictID     string
	RoundID        string
	PublicityStart civil.Date
	PublicityEnd   civil.Date
	AmountFen      int64
	InstructionID  string
	BankReference  string
	SettledOn      civil.Date
	OccurredAt     time.Time
}

// OutboxBatch is a sealed batch the sync worker is to push.
type OutboxBatch struct {
	County       string
	ID           string
	Content      []byte // the deterministic encoding of wengang.v1.BatchContent
	ContentHash  string
	PushAttempts int // pushes tried before this one
}

// ClaimDueBatches claims up to limit sealed batches of counties whose
// next_push_at has come (at now), oldest first, for one push each: their
// next_push_at moves to now+lease, so that another worker (or this one,
// after a crash) takes them again only once the lease has run out. Batches
// locked by another claim are skipped.
func (s *Store) ClaimDueBatches(ctx context.Context, counties []string, now time.Time, lease time.Duration, limit int) ([]OutboxBatch, error) {
	rows, err := s.pool.Query(ctx, `UPDATE batch b SET next_push_at = $3
		FROM (SELECT county, id FROM batch
			WHERE state = 'sealed' AND next_push_at <= $2 AND county = ANY($1)
			ORDER BY next_push_at, county, id LIMIT $4 FOR UPDATE SKIP LOCKED) due
		WHERE b.county = due.county AND b.id = due.id
		RETURNING b.county, b.id, b.content, b.content_hash, b.push_attempts`, counties, now, now.Add(lease), limit)
	if err != nil {
		return nil, fail(err, "claim due batches")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxBatch, error) {
		var b OutboxBatch
		err := row.Scan(&b.County, &b.ID, &b.Content, &b.ContentHash, &b.PushAttempts)
		return b, err
	})
	if err != nil {
		return nil, fail(err, "claim due batches")
	}
	return out, nil
}

// BatchDelivered records that the city acknowledged batch id of county at
// at. Recording it again, or for a batch no longer sealed, changes nothing.
func (s *Store) BatchDelivered(ctx context.Context, county, id string, at time.Time, detail string) error {
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE batch SET state = 'delivered', delivered_at = $3, push_attempts = push_attempts + 1, last_push_error = ''
			WHERE county = $1 AND id = $2 AND state = 'sealed'`, county, id, at)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Entry{Domain: county, At: at, Actor: syncActor, Action: "batch.deliver",
			ObjectType: "batch", ObjectID: id, Detail: detail})
		return err
	})
	if err != nil {
		return fail(err, "record delivery of batch %s of county %s", id, county)
	}
	return nil
}

// BatchPushFailed records a failed push of batch id of county that is to
// be tried again at next.
func (s *Store) BatchPushFailed(ctx context.Context, county, id, reason string, next time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE batch SET push_attempts = push_attempts + 1, next_push_at = $4, last_push_error = $3
		WHERE county = $1 AND id = $2 AND state = 'sealed'`, county, id, reason, next)
	if err != nil {
		return fail(err, "record failed push of batch %s of county %s", id, county)
	}
	return nil
}

// BatchRefused records that the city refused batch id of county as a whole
// (it will never take it): pushing stops, and its units are free for
// another batch. Recording it for a batch no longer sealed changes nothing.
func (s *Store) BatchRefused(ctx context.Context, county, id, reason string, at time.Time) error {
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE batch SET state = 'refused', push_attempts = push_attempts + 1, last_push_error = $3
			WHERE county = $1 AND id = $2 AND state = 'sealed'`, county, id, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE batch_item SET live = false WHERE county = $1 AND batch_id = $2`, county, id); err != nil {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Entry{Domain: county, At: at, Actor: syncActor, Action: "batch.refused",
			ObjectType: "batch", ObjectID: id, Detail: reason})
		return err
	})
	if err != nil {
		return fail(err, "record refusal of batch %s of county %s", id, county)
	}
	return nil
}

// NextPushAt returns when the next batch, correction or screening report
// of counties is due to be pushed, and false when none waits.
func (s *Store) NextPushAt(ctx context.Context, counties []string) (time.Time, bool, error) {
	var next *time.Time
	err := s.pool.QueryRow(ctx, `SELECT min(t) FROM (
			SELECT min(next_push_at) AS t FROM batch WHERE state = 'sealed' AND county = ANY($1)
			UNION ALL
			SELECT min(next_push_at) FROM correction_outbox WHERE state = 'pending' AND county = ANY($1)
			UNION ALL
			SELECT min(next_push_at) FROM screening_report_outbox
				WHERE revision > pushed_revision AND revision > refused_revision AND county = ANY($1)) due`, counties).Scan(&next)
	if err != nil {
		return time.Time{}, false, fail(err, "next push")
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return *next, true, nil
}

// SyncCursor returns the city's cursor to pull county's decisions on from
// ("" at the beginning) and the highest sequence applied.
func (s *Store) SyncCursor(ctx context.Context, county string) (string, int64, error) {
	var (
		cursor string
		last   int64
	)
	err := s.pool.QueryRow(ctx, `SELECT cursor, last_sequence FROM sync_cursor WHERE county = $1`, county).Scan(&cursor, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fail(err, "sync cursor of county %s", county)
	}
	return cursor, last, nil
}

// ApplyDecisions applies a page of county's decisions feed, in sequence
// order, and keeps next as the cursor to pull on from, all in one
// transaction: each decision is logged, moves the unit status of its item
// (created on its first decision) and, when rejected or removed, frees the
// unit for another batch. A decision at or below the highest sequence
// applied is skipped: applying a page twice changes nothing. It returns how
// many decisions were new.
//
// A decision of another county, of an unknown kind, or one that skips a
// sequence (the city's feed has no gaps) is fault.ErrInvalid, and nothing
// of the page is applied.
func (s *Store) ApplyDecisions(ctx context.Context, county string, ds []CityDecision, next string, now time.Time) (int, error) {
	applied := 0
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sync_cursor (county) VALUES ($1) ON CONFLICT DO NOTHING`, county); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_sequence FROM sync_cursor WHERE county = $1 FOR UPDATE`, county).Scan(&last); err != nil {
			return err
		}
		first := last
		batch := &pgx.Batch{}
		for i := range ds {
			d := &ds[i]
			if d.County != county {
				return fault.New(fault.ErrInvalid, "decision %d is of county %s, not %s", d.Sequence, d.County, county)
			}
			state, ok := d.Kind.StateAfter()
			if !ok {
				return fault.New(fault.ErrInvalid, "decision %d of county %s has an unknown kind %q", d.Sequence, county, d.Kind)
			}
			if d.Sequence <= last {
				continue
			}
			if d.Sequence != last+1 {
				return fault.New(fault.ErrInvalid, "decision %d of county %s follows %d: the feed skipped a sequence", d.Sequence, county, last)
			}
			last = d.Sequence
			applied++
			queueDecision(batch, d, state, now)
		}
		if batch.Len() > 0 {
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE sync_cursor SET cursor = $2, last_sequence = $3, updated_at = $4 WHERE county = $1`,
			county, next, last, now); err != nil {
			return err
		}
		if applied == 0 {
			return nil
		}
		_, err := audit.Append(ctx, tx, audit.Entry{Domain: county, At: now, Actor: syncActor, Action: "sync.apply_decisions",
			ObjectType: "decisions", ObjectID: county, Detail: fmt.Sprintf("sequences %d to %d", first+1, last)})
		return err
	})
	if err != nil {
		return 0, fail(err, "apply decisions of county %s", county)
	}
	return applied, nil
}

// queueDecision queues the statements that apply one new decision.
func queueDecision(b *pgx.Batch, d *CityDecision, state string, now time.Time) {
	rej := rejectionsJSON(d.Rejections)
	b.Queue(`INSERT INTO city_decision (county, sequence, kind, batch_id, uscc, reason, rejections, conflict_id, round_id,
			publicity_start, publicity_end, amount_fen, instruction_id, bank_reference, settled_on, occurred_at, applied_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT DO NOTHING`,
		d.County, d.Sequence, string(d.Kind), d.BatchID, d.USCC, d.Reason, rej, d.ConflictID, d.RoundID,
		syncDate(d.PublicityStart), syncDate(d.PublicityEnd), d.AmountFen, d.InstructionID, d.BankReference, syncDate(d.SettledOn), d.OccurredAt, now)
	// Round, publicity dates and instruction stay from the decision that
	// set them; the bank reference and settlement date are the latest
	// decision's (a re-issue clears a return's).
	b.Queue(`INSERT INTO unit_status AS u (county, batch_id, uscc, policy_year, state, last_decision, last_sequence, reason, rejections,
			conflict_id, round_id, publicity_start, publicity_end, amount_fen, instruction_id, bank_reference, settled_on, updated_at)
		VALUES ($1, $2, $3, (SELECT policy_year FROM batch_item WHERE county = $1 AND batch_id = $2 AND uscc = $3),
			$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (county, batch_id, uscc) DO UPDATE SET
			state = EXCLUDED.state, last_decision = EXCLUDED.last_decision, last_sequence = EXCLUDED.last_sequence,
			reason = EXCLUDED.reason, rejections = EXCLUDED.rejections,
			conflict_id = CASE WHEN EXCLUDED.conflict_id <> '' THEN EXCLUDED.conflict_id ELSE u.conflict_id END,
			round_id = CASE WHEN EXCLUDED.round_id <> '' THEN EXCLUDED.round_id ELSE u.round_id END,
			publicity_start = coalesce(EXCLUDED.publicity_start, u.publicity_start),
			publicity_end = coalesce(EXCLUDED.publicity_end, u.publicity_end),
			amount_fen = CASE WHEN EXCLUDED.amount_fen <> 0 THEN EXCLUDED.amount_fen ELSE u.amount_fen END,
			instruction_id = CASE WHEN EXCLUDED.instruction_id <> '' THEN EXCLUDED.instruction_id ELSE u.instruction_id END,
			bank_reference = EXCLUDED.bank_reference, settled_on = EXCLUDED.settled_on, updated_at = EXCLUDED.updated_at
		WHERE u.last_sequence < EXCLUDED.last_sequence`,
		d.County, d.BatchID, d.USCC, state, string(d.Kind), d.Sequence, d.Reason, rej,
		d.ConflictID, d.RoundID, syncDate(d.PublicityStart), syncDate(d.PublicityEnd), d.AmountFen, d.InstructionID, d.BankReference, syncDate(d.SettledOn), now)
	if d.Kind.freesUnit() {
		b.Queue(`UPDATE batch_item SET live = false WHERE county = $1 AND batch_id = $2 AND uscc = $3`, d.County, d.BatchID, d.USCC)
	}
}

// OutboxCorrection is a corrected account the sync worker is to push.
type OutboxCorrection struct {
	County       string
	ID           string // the correction id (the clerk's idempotency key)
	BatchID      string
	USCC         string
	Account      refund.Account
	Reason       string
	CorrectedBy  string
	PushAttempts int
}

// ClaimDueCorrections claims up to limit pending corrections of counties
// that are due at now, as ClaimDueBatches claims batches.
func (s *Store) ClaimDueCorrections(ctx context.Context, counties []string, now time.Time, lease time.Duration, limit int) ([]OutboxCorrection, error) {
	rows, err := s.pool.Query(ctx, `UPDATE correction_outbox c SET next_push_at = $3
		FROM (SELECT county, id FROM correction_outbox
			WHERE state = 'pending' AND next_push_at <= $2 AND county = ANY($1)
			ORDER BY next_push_at, county, id LIMIT $4 FOR UPDATE SKIP LOCKED) due
		WHERE c.county = due.county AND c.id = due.id
		RETURNING c.county, c.id, c.batch_id, c.uscc, c.kind, c.bank, c.bank_code, c.account_no, c.account_name,
			c.reason, c.corrected_by, c.push_attempts`, counties, now, now.Add(lease), limit)
	if err != nil {
		return nil, fail(err, "claim due corrections")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxCorrection, error) {
		var (
			c    OutboxCorrection
			kind string
		)
		err := row.Scan(&c.County, &c.ID, &c.BatchID, &c.USCC, &kind, &c.Account.Bank, &c.Account.BankCode, &c.Account.AccountNo,
			&c.Account.AccountName, &c.Reason, &c.CorrectedBy, &c.PushAttempts)
		c.Account.USCC, c.Account.Kind = c.USCC, parseAccountKind(kind)
		return c, err
	})
	if err != nil {
		return nil, fail(err, "claim due corrections")
	}
	return out, nil
}

// CorrectionAccepted records that the city accepted correction id of
// county at at (instructionID: the re-issued payment's instruction, when
// the city named one). Recording it again changes nothing.
func (s *Store) CorrectionAccepted(ctx context.Context, county, id, instructionID string, at time.Time) error {
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE correction_outbox SET state = 'accepted', accepted_at = $3, instruction_id = $4,
				push_attempts = push_attempts + 1, last_push_error = ''
			WHERE county = $1 AND id = $2 AND state = 'pending'`, county, id, at, instructionID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Entry{Domain: county, At: at, Actor: syncActor, Action: "correction.deliver",
			ObjectType: "account_correction", ObjectID: id, Detail: instructionID})
		return err
	})
	if err != nil {
		return fail(err, "record acceptance of correction %s of county %s", id, county)
	}
	return nil
}

// CorrectionPushFailed records a failed push of correction id of county
// that is to be tried again at next.
func (s *Store) CorrectionPushFailed(ctx context.Context, county, id, reason string, next time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE correction_outbox SET push_attempts = push_attempts + 1, next_push_at = $4, last_push_error = $3
		WHERE county = $1 AND id = $2 AND state = 'pending'`, county, id, reason, next)
	if err != nil {
		return fail(err, "record failed push of correction %s of county %s", id, county)
	}
	return nil
}

// CorrectionRefused records that the city refused correction id of county
// for good; the clerk may record another.
func (s *Store) CorrectionRefused(ctx context.Context, county, id, reason string, at time.Time) error {
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE correction_outbox SET state = 'refused', push_attempts = push_attempts + 1, last_push_error = $3
			WHERE county = $1 AND id = $2 AND state = 'pending'`, county, id, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Entry{Domain: county, At: at, Actor: syncActor, Action: "correction.refused",
			ObjectType: "account_correction", ObjectID: id, Detail: reason})
		return err
	})
	if err != nil {
		return fail(err, "record refusal of correction %s of county %s", id, county)
	}
	return nil
}

// UnitStatus is the county's mirror of the city's decisions on one batch
// item (wengang.v1.UnitStatus).
type UnitStatus struct {
	County      string
	USCC        string
	Name        string
	BatchID     string
	ScreeningID int64
	PolicyYear  int
	RefundFen   int64 // as sealed
	Size        refund.Size
	// State is one of ItemStates: "pending" until the city's first
	// decision, "rejected" when its batch was refused as a whole.
	State            string
	LastDecision     DecisionKind // "" while pending
	DecisionSequence int64        // 0 while pending
	Reason           string
	Rejections       []Rejection
	ConflictID       string
	RoundID          string
	PublicityStart   civil.Date
	PublicityEnd     civil.Date
	AmountFen        int64 // the amount the city holds
	InstructionID    string
	BankReference    string
	SettledOn        civil.Date
	// Payee is the account to pay: the latest correction on its way or
	// accepted, else the screening's.
	Payee             refund.Account
	CorrectionPending bool
	UpdatedAt         time.Time
}

// UnitStatusFilter selects unit statuses of one county.
type UnitStatusFilter struct {
	County     string
	BatchID    string   // "": every batch
	USCC       string   // "": every unit
	States     []string // of ItemStates; empty: every state
	AfterUSCC  string   // the page goes on after (AfterUSCC, AfterBatch)
	AfterBatch string
	Limit      int // at least 1
}

// unitStatusQuery selects the unit statuses of a county's batch items,
// computed from the batch item, its batch, the mirror row, the screening
// result (size, payee) and the latest correction; $1 is the county. The
// items of a batch the city refused as a whole are rejected with the
// city's words, whatever the feed says about that batch id (the city's
// decisions then concern the content it holds under the id, not this one).
const unitStatusQuery = `SELECT * FROM (
	SELECT bi.county, bi.uscc, bi.name, bi.batch_id, b.screening_id, bi.policy_year, bi.refund_fen, coalesce(sr.size, ''),
		coalesce(us.state, CASE WHEN b.state = 'refused' THEN 'rejected' ELSE 'pending' END) AS state,
		coalesce(us.last_decision, ''), coalesce(us.last_sequence, 0),
		coalesce(us.reason, CASE WHEN b.state = 'refused' THEN '市级拒收整个批次 (the city refused the batch): ' || b.last_push_error ELSE '' END),
		coalesce(us.rejections, '[]'::jsonb), coalesce(us.conflict_id, ''), coalesce(us.round_id, ''), us.publicity_start, us.publicity_end,
		coalesce(us.amount_fen, 0), coalesce(us.instruction_id, ''), coalesce(us.bank_reference, ''), us.settled_on,
		coalesce(sr.payee_kind, ''), coalesce(sr.payee_bank, ''), coalesce(sr.payee_bank_code, ''), coalesce(sr.payee_account_no, ''), coalesce(sr.payee_account_name, ''),
		coalesce(c.state, ''), coalesce(c.kind, ''), coalesce(c.bank, ''), coalesce(c.bank_code, ''), coalesce(c.account_no, ''), coalesce(c.account_name, ''),
		coalesce(c.last_push_error, ''),
		greatest(coalesce(us.updated_at, b.sealed_at), coalesce(c.created_at, b.sealed_at), coalesce(b.delivered_at, b.sealed_at)) AS updated_at
	FROM batch_item bi
	JOIN batch b ON b.county = bi.county AND b.id = bi.batch_id
	LEFT JOIN unit_status us ON us.county = bi.county AND us.batch_id = bi.batch_id AND us.uscc = bi.uscc AND b.state <> 'refused'
	LEFT JOIN LATERAL (
		(SELECT r.size, r.payee_kind, r.payee_bank, r.payee_bank_code, r.payee_account_no, r.payee_account_name
			FROM screening_result r WHERE r.county = bi.county AND r.screening_id = b.screening_id AND r.uscc = bi.uscc)
		UNION ALL
		(SELECT r.size, r.payee_kind, r.payee_bank, r.payee_bank_code, r.payee_account_no, r.payee_account_name
			FROM screening_result r WHERE r.county = bi.county AND r.screening_id = b.screening_id AND r.corrected_uscc = bi.uscc)
		LIMIT 1) sr ON true
	LEFT JOIN LATERAL (SELECT c.state, c.kind, c.bank, c.bank_code, c.account_no, c.account_name, c.last_push_error, c.created_at
		FROM correction_outbox c WHERE c.county = bi.county AND c.batch_id = bi.batch_id AND c.uscc = bi.uscc
		ORDER BY c.created_at DESC, c.id DESC LIMIT 1) c ON true
	WHERE bi.county = $1) x `

func scanUnitStatus(row pgx.CollectableRow) (UnitStatus, error) {
	var (
		u                              UnitStatus
		size, lastDecision             string
		rej                            []byte
		pubStart, pubEnd, settled      pgtype.Date
		pk, pb, pbc, pno, pname        string
		cState, ck, cb, cbc, cno, cnam string
		cErr                           string
	)
	err := row.Scan(&u.County, &u.USCC, &u.Name, &u.BatchID, &u.ScreeningID, &u.PolicyYear, &u.RefundFen, &size,
		&u.State, &lastDecision, &u.DecisionSequence, &u.Reason, &rej, &u.ConflictID, &u.RoundID, &pubStart, &pubEnd,
		&u.AmountFen, &u.InstructionID, &u.BankReference, &settled,
		&pk, &pb, &pbc, &pno, &pname, &cState, &ck, &cb, &cbc, &cno, &cnam, &cErr, &u.UpdatedAt)
	if err != nil {
		return UnitStatus{}, err
	}
	u.Size, u.LastDecision = parseSize(size), DecisionKind(lastDecision)
	u.PublicityStart, u.PublicityEnd, u.SettledOn = civilDate(pubStart), civilDate(pubEnd), civilDate(settled)
	if err := json.Unmarshal(rej, &u.Rejections); err != nil {
		return UnitStatus{}, fmt.Errorf("rejections %q: %w", rej, err)
	}
	if len(u.Rejections) == 0 {
		u.Rejections = nil
	}
	switch cState {
	case "pending", "accepted":
		u.Payee = refund.Account{USCC: u.USCC, Kind: parseAccountKind(ck), Bank: cb, BankCode: cbc, AccountNo: cno, AccountName: cnam}
		u.CorrectionPending = cState == "pending"
	default:
		if pk != "" {
			u.Payee = refund.Account{USCC: u.USCC, Kind: parseAccountKind(pk), Bank: pb, BankCode: pbc, AccountNo: pno, AccountName: pname}
		}
		if cState == "refused" {
			u.Reason += fmt.Sprintf("；账户更正被市级拒绝 (the city refused the corrected account): %s", cErr)
		}
	}
	u.UpdatedAt = u.UpdatedAt.UTC()
	return u, nil
}

// ListUnitStatuses returns the statuses of county's batch items that f
// selects, ordered by USCC and batch id.
func (s *Store) ListUnitStatuses(ctx context.Context, f UnitStatusFilter) ([]UnitStatus, error) {
	if f.Limit <= 0 {
		return nil, fault.New(fault.ErrInvalid, "list unit statuses: the limit must be positive")
	}
	states := f.States
	if states == nil {
		states = []string{}
	}
	rows, err := s.pool.Query(ctx, unitStatusQuery+`
		WHERE ($2 = '' OR x.batch_id = $2) AND ($3 = '' OR x.uscc = $3) AND (cardinality($4::text[]) = 0 OR x.state = ANY($4))
			AND (x.uscc, x.batch_id) > ($5, $6)
		ORDER BY x.uscc, x.batch_id LIMIT $7`, f.County, f.BatchID, f.USCC, states, f.AfterUSCC, f.AfterBatch, f.Limit)
	if err != nil {
		return nil, fail(err, "list unit statuses of county %s", f.County)
	}
	out, err := pgx.CollectRows(rows, scanUnitStatus)
	if err != nil {
		return nil, fail(err, "list unit statuses of county %s", f.County)
	}
	return out, nil
}

// GetUnitStatus returns the status of unit uscc in batch batchID of
// county, or fault.ErrNotFound.
func (s *Store) GetUnitStatus(ctx context.Context, county, batchID, uscc string) (UnitStatus, error) {
	u, err := getUnitStatus(ctx, s.pool, county, batchID, uscc)
	if err != nil {
		return UnitStatus{}, fail(err, "unit %s of batch %s", uscc, batchID)
	}
	return u, nil
}

func getUnitStatus(ctx context.Context, q querier, county, batchID, uscc string) (UnitStatus, error) {
	rows, err := q.Query(ctx, unitStatusQuery+` WHERE x.batch_id = $2 AND x.uscc = $3`, county, batchID, uscc)
	if err != nil {
		return UnitStatus{}, err
	}
	u, err := pgx.CollectExactlyOneRow(rows, scanUnitStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return UnitStatus{}, fault.New(fault.ErrNotFound, "no unit %s in batch %s of county %s", uscc, batchID, county)
	}
	return u, err
}

// AccountCorrection is a corrected account a clerk records for a unit whose
// payment the bank returned.
type AccountCorrection struct {
	County      string
	ID          string // the clerk's idempotency key, also the correction id sent to the city
	BatchID     string
	USCC        string
	Account     refund.Account
	Reason      string
	CorrectedBy string
}

// CorrectAccount records c and queues it for the city, and returns the
// unit's status (with the corrected account, correction pending). The unit
// must be returned (fault.ErrFailedPrecondition otherwise, and when a
// correction of this return is already on its way or accepted); an unknown
// unit is fault.ErrNotFound. A repeat of the same correction under the same
// id returns the unit's status and changes nothing; another correction
// under a used id is fault.ErrConflict. The change is audited under actor.
func (s *Store) CorrectAccount(ctx context.Context, actor access.Principal, c AccountCorrection, now time.Time) (UnitStatus, error) {
	if c.County == "" || c.ID == "" || c.BatchID == "" || c.USCC == "" || c.Reason == "" || c.Account.Kind == 0 {
		return UnitStatus{}, fault.New(fault.ErrInvalid, "correct account: county, id, batch, USCC, account and reason are required")
	}
	var out UnitStatus
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var prev AccountCorrection
		var kind string
		err := tx.QueryRow(ctx, `SELECT batch_id, uscc, kind, bank, bank_code, account_no, account_name, reason, corrected_by
			FROM correction_outbox WHERE county = $1 AND id = $2`, c.County, c.ID).Scan(
			&prev.BatchID, &prev.USCC, &kind, &prev.Account.Bank, &prev.Account.BankCode, &prev.Account.AccountNo,
			&prev.Account.AccountName, &prev.Reason, &prev.CorrectedBy)
		switch {
		case err == nil:
			prev.Account.Kind = parseAccountKind(kind)
			if prev.BatchID != c.BatchID || prev.USCC != c.USCC || prev.Account.Kind != c.Account.Kind || prev.Account.Bank != c.Account.Bank ||
				prev.Account.BankCode != c.Account.BankCode || prev.Account.AccountNo != c.Account.AccountNo ||
				prev.Account.AccountName != c.Account.AccountName || prev.Reason != c.Reason {
				return fault.New(fault.ErrConflict, "the idempotency key %s was used for another correction (幂等键已用于其他请求)", c.ID)
			}
			out, err = getUnitStatus(ctx, tx, c.County, c.BatchID, c.USCC)
			return err
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		// Lock the item, then read its state.
		var live bool
		err = tx.QueryRow(ctx, `SELECT live FROM batch_item WHERE county = $1 AND batch_id = $2 AND uscc = $3 FOR UPDATE`,
			c.County, c.BatchID, c.USCC).Scan(&live)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no unit %s in batch %s of county %s", c.USCC, c.BatchID, c.County)
		}
		if err != nil {
			return err
		}
		u, err := getUnitStatus(ctx, tx, c.County, c.BatchID, c.USCC)
		if err != nil {
			return err
		}
		if u.State != "returned" {
			return fault.New(fault.ErrFailedPrecondition, "unit %s of batch %s is %s: only a returned payment (退票) takes a corrected account", c.USCC, c.BatchID, u.State)
		}
		var onItsWay bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM correction_outbox
				WHERE county = $1 AND batch_id = $2 AND uscc = $3 AND returned_sequence = $4 AND state <> 'refused')`,
			c.County, c.BatchID, c.USCC, u.DecisionSequence).Scan(&onItsWay); err != nil {
			return err
		}
		if onItsWay {
			return fault.New(fault.ErrFailedPrecondition, "a corrected account of unit %s is already on its way to the city (已有更正在处理中)", c.USCC)
		}
		_, err = tx.Exec(ctx, `INSERT INTO correction_outbox (county, id, batch_id, uscc, kind, bank, bank_code, account_no, account_name,
				reason, corrected_by, returned_sequence, created_at, next_push_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)`,
			c.County, c.ID, c.BatchID, c.USCC, c.Account.Kind.String(), c.Account.Bank, c.Account.BankCode, c.Account.AccountNo,
			c.Account.AccountName, c.Reason, c.CorrectedBy, u.DecisionSequence, now)
		if err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]string{"batch": c.BatchID, "uscc": c.USCC, "kind": c.Account.Kind.String(), "reason": c.Reason})
		if _, err := audit.Append(ctx, tx, audit.Entry{Domain: c.County, At: now, Actor: actor, Action: "unit.correct_account",
			ObjectType: "account_correction", ObjectID: c.ID, Detail: string(detail)}); err != nil {
			return err
		}
		out, err = getUnitStatus(ctx, tx, c.County, c.BatchID, c.USCC)
		return err
	})
	if err != nil {
		return UnitStatus{}, fail(err, "correct the account of unit %s of batch %s", c.USCC, c.BatchID)
	}
	return out, nil
}

// syncDate is a civil date as a query argument: NULL for the zero Date.
func syncDate(d civil.Date) pgtype.Date {
	if d == 0 {
		return pgtype.Date{}
	}
	return pgtype.Date{Time: dateParam(d), Valid: true}
}

// rejectionsJSON encodes rejections for a jsonb column ("[]" when none).
func rejectionsJSON(rs []Rejection) string {
	if len(rs) == 0 {
		return "[]"
	}
	b, err := json.Marshal(rs)
	if err != nil {
		panic(err) // strings and slices of strings always marshal
	}
	return string(b)
}
