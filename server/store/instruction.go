package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// PaymentState is the state of a payment instruction:
// wengang.v1.PaymentState in lower case.
type PaymentState string

// Payment states.
const (
	PaymentReleased     PaymentState = "released"
	PaymentAcknowledged PaymentState = "acknowledged"
	PaymentPaid         PaymentState = "paid"
	PaymentReturned     PaymentState = "returned"
	PaymentReissued     PaymentState = "reissued"
)

// Outstanding reports whether an instruction in state s is still to be
// paid (released or acknowledged).
func (s PaymentState) Outstanding() bool { return s == PaymentReleased || s == PaymentAcknowledged }

// MaxInstructionPage bounds the instructions of one read.
const MaxInstructionPage = 5000

// Instruction is one payment instruction (支付指令).
type Instruction struct {
	County           string
	ID               string
	Seq              int64 // the order of release
	PullSeq          int64 // the position in the finance feed; 0 while not pullable
	EndToEndID       string
	RoundID          string
	BatchID          string
	USCC             string
	PolicyYear       int
	Payee            refund.Account
	AmountFen        int64
	Purpose          string
	State            PaymentState
	ReissueOf        string
	ReissuedBy       string
	FundingRequestID string
	ReleasedAt       time.Time
	AcknowledgedAt   time.Time // zero until acknowledged
	BankReference    string
	PaidOn           civil.Date
	ReturnReason     string
	ReturnCode       string
	ReturnedOn       civil.Date
}

// Pullable reports whether finance may pull i (its funding is confirmed).
func (i Instruction) Pullable() bool { return i.PullSeq > 0 }

const instructionColumns = `county, id, seq, coalesce(pull_seq, 0), end_to_end_id, round_id, batch_id, uscc, policy_year,
	payee_name, account_no, bank, bank_code, account_kind, amount_fen, purpose, state, reissue_of, reissued_by,
	funding_request_id, released_at, acknowledged_at, bank_reference, paid_on, return_reason, return_code, returned_on`

func scanInstruction(row pgx.CollectableRow) (Instruction, error) {
	var (
		i                Instruction
		kind, state      string
		ackAt            *time.Time
		paidOn, returnOn pgtype.Date
	)
	err := row.Scan(&i.County, &i.ID, &i.Seq, &i.PullSeq, &i.EndToEndID, &i.RoundID, &i.BatchID, &i.USCC, &i.PolicyYear,
		&i.Payee.AccountName, &i.Payee.AccountNo, &i.Payee.Bank, &i.Payee.BankCode, &kind, &i.AmountFen, &i.Purpose, &state,
		&i.ReissueOf, &i.ReissuedBy, &i.FundingRequestID, &i.ReleasedAt, &ackAt, &i.BankReference, &paidOn,
		&i.ReturnReason, &i.ReturnCode, &returnOn)
	if err != nil {
		return Instruction{}, err
	}
	i.Payee.USCC = i.USCC
	i.Payee.Kind = refund.AccountCorporate
	if kind == refund.AccountSocialInsurance.String() {
		i.Payee.Kind = refund.AccountSocialInsurance
	}
	i.State = PaymentState(state)
	i.ReleasedAt = i.ReleasedAt.UTC()
	if ackAt != nil {
		i.AcknowledgedAt = ackAt.UTC()
	}
	i.PaidOn, i.ReturnedOn = civilDate(paidOn), civilDate(returnOn)
	return i, nil
}

// PullHead returns the last position of the finance feed (0 when empty):
// a cursor beyond it was not issued by this server.
func (s *Store) PullHead(ctx context.Context) (int64, error) {
	var last int64
	if err := s.pool.QueryRow(ctx, `SELECT last_seq FROM instruction_pull_counter`).Scan(&last); err != nil {
		return 0, fail(err, "pull head")
	}
	return last, nil
}

