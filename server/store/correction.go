package store

import (
	"context"
	"encoding/json"
	"errors"
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

// Correction is a corrected account a county pushed for an item whose
// payment the bank returned (退票).
type Correction struct {
	County      string
	ID          string // the node's correction id: the idempotency key, unique in the county
	BatchID     string
	USCC        string
	Account     refund.Account
	Reason      string
	CorrectedBy string
	AcceptedAt  time.Time // set by AcceptCorrection
	// InstructionID is the payment instruction that re-issues the payment,
	// empty until the city's release code makes it (and sets Reissued).
	InstructionID string
	Reissued      bool
}

// same reports whether c and o are the same request.
func (c Correction) same(o Correction) bool {
	return c.BatchID == o.BatchID && c.USCC == o.USCC && c.Account.Kind == o.Account.Kind && c.Account.Bank == o.Account.Bank &&
		c.Account.BankCode == o.Account.BankCode && c.Account.AccountNo == o.Account.AccountNo &&
		c.Account.AccountName == o.Account.AccountName && c.Reason == o.Reason && c.CorrectedBy == o.CorrectedBy
}

// AcceptCorrection stores c once per (county, id) and returns it as stored.
// A repeat of the same correction returns the stored one unchanged (with
// its instruction once re-issued); another correction under a used id is
// fault.ErrConflict. The item must exist (fault.ErrNotFound) and be
// returned, with no other correction waiting for its re-issue
// (fault.ErrFailedPrecondition). The change is audited under actor.
func (s *Store) AcceptCorrection(ctx context.Context, actor access.Principal, c Correction, now time.Time) (Correction, error) {
	if c.County == "" || c.ID == "" || c.BatchID == "" || c.USCC == "" {
		return Correction{}, fault.New(fault.ErrInvalid, "accept correction: county, id, batch and USCC are required")
	}
	c.AcceptedAt = timestamp(now)
	var out Correction
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		prev, err := getCorrection(ctx, tx, c.County, c.ID)
		if err == nil {
			if !prev.same(c) {
				return fault.New(fault.ErrConflict, "correction id %s was used for another correction (更正编号已被使用)", c.ID)
			}
			out = prev
			return nil
		}
		if fault.Kind(err) != fault.ErrNotFound {
			return err
		}
		var state string
		err = tx.QueryRow(ctx, `SELECT state FROM received_item WHERE county = $1 AND batch_id = $2 AND uscc = $3 FOR UPDATE`,
			c.County, c.BatchID, c.USCC).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no item %s in batch %s of county %s", c.USCC, c.BatchID, c.County)
		}
		if err != nil {
			return err
		}
		if ItemState(state) != ItemReturned {
			return fault.New(fault.ErrFailedPrecondition, "item %s of batch %s is %s, not returned (该企业的支付未被退回)", c.USCC, c.BatchID, state)
		}
		var waiting bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM account_correction WHERE county = $1 AND batch_id = $2 AND uscc = $3 AND state = 'pending')`,
			c.County, c.BatchID, c.USCC).Scan(&waiting); err != nil {
			return err
		}
		if waiting {
			return fault.New(fault.ErrFailedPrecondition, "another correction of item %s of batch %s is waiting for its re-issue (已有更正待处理)", c.USCC, c.BatchID)
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_correction (county, id, batch_id, uscc, kind, bank, bank_code, account_no, account_name,
				reason, corrected_by, pushed_by, accepted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			c.County, c.ID, c.BatchID, c.USCC, c.Account.Kind.String(), c.Account.Bank, c.Account.BankCode, c.Account.AccountNo,
			c.Account.AccountName, c.Reason, c.CorrectedBy, actor.Subject, c.AcceptedAt)
		if err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"batch": c.BatchID, "uscc": c.USCC, "kind": c.Account.Kind.String(), "reason": c.Reason, "corrected_by": c.CorrectedBy})
		if _, err := audit.Append(ctx, tx, audit.Entry{
			Domain: AuditDomain, At: c.AcceptedAt, Actor: actor, Action: "correction.accept",
			ObjectType: "account_correction", ObjectID: c.County + "/" + c.ID, Detail: string(detail),
		}); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		return Correction{}, fail(err, "accept correction %s of county %s", c.ID, c.County)
	}
	return out, nil
}

func getCorrection(ctx context.Context, tx pgx.Tx, county, id string) (Correction, error) {
	c := Correction{County: county, ID: id}
	var kind, state string
	err := tx.QueryRow(ctx, `SELECT batch_id, uscc, kind, bank, bank_code, account_no, account_name, reason, corrected_by, state, instruction_id, accepted_at
		FROM account_correction WHERE county = $1 AND id = $2`, county, id).Scan(
		&c.BatchID, &c.USCC, &kind, &c.Account.Bank, &c.Account.BankCode, &c.Account.AccountNo, &c.Account.AccountName,
		&c.Reason, &c.CorrectedBy, &state, &c.InstructionID, &c.AcceptedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Correction{}, fault.New(fault.ErrNotFound, "no correction %s of county %s", id, county)
	}
	if err != nil {
		return Correction{}, err
	}
	c.Account.USCC = c.USCC
	c.Account.Kind = refund.AccountCorporate
	if kind == refund.AccountSocialInsurance.String() {
		c.Account.Kind = refund.AccountSocialInsurance
	}
	c.Reissued = state == "reissued"
	c.AcceptedAt = c.AcceptedAt.UTC()
	return c, nil
}

// DecisionTally counts a screening's units by decision, with their refunds.
type DecisionTally struct {
	Units      int64
	Eligible   Tally
	Hold       Tally
	Ineligible Tally
}

// ScreeningReport is a county screening's tallies, for the progress
// dashboard.
type ScreeningReport struct {
	County      string
	ScreeningID string
	DatasetHash string
	AsOf        civil.Date
	PolicyID    string
	Screened    DecisionTally // as screened
	Reviewed    DecisionTally // after review
	Revision    int64         // increases with every report of the same screening
	RunAt       time.Time
}

// ReportScreening keeps r when its revision is higher than the one held for
// (county, screening id), and returns the revision held afterwards: a lower
// or equal revision changes nothing. A stored report is audited under actor.
func (s *Store) ReportScreening(ctx context.Context, actor access.Principal, r ScreeningReport, now time.Time) (int64, error) {
	if r.County == "" || r.ScreeningID == "" || r.Revision <= 0 {
		return 0, fault.New(fault.ErrInvalid, "report screening: county, screening id and a positive revision are required")
	}
	now = timestamp(now)
	var held int64
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO screening_report (county, screening_id, revision, dataset_hash, as_of, policy_id,
				screened_units, screened_eligible_count, screened_eligible_fen, screened_hold_count, screened_hold_fen, screened_ineligible_count,
				reviewed_units, reviewed_eligible_count, reviewed_eligible_fen, reviewed_hold_count, reviewed_hold_fen, reviewed_ineligible_count,
				run_at, reported_by, reported_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
			ON CONFLICT (county, screening_id) DO UPDATE SET
				revision = EXCLUDED.revision, dataset_hash = EXCLUDED.dataset_hash, as_of = EXCLUDED.as_of, policy_id = EXCLUDED.policy_id,
				screened_units = EXCLUDED.screened_units, screened_eligible_count = EXCLUDED.screened_eligible_count,
				screened_eligible_fen = EXCLUDED.screened_eligible_fen, screened_hold_count = EXCLUDED.screened_hold_count,
				screened_hold_fen = EXCLUDED.screened_hold_fen, screened_ineligible_count = EXCLUDED.screened_ineligible_count,
				reviewed_units = EXCLUDED.reviewed_units, reviewed_eligible_count = EXCLUDED.reviewed_eligible_count,
				reviewed_eligible_fen = EXCLUDED.reviewed_eligible_fen, reviewed_hold_count = EXCLUDED.reviewed_hold_count,
				reviewed_hold_fen = EXCLUDED.reviewed_hold_fen, reviewed_ineligible_count = EXCLUDED.reviewed_ineligible_count,
				run_at = EXCLUDED.run_at, reported_by = EXCLUDED.reported_by, reported_at = EXCLUDED.reported_at
			WHERE screening_report.revision < EXCLUDED.revision
			RETURNING revision`,
			r.County, r.ScreeningID, r.Revision, r.DatasetHash, dateValue(r.AsOf), r.PolicyID,
			r.Screened.Units, r.Screened.Eligible.Count, r.Screened.Eligible.AmountFen, r.Screened.Hold.Count, r.Screened.Hold.AmountFen, r.Screened.Ineligible.Count,
			r.Reviewed.Units, r.Reviewed.Eligible.Count, r.Reviewed.Eligible.AmountFen, r.Reviewed.Hold.Count, r.Reviewed.Hold.AmountFen, r.Reviewed.Ineligible.Count,
			nullTime(r.RunAt), actor.Subject, now).Scan(&held)
		if errors.Is(err, pgx.ErrNoRows) {
			// A lower or equal revision: answer with what is held.
			return tx.QueryRow(ctx, `SELECT revision FROM screening_report WHERE county = $1 AND screening_id = $2`, r.County, r.ScreeningID).Scan(&held)
		}
		if err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"revision": r.Revision, "units": r.Screened.Units, "eligible": r.Reviewed.Eligible.Count, "eligible_fen": r.Reviewed.Eligible.AmountFen})
		_, err = audit.Append(ctx, tx, audit.Entry{
			Domain: AuditDomain, At: now, Actor: actor, Action: "screening.report",
			ObjectType: "screening_report", ObjectID: r.County + "/" + r.ScreeningID, Detail: string(detail),
		})
		return err
	})
	if err != nil {
		return 0, fail(err, "report screening %s of county %s", r.ScreeningID, r.County)
	}
	return held, nil
}

