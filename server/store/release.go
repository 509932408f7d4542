package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
)

// Purpose is the remittance information of every payment instruction.
const Purpose = "失业保险稳岗返还"

// FundingRequest is a request for funds (资金拨付申请) raised for one
// county's new payment instructions of one release of a round; finance
// confirms it before those instructions can be pulled.
type FundingRequest struct {
	ID               string
	County           string
	RoundID          string
	InstructionCount int64
	TotalFen         int64
	State            string // "requested" or "confirmed"
	RequestedAt      time.Time
	Reference        string
	ConfirmedOn      civil.Date
	ConfirmedBy      string
	ConfirmedAt      time.Time
}

// Release is the outcome of releasing a round: the same however often the
// release is repeated, until an objection's dismissal lets more in.
type Release struct {
	Round           Round
	Released        Tally            // every first instruction of the round so far (re-issues not counted)
	Waiting         Tally            // entries frozen by an open objection
	FundingRequests []FundingRequest // the round's releases', oldest first (not those of re-issues)
	New             Tally            // instructions this call created
}

// releasable is an entry to pay.
type releasable struct {
	county, batchID, uscc, name                  string
	amount                                       int64
	kind, bank, bankCode, accountNo, accountName string
	instructionID, endToEndID, fundingRequestID  string
}