// PullInstructions returns up to limit outstanding, pullable instructions
// after position after of the finance feed, of counties (nil: all), in feed
// order. Each instruction has one position, assigned once when it became
// pullable, so later changes never re-add it.
func (s *Store) PullInstructions(ctx context.Context, counties []string, after int64, limit int) ([]Instruction, error) {
	if limit <= 0 || limit > MaxInstructionPage {
		return nil, fault.New(fault.ErrInvalid, "pull instructions: limit %d not in 1..%d", limit, MaxInstructionPage)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction
		WHERE pull_seq > $1 AND state IN ('released', 'acknowledged') AND ($2::text[] IS NULL OR county = ANY($2))
		ORDER BY pull_seq LIMIT $3`, after, nilIfEmpty(counties), limit)
	if err != nil {
		return nil, fail(err, "pull instructions")
	}
	out, err := pgx.CollectRows(rows, scanInstruction)
	if err != nil {
		return nil, fail(err, "pull instructions")
	}
	return out, nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// InstructionFilter selects instructions; zero fields select all.
type InstructionFilter struct {
	Counties []string
	States   []PaymentState
	RoundID  string
	USCC     string
}

// listKey orders ListInstructions: pullable ones by feed position, then
// the others by release.
const listKey = `coalesce(pull_seq, 4611686018427387904 + seq)`

// ListInstructions returns up to limit instructions matching f whose list
// position is after after (0: from the first), in list order: pullable ones
// in feed order, then the others in release order. next is the position to
// continue after, 0 on the last page.
func (s *Store) ListInstructions(ctx context.Context, f InstructionFilter, after int64, limit int) (out []Instruction, next int64, err error) {
	if limit <= 0 || limit > MaxInstructionPage {
		return nil, 0, fault.New(fault.ErrInvalid, "list instructions: limit %d not in 1..%d", limit, MaxInstructionPage)
	}
	states := make([]string, len(f.States))
	for i, st := range f.States {
		states[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+instructionColumns+`, `+listKey+` FROM payment_instruction
		WHERE `+listKey+` > $1 AND ($2::text[] IS NULL OR county = ANY($2)) AND ($3::text[] IS NULL OR state = ANY($3))
		  AND ($4 = '' OR round_id = $4) AND ($5 = '' OR uscc = $5)
		ORDER BY `+listKey+` LIMIT $6`, after, nilIfEmpty(f.Counties), nilIfEmpty(states), f.RoundID, f.USCC, limit+1)
	if err != nil {
		return nil, 0, fail(err, "list instructions")
	}
	var keys []int64
	out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Instruction, error) {
		var k int64
		i, err := scanInstruction(rowWithExtra{row, &k})
		keys = append(keys, k)
		return i, err
	})
	if err != nil {
		return nil, 0, fail(err, "list instructions")
	}
	if len(out) > limit {
		out, next = out[:limit], keys[limit-1]
	}
	return out, next, nil
}

// rowWithExtra scans a row of instructionColumns followed by one more
// column into extra.
type rowWithExtra struct {
	pgx.CollectableRow
	extra any
}

func (r rowWithExtra) Scan(dest ...any) error { return r.CollectableRow.Scan(append(dest, r.extra)...) }

// GetInstruction returns an instruction by id, or fault.ErrNotFound.
func (s *Store) GetInstruction(ctx context.Context, id string) (Instruction, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction WHERE id = $1`, id)
	if err != nil {
		return Instruction{}, fail(err, "get instruction %s", id)
	}
	i, err := pgx.CollectExactlyOneRow(rows, scanInstruction)
	if errors.Is(err, pgx.ErrNoRows) {
		return Instruction{}, fault.New(fault.ErrNotFound, "no payment instruction %s (无此支付指令)", id)
	}
	if err != nil {
		return Instruction{}, fail(err, "get instruction %s", id)
	}
	return i, nil
}

// InstructionsByEndToEnd returns the instructions with the given
// end-to-end ids, keyed by them; ids without one are absent.
func (s *Store) InstructionsByEndToEnd(ctx context.Context, ids []string) (map[string]Instruction, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction WHERE end_to_end_id = ANY($1)`, ids)
	if err != nil {
		return nil, fail(err, "instructions by end-to-end id")
	}
	is, err := pgx.CollectRows(rows, scanInstruction)
	if err != nil {
		return nil, fail(err, "instructions by end-to-end id")
	}
	out := make(map[string]Instruction, len(is))
	for _, i := range is {
		out[i.EndToEndID] = i
	}
	return out, nil
}

// lockInstructions reads the instructions with ids within tx, locked, in
// id order. An id without one is fault.ErrNotFound naming every such id.
func lockInstructions(ctx context.Context, tx pgx.Tx, ids []string) (map[string]Instruction, error) {
	sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
	rows, err := tx.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction WHERE id = ANY($1) ORDER BY id FOR UPDATE`, sorted)
	if err != nil {
		return nil, err
	}
	is, err := pgx.CollectRows(rows, scanInstruction)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Instruction, len(is))
	for _, i := range is {
		out[i.ID] = i
	}
	var missing []string
	for _, id := range sorted {
		if _, ok := out[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fault.New(fault.ErrNotFound, "no payment instruction %v (无此支付指令); nothing was changed", missing)
	}
	return out, nil
}