// GetScreeningReport returns the report held for a county screening, or
// fault.ErrNotFound.
func (s *Store) GetScreeningReport(ctx context.Context, county, screeningID string) (ScreeningReport, error) {
	r := ScreeningReport{County: county, ScreeningID: screeningID}
	var runAt *time.Time
	var asOf pgtype.Date
	err := s.pool.QueryRow(ctx, `SELECT revision, dataset_hash, as_of, policy_id,
			screened_units, screened_eligible_count, screened_eligible_fen, screened_hold_count, screened_hold_fen, screened_ineligible_count,
			reviewed_units, reviewed_eligible_count, reviewed_eligible_fen, reviewed_hold_count, reviewed_hold_fen, reviewed_ineligible_count, run_at
		FROM screening_report WHERE county = $1 AND screening_id = $2`, county, screeningID).Scan(
		&r.Revision, &r.DatasetHash, &asOf, &r.PolicyID,
		&r.Screened.Units, &r.Screened.Eligible.Count, &r.Screened.Eligible.AmountFen, &r.Screened.Hold.Count, &r.Screened.Hold.AmountFen, &r.Screened.Ineligible.Count,
		&r.Reviewed.Units, &r.Reviewed.Eligible.Count, &r.Reviewed.Eligible.AmountFen, &r.Reviewed.Hold.Count, &r.Reviewed.Hold.AmountFen, &r.Reviewed.Ineligible.Count, &runAt)
	if err != nil {
		return ScreeningReport{}, fail(err, "get screening report %s of county %s", screeningID, county)
	}
	r.AsOf = civilDate(asOf)
	if runAt != nil {
		r.RunAt = runAt.UTC()
	}
	return r, nil
}