// ReleaseRound releases ended round id for payment (拨付): every entry in
// publicity (not removed, no open objection) is taken to have accepted the
// commitment letter (承诺书) and gets one payment instruction to its item's
// payee — exactly once per enterprise and policy year, which the database's
// unique index payment_instruction_once guarantees however often anything
// is retried — and its item moves to released, its county hearing it with
// the instruction id and amount. Each county with new instructions gets one
// funding request for them. Entries with open objections wait; a repeat
// after their dismissal releases them, and otherwise creates nothing.
// Releases of a round are serialized by the round's row lock.
//
// Errors: fault.ErrNotFound; fault.ErrPermissionDenied (actor built the
// round); fault.ErrFailedPrecondition (not approved, or today is not after
// the end date). Each change is audited under actor.
func (s *Store) ReleaseRound(ctx context.Context, actor access.Principal, id string, today civil.Date, now time.Time) (Release, error) {
	now = timestamp(now)
	var created Tally
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			state, builtBy string
			year           int
			end            pgtype.Date
		)
		err := tx.QueryRow(ctx, `SELECT state, built_by, policy_year, end_date FROM publicity_round WHERE id = $1 FOR UPDATE`, id).Scan(&state, &builtBy, &year, &end)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no round %s", id)
		}
		if err != nil {
			return err
		}
		if isBuilder(actor, builtBy) {
			return fault.New(fault.ErrPermissionDenied, "round %s was built by %s: another approver must release it (四眼原则：审批人不得为经办人)", id, builtBy)
		}
		if state == string(RoundDraft) {
			return fault.New(fault.ErrFailedPrecondition, "round %s is not approved (公示批次未审批)", id)
		}
		if today <= civilDate(end) {
			return fault.New(fault.ErrFailedPrecondition, "round %s is in publicity through %s; it may be released from the next day, not on %s (公示期未满)", id, civilDate(end), today)
		}
		rows, err := tx.Query(ctx, `SELECT e.county, e.batch_id, e.uscc, e.name, e.amount_fen,
				i.payee_kind, i.payee_bank, i.payee_bank_code, i.payee_account_no, i.payee_account_name
			FROM round_entry e JOIN received_item i ON i.county = e.county AND i.batch_id = e.batch_id AND i.uscc = e.uscc
			WHERE e.round_id = $1 AND NOT e.removed AND i.state = 'in_publicity'
			  AND NOT EXISTS (SELECT 1 FROM payment_instruction p WHERE p.policy_year = e.policy_year AND p.uscc = e.uscc AND p.reissue_of = '')
			ORDER BY e.county, e.uscc FOR UPDATE OF i`, id)
		if err != nil {
			return err
		}
		var todo []releasable
		var r releasable
		if _, err := pgx.ForEachRow(rows, []any{&r.county, &r.batchID, &r.uscc, &r.name, &r.amount,
			&r.kind, &r.bank, &r.bankCode, &r.accountNo, &r.accountName}, func() error {
			todo = append(todo, r)
			return nil
		}); err != nil {
			return err
		}
		perCounty := map[string]*Tally{}
		for _, r := range todo {
			if r.kind == "" || r.accountNo == "" {
				return fault.New(fault.ErrFailedPrecondition, "enterprise %s of county %s has no payable account (无可支付账户)", r.uscc, r.county)
			}
			t := perCounty[r.county]
			if t == nil {
				t = &Tally{}
				perCounty[r.county] = t
			}
			t.add(r.amount)
		}
		funding := map[string]string{}
		for _, c := range slices.Sorted(maps.Keys(perCounty)) {
			var fid string
			err := tx.QueryRow(ctx, `INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at)
				VALUES ($1, 'F' || substr($2, 2) || '-' || $1 || '-' || ((SELECT count(*) FROM funding_request WHERE round_id = $2 AND county = $1 AND NOT reissue) + 1), $2, $3, $4, $5)
				RETURNING id`, c, id, perCounty[c].Count, perCounty[c].AmountFen, now).Scan(&fid)
			if err != nil {
				return err
			}
			funding[c] = fid
			detail, _ := json.Marshal(map[string]any{"round": id, "county": c, "instructions": perCounty[c].Count, "total_fen": perCounty[c].AmountFen})
			if _, err := audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "funding.request", ObjectType: "funding_request", ObjectID: fid, Detail: string(detail)}); err != nil {
				return err
			}
		}
		var ds []Decision
		for i := range todo {
			r := &todo[i]
			r.fundingRequestID = funding[r.county]
			err := tx.QueryRow(ctx, `SELECT 'P' || $1::int || '-' || lpad(nextval('payment_instruction_number')::text, 8, '0')`, year).Scan(&r.instructionID)
			if err != nil {
				return err
			}
			r.endToEndID = endToEndID(r.instructionID)
			_, err = tx.Exec(ctx, `INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year,
					payee_name, account_no, bank, bank_code, account_kind, amount_fen, purpose, funding_request_id, released_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
				r.county, r.instructionID, r.endToEndID, id, r.batchID, r.uscc, year,
				r.accountName, r.accountNo, r.bank, r.bankCode, r.kind, r.amount, Purpose, r.fundingRequestID, now)
			if err != nil {
				return err
			}
			ds = append(ds, Decision{County: r.county, BatchID: r.batchID, USCC: r.uscc, Kind: KindReleased, RoundID: id,
				AmountFen: r.amount, InstructionID: r.instructionID, OccurredAt: now,
				Reason: fmt.Sprintf("公示期满无异议，视同签署承诺书，已拨付支付指令 %s (released for payment: instruction %s)", r.instructionID, r.instructionID)})
			detail, _ := json.Marshal(map[string]any{"round": id, "county": r.county, "uscc": r.uscc, "amount_fen": r.amount, "funding_request": r.fundingRequestID})
			if _, err := audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "instruction.release", ObjectType: "payment_instruction", ObjectID: r.instructionID, Detail: string(detail)}); err != nil {
				return err
			}
			created.add(r.amount)
		}
		if _, err := AppendDecisions(ctx, tx, ds); err != nil {
			return err
		}
		if state == string(RoundApproved) {
			if _, err := tx.Exec(ctx, `UPDATE publicity_round SET state = 'released', released_by = $2, released_at = $3 WHERE id = $1`, id, actorName(actor), now); err != nil {
				return err
			}
		}
		if state == string(RoundApproved) || len(todo) > 0 {
			detail, _ := json.Marshal(map[string]any{"instructions": created.Count, "total_fen": created.AmountFen, "funding_requests": slices.Collect(maps.Values(funding))})
			if _, err := audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "round.release", ObjectType: "round", ObjectID: id, Detail: string(detail)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Release{}, fail(err, "release round %s", id)
	}
	rel, err := s.ReleaseOf(ctx, id, today)
	rel.New = created
	return rel, err
}

// endToEndID is the ISO 20022 end-to-end id (Max35Text) of instruction id:
// "WG" and the id's letters and digits, 15 characters for P2022-00000001.
func endToEndID(id string) string {
	return "WG" + strings.ReplaceAll(id, "-", "")
}

// ReleaseOf returns round id's release totals as of today: its released
// instructions, the entries waiting on open objections and its funding
// requests. Errors: fault.ErrNotFound.
func (s *Store) ReleaseOf(ctx context.Context, id string, today civil.Date) (Release, error) {
	var rel Release
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rs, err := readRounds(ctx, tx, today, `r.id = $2`, "", id)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return fault.New(fault.ErrNotFound, "no round %s", id)
		}
		rel.Round = rs[0]
		if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount_fen), 0) FROM payment_instruction WHERE round_id = $1 AND reissue_of = ''`, id).
			Scan(&rel.Released.Count, &rel.Released.AmountFen); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(e.amount_fen), 0) FROM round_entry e
			JOIN received_item i ON i.county = e.county AND i.batch_id = e.batch_id AND i.uscc = e.uscc
			WHERE e.round_id = $1 AND NOT e.removed AND i.state = 'objected'`, id).Scan(&rel.Waiting.Count, &rel.Waiting.AmountFen); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, county, round_id, instruction_count, total_fen, state, requested_at, reference, confirmed_on, confirmed_by, confirmed_at
			FROM funding_request WHERE round_id = $1 AND NOT reissue ORDER BY requested_at, county, id`, id)
		if err != nil {
			return err
		}
		rel.FundingRequests, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (FundingRequest, error) {
			var (
				f         FundingRequest
				on        pgtype.Date
				confirmed *time.Time
			)
			err := row.Scan(&f.ID, &f.County, &f.RoundID, &f.InstructionCount, &f.TotalFen, &f.State, &f.RequestedAt, &f.Reference, &on, &f.ConfirmedBy, &confirmed)
			f.RequestedAt, f.ConfirmedOn = f.RequestedAt.UTC(), civilDate(on)
			if confirmed != nil {
				f.ConfirmedAt = confirmed.UTC()
			}
			return f, err
		})
		return err
	})
	if err != nil {
		return Release{}, fail(err, "release of round %s", id)
	}
	return rel, nil
}