// AckInstructions acknowledges the instructions with ids (released →
// acknowledged) and returns them, in the order of ids, as they now stand.
// Acknowledging one acknowledged or settled changes nothing. All or
// nothing: an unknown id is fault.ErrNotFound, one not pullable
// fault.ErrFailedPrecondition. Each change is audited under actor.
func (s *Store) AckInstructions(ctx context.Context, actor access.Principal, ids []string, now time.Time) ([]Instruction, error) {
	now = timestamp(now)
	var out []Instruction
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		is, err := lockInstructions(ctx, tx, ids)
		if err != nil {
			return err
		}
		var acked []string
		for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
			i := is[id]
			if !i.Pullable() {
				return fault.New(fault.ErrFailedPrecondition, "instruction %s is not pullable: its funding is not confirmed (资金未拨付)", id)
			}
			if i.State == PaymentReleased {
				i.State, i.AcknowledgedAt = PaymentAcknowledged, now
				is[id] = i
				acked = append(acked, id)
			}
		}
		if len(acked) == 0 {
			out = pick(is, ids)
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE payment_instruction SET state = 'acknowledged', acknowledged_at = $2 WHERE id = ANY($1)`, acked, now); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"instructions": acked})
		if _, err := audit.Append(ctx, tx, audit.Entry{
			Domain: AuditDomain, At: now, Actor: actor, Action: "instruction.ack",
			ObjectType: "payment_instruction", ObjectID: acked[0], Detail: string(detail),
		}); err != nil {
			return err
		}
		out = pick(is, ids)
		return nil
	})
	if err != nil {
		return nil, fail(err, "acknowledge instructions")
	}
	return out, nil
}

func pick(is map[string]Instruction, ids []string) []Instruction {
	out := make([]Instruction, len(ids))
	for n, id := range ids {
		out[n] = is[id]
	}
	return out
}

// Result is the outcome finance reports for one instruction.
type Result struct {
	InstructionID string
	Paid          bool   // paid; else returned
	BankReference string // for paid: required; for returned: the return's, if any
	On            civil.Date
	Reason        string // for returned
	ReasonCode    string // for returned: the ISO code, if known
}

// same reports whether r is the result i already records.
func (r Result) same(i Instruction) bool {
	if r.Paid {
		return i.State == PaymentPaid && i.BankReference == r.BankReference && i.PaidOn == r.On
	}
	return (i.State == PaymentReturned || i.State == PaymentReissued) && i.ReturnReason == r.Reason && i.ReturnCode == r.ReasonCode && i.ReturnedOn == r.On
}

// ReportResults records results, all or nothing, and returns the
// instructions in the order of rs as they now stand, with changed[n]
// telling whether rs[n] changed its instruction. A result an instruction
// already records changes nothing. Paid and returned follow released or
// acknowledged; returned also follows paid (a return after credit); nothing
// else follows a result. Each change appends a paid or returned decision to
// the item's county feed; a returned instruction whose item has a
// correction waiting is re-issued at once (see Reissue).
//
// Errors: fault.ErrInvalid (an instruction twice, a paid result without
// bank reference or date, a returned one without reason or date);
// fault.ErrNotFound (an id); fault.ErrFailedPrecondition (a result that
// contradicts the recorded one, an instruction not pullable). Nothing is
// written then.
func (s *Store) ReportResults(ctx context.Context, actor access.Principal, rs []Result, now time.Time) (out []Instruction, changed []bool, err error) {
	now = timestamp(now)
	ids := make([]string, len(rs))
	seen := make(map[string]bool, len(rs))
	for n, r := range rs {
		if seen[r.InstructionID] {
			return nil, nil, fault.New(fault.ErrInvalid, "report results: instruction %s twice (同一指令重复)", r.InstructionID)
		}
		seen[r.InstructionID] = true
		ids[n] = r.InstructionID
		if r.On == 0 || (r.Paid && r.BankReference == "") || (!r.Paid && r.Reason == "" && r.ReasonCode == "") {
			return nil, nil, fault.New(fault.ErrInvalid, "report results: result %d of %s lacks its bank reference, reason or date", n, r.InstructionID)
		}
	}
	err = pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		is, err := lockInstructions(ctx, tx, ids)
		if err != nil {
			return err
		}
		changed = make([]bool, len(rs))
		var (
			ds       []Decision
			returned []Instruction
		)
		for n, r := range rs {
			i := is[r.InstructionID]
			if !i.Pullable() {
				return fault.New(fault.ErrFailedPrecondition, "instruction %s is not pullable: its funding is not confirmed (资金未拨付)", i.ID)
			}
			if r.same(i) {
				continue
			}
			switch {
			case r.Paid && i.State.Outstanding():
				i.State, i.BankReference, i.PaidOn = PaymentPaid, r.BankReference, r.On
				_, err = tx.Exec(ctx, `UPDATE payment_instruction SET state = 'paid', bank_reference = $2, paid_on = $3 WHERE id = $1`,
					i.ID, i.BankReference, dateValue(i.PaidOn))
				ds = append(ds, Decision{County: i.County, Kind: KindPaid, BatchID: i.BatchID, USCC: i.USCC, Reason: "已支付",
					RoundID: i.RoundID, AmountFen: i.AmountFen, InstructionID: i.ID, BankReference: i.BankReference, SettledOn: i.PaidOn, OccurredAt: now})
			case !r.Paid && (i.State.Outstanding() || i.State == PaymentPaid):
				if i.State != PaymentPaid && r.BankReference != "" {
					i.BankReference = r.BankReference
				}
				i.State, i.ReturnReason, i.ReturnCode, i.ReturnedOn = PaymentReturned, r.Reason, r.ReasonCode, r.On
				_, err = tx.Exec(ctx, `UPDATE payment_instruction SET state = 'returned', bank_reference = $2, return_reason = $3, return_code = $4, returned_on = $5
					WHERE id = $1`, i.ID, i.BankReference, i.ReturnReason, i.ReturnCode, dateValue(i.ReturnedOn))
				reason := "退票: " + r.Reason
				if r.ReasonCode != "" {
					reason += " (" + r.ReasonCode + ")"
				}
				ds = append(ds, Decision{County: i.County, Kind: KindReturned, BatchID: i.BatchID, USCC: i.USCC, Reason: reason,
					RoundID: i.RoundID, AmountFen: i.AmountFen, InstructionID: i.ID, BankReference: r.BankReference, SettledOn: i.ReturnedOn, OccurredAt: now})
				returned = append(returned, i)
			default:
				return fault.New(fault.ErrFailedPrecondition, "instruction %s is %s (%s); the result reported contradicts it (与已报告结果矛盾)", i.ID, i.State, recorded(i))
			}
			if err != nil {
				return err
			}
			is[i.ID] = i
			changed[n] = true
		}
		if len(ds) == 0 {
			out = pick(is, ids)
			return nil
		}
		if _, err := AppendDecisions(ctx, tx, ds); err != nil {
			return err
		}
		detail, _ := json.Marshal(rs)
		if _, err := audit.Append(ctx, tx, audit.Entry{
			Domain: AuditDomain, At: now, Actor: actor, Action: "instruction.report",
			ObjectType: "payment_instruction", ObjectID: ds[0].InstructionID, Detail: string(detail),
		}); err != nil {
			return err
		}
		for _, i := range returned {
			var corr string
			err := tx.QueryRow(ctx, `SELECT id FROM account_correction WHERE county = $1 AND batch_id = $2 AND uscc = $3 AND state = 'pending'`,
				i.County, i.BatchID, i.USCC).Scan(&corr)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := reissue(ctx, tx, actor, i.County, corr, now); err != nil {
				return err
			}
		}
		// Re-read: a re-issue changed the returned ones.
		is, err = lockInstructions(ctx, tx, ids)
		if err != nil {
			return err
		}
		out = pick(is, ids)
		return nil
	})
	if err != nil {
		return nil, nil, fail(err, "report results")
	}
	return out, changed, nil
}

// recorded describes the result i records.
func recorded(i Instruction) string {
	switch i.State {
	case PaymentPaid:
		return fmt.Sprintf("paid on %s, bank reference %s", i.PaidOn, i.BankReference)
	case PaymentReturned, PaymentReissued:
		return fmt.Sprintf("returned on %s: %s %s", i.ReturnedOn, i.ReturnCode, i.ReturnReason)
	}
	return "no result"
}

// Reissue re-issues the returned payment that the county's correction id
// corrects, as a new instruction to the corrected account (reissue_of the
// returned one), released into the county's open re-issue funding request
// (made when there is none), and returns the correction as it then stands.
// The returned instruction becomes reissued, the correction reissued with
// the new instruction's id, and a reissued decision goes to the county.
//
// It is idempotent: a correction already re-issued is returned as it is,
// and one whose item has no returned instruction yet stays pending (the
// return, when reported, re-issues it). At most one re-issue per returned
// instruction: a unique index holds that even against concurrent calls.
// The change is audited under actor.
func (s *Store) Reissue(ctx context.Context, actor access.Principal, county, correctionID string, now time.Time) (Correction, error) {
	now = timestamp(now)
	var out Correction
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = reissue(ctx, tx, actor, county, correctionID, now)
		return err
	})
	if err != nil {
		return Correction{}, fail(err, "re-issue correction %s of county %s", correctionID, county)
	}
	return out, nil
}

func reissue(ctx context.Context, tx pgx.Tx, actor access.Principal, county, correctionID string, now time.Time) (Correction, error) {
	// Lock the correction first, then the instruction: the order every
	// re-issue takes.
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM account_correction WHERE county = $1 AND id = $2 FOR UPDATE`, county, correctionID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return Correction{}, fault.New(fault.ErrNotFound, "no correction %s of county %s", correctionID, county)
	}
	if err != nil {
		return Correction{}, err
	}
	c, err := getCorrection(ctx, tx, county, correctionID)
	if err != nil || state != "pending" {
		return c, err
	}
	rows, err := tx.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction
		WHERE county = $1 AND batch_id = $2 AND uscc = $3 AND state = 'returned' AND reissued_by = '' ORDER BY seq DESC LIMIT 1 FOR UPDATE`,
		county, c.BatchID, c.USCC)
	if err != nil {
		return Correction{}, err
	}
	old, err := pgx.CollectExactlyOneRow(rows, scanInstruction)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil // kept pending until the return is reported
	}
	if err != nil {
		return Correction{}, err
	}
	fundingID, err := openReissueFunding(ctx, tx, county, old.RoundID, now)
	if err != nil {
		return Correction{}, err
	}
	var num int64
	if err := tx.QueryRow(ctx, `SELECT nextval('payment_instruction_number')`).Scan(&num); err != nil {
		return Correction{}, err
	}
	id := fmt.Sprintf("P%d-%08d", old.PolicyYear, num)
	_, err = tx.Exec(ctx, `INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year,
			payee_name, account_no, bank, bank_code, account_kind, amount_fen, purpose, reissue_of, funding_request_id, released_at)
		VALUES ($1, $2, $17, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		county, id, old.RoundID, old.BatchID, old.USCC, old.PolicyYear, c.Account.AccountName, c.Account.AccountNo, c.Account.Bank,
		c.Account.BankCode, c.Account.Kind.String(), old.AmountFen, old.Purpose, old.ID, fundingID, now, endToEndID(id))
	if err != nil {
		return Correction{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE payment_instruction SET state = 'reissued', reissued_by = $2 WHERE id = $1`, old.ID, id); err != nil {
		return Correction{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE funding_request SET instruction_count = instruction_count + 1, total_fen = total_fen + $3
		WHERE county = $1 AND id = $2`, county, fundingID, old.AmountFen); err != nil {
		return Correction{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE account_correction SET state = 'reissued', instruction_id = $3 WHERE county = $1 AND id = $2`,
		county, correctionID, id); err != nil {
		return Correction{}, err
	}
	if _, err := AppendDecision(ctx, tx, Decision{County: county, Kind: KindReissued, BatchID: old.BatchID, USCC: old.USCC,
		Reason: "已按更正账户重新支付 (re-issued to the corrected account)", RoundID: old.RoundID, AmountFen: old.AmountFen,
		InstructionID: id, OccurredAt: now}); err != nil {
		return Correction{}, err
	}
	detail, _ := json.Marshal(map[string]any{"reissue_of": old.ID, "correction": correctionID, "funding_request": fundingID, "amount_fen": old.AmountFen})
	if _, err := audit.Append(ctx, tx, audit.Entry{
		Domain: AuditDomain, At: now, Actor: actor, Action: "instruction.reissue",
		ObjectType: "payment_instruction", ObjectID: id, Detail: string(detail),
	}); err != nil {
		return Correction{}, err
	}
	c.InstructionID, c.Reissued = id, true
	return c, nil
}

// openReissueFunding returns the county's open re-issue funding request of
// round, made (empty) when there is none.
func openReissueFunding(ctx context.Context, tx pgx.Tx, county, round string, now time.Time) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM funding_request WHERE county = $1 AND round_id = $2 AND reissue AND state = 'requested' FOR UPDATE`,
		county, round).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	var num int64
	if err := tx.QueryRow(ctx, `SELECT nextval('funding_request_reissue_number')`).Scan(&num); err != nil {
		return "", err
	}
	id = fmt.Sprintf("F%s-%s-R%d", strings.TrimPrefix(round, "R"), county, num)
	_, err = tx.Exec(ctx, `INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at, reissue)
		VALUES ($1, $2, $3, 0, 0, $4, true)`, county, id, round, now)
	return id, err
}
