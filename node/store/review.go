package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/refund"
)

// ReviewAction is what a reviewer did to a unit's result.
type ReviewAction string

// Review actions.
const (
	ActionExclude     ReviewAction = "exclude"      // 剔除
	ActionReinstate   ReviewAction = "reinstate"    // 恢复
	ActionResolveHold ReviewAction = "resolve_hold" // 补正
)

// FactKind is the kind of fact that clears a hold.
type FactKind string

// Fact kinds.
const (
	FactAccount FactKind = "account" // clears ACCOUNT_MISSING
	FactSize    FactKind = "size"    // clears SIZE_MISSING
	FactUSCC    FactKind = "uscc"    // clears USCC_CHECKSUM
)

// Fact is the missing fact a resolve_hold review records.
type Fact struct {
	Kind          FactKind       // "" for no fact
	Size          refund.Size    // FactSize
	Account       refund.Account // FactAccount
	CorrectedUSCC string         // FactUSCC: the right code, or "" when the recorded one is confirmed as issued
}

// Review is one reviewer action, as recorded.
type Review struct {
	County          string
	ID              int64
	ScreeningID     int64
	USCC            string
	Action          ReviewAction
	Reason          string
	Fact            Fact
	DecisionBefore  refund.Decision
	DecisionAfter   refund.Decision
	RefundBeforeFen int64
	RefundAfterFen  int64
	Reviewer        string // subject of the reviewer's token
	ReviewerName    string
	ReviewedAt      time.Time
	IdempotencyKey  string
}

// UnitReview is what a review decides on: the screening, the unit's
// current result, its rows in the screening's dataset (each kind in file
// order) and the facts recorded for it before, oldest first.
type UnitReview struct {
	Screening Screening
	Result    Result
	Input     refund.Input
	Facts     []Fact
}

// ReviewChange is what a review writes: the unit's new current outcome
// and review state, and the review to record (its Action, Reason, Fact,
// Reviewer, ReviewerName and ReviewedAt; the store fills in the rest).
type ReviewChange struct {
	Current       Outcome
	USCCVerified  bool
	CorrectedUSCC string
	Override      Override
	Review        Review
}

// ReviewOps are the request and the decisions of ReviewUnit.
type ReviewOps struct {
	Key           string   // idempotency key, required
	RequestSHA256 [32]byte // what the key is used for
	// Guard may refuse the review given the screening (four eyes); it runs
	// before anything else, replays included.
	Guard func(Screening) error
	// Decide returns the change, or refuses it.
	Decide func(*UnitReview) (ReviewChange, error)
	// Audit returns the audit entry of the recorded review (Domain
	// defaults to the county).
	Audit func(Review, Result) audit.Entry
}

// ReviewUnit reviews the result of unit uscc in screening id of county in
// one transaction: Guard checks the screening; a key used before returns
// its review and the unit's current result with replayed true (or fails
// with fault.ErrConflict when it was used for another request); then, with
// the result locked, Decide gives the change, which is written with the
// review and its audit entry. A unit in a live batch is
// fault.ErrFailedPrecondition; a screening or unit not in county,
// fault.ErrNotFound.
func (s *Store) ReviewUnit(ctx context.Context, county string, id int64, uscc string, ops ReviewOps) (rv Review, res Result, replayed bool, err error) {
	if ops.Key == "" {
		return Review{}, Result{}, false, fault.New(fault.ErrInvalid, "review: the idempotency key is required")
	}
	for attempt := 0; ; attempt++ {
		err = pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			rv, res, replayed, err = s.reviewUnit(ctx, tx, county, id, uscc, ops)
			return err
		})
		if attempt == 0 && isUniqueViolation(err, "review_county_idempotency_key_key") {
			continue // the same key at the same time: answer with the winner's
		}
		if err != nil {
			return Review{}, Result{}, false, fail(err, "review unit %s of screening %d of county %s", uscc, id, county)
		}
		return rv, res, replayed, nil
	}
}

func (s *Store) reviewUnit(ctx context.Context, tx pgx.Tx, county string, id int64, uscc string, ops ReviewOps) (Review, Result, bool, error) {
	sc, err := s.screeningRow(ctx, tx, county, id)
	if err != nil {
		return Review{}, Result{}, false, err
	}
	if err := ops.Guard(sc); err != nil {
		return Review{}, Result{}, false, err
	}
	rows, err := tx.Query(ctx, `SELECT `+reviewColumns+`, request_sha256 FROM review WHERE county = $1 AND idempotency_key = $2`, county, ops.Key)
	if err != nil {
		return Review{}, Result{}, false, err
	}
	var sum []byte
	prior, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Review, error) { return scanReview(row, &sum) })
	if err != nil {
		return Review{}, Result{}, false, err
	}
	if len(prior) > 0 {
		if !bytes.Equal(sum, ops.RequestSHA256[:]) {
			return Review{}, Result{}, false, errKeyReused
		}
		res, err := s.result(ctx, tx, county, prior[0].ScreeningID, prior[0].USCC)
		return prior[0], res, true, err
	}

	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM screening_result WHERE county = $1 AND screening_id = $2 AND uscc = $3 FOR UPDATE`, county, id, uscc).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return Review{}, Result{}, false, fault.New(fault.ErrNotFound, "no unit %s in screening %d (筛查中无此单位)", uscc, id)
	}
	if err != nil {
		return Review{}, Result{}, false, err
	}
	u := &UnitReview{Screening: sc}
	if u.Result, err = s.result(ctx, tx, county, id, uscc); err != nil {
		return Review{}, Result{}, false, err
	}
	if u.Result.BatchID != "" {
		return Review{}, Result{}, false, fault.New(fault.ErrFailedPrecondition,
			"unit %s is in live batch %s and cannot be changed (已在批次中，不能更改)", uscc, u.Result.BatchID)
	}
	if u.Input, err = unitInput(ctx, tx, county, sc.DatasetID, uscc); err != nil {
		return Review{}, Result{}, false, err
	}
	if u.Facts, err = unitFacts(ctx, tx, county, id, uscc); err != nil {
		return Review{}, Result{}, false, err
	}
	ch, err := ops.Decide(u)
	if err != nil {
		return Review{}, Result{}, false, err
	}

	c := &ch.Current
	_, err = tx.Exec(ctx, `UPDATE screening_result SET decision = $4, reasons = $5, refund_fen = $6, size = $7, payee_kind = $8,
		payee_bank = $9, payee_bank_code = $10, payee_account_no = $11, payee_account_name = $12,
		uscc_verified = $13, corrected_uscc = $14, override = $15, reviewed = true
		WHERE county = $1 AND screening_id = $2 AND uscc = $3`,
		county, id, uscc, c.Decision.String(), c.Reasons.String(), c.RefundFen, sizeValue(c.Size), kindValue(c.Payee.Kind),
		c.Payee.Bank, c.Payee.BankCode, c.Payee.AccountNo, c.Payee.AccountName, ch.USCCVerified, ch.CorrectedUSCC, string(ch.Override))
	if err != nil {
		return Review{}, Result{}, false, err
	}
	rv := ch.Review
	rv.County, rv.ScreeningID, rv.USCC, rv.IdempotencyKey = county, id, uscc, ops.Key
	rv.DecisionBefore, rv.RefundBeforeFen = u.Result.Current.Decision, u.Result.Current.RefundFen
	rv.DecisionAfter, rv.RefundAfterFen = c.Decision, c.RefundFen
	rv.ReviewedAt = rv.ReviewedAt.UTC().Truncate(time.Microsecond)
	f := &rv.Fact
	var factKind, factSize, factAccountKind any
	if f.Kind != "" {
		factKind = string(f.Kind)
	}
	if f.Kind == FactSize {
		factSize = sizeValue(f.Size)
	}
	if f.Kind == FactAccount {
		factAccountKind = kindValue(f.Account.Kind)
	}
	err = tx.QueryRow(ctx, `INSERT INTO review (county, screening_id, uscc, action, reason, fact_kind, fact_size, fact_account_kind,
		fact_bank, fact_bank_code, fact_account_no, fact_account_name, fact_corrected_uscc,
		decision_before, decision_after, refund_before_fen, refund_after_fen, reviewer, reviewer_name, reviewed_at, idempotency_key, request_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) RETURNING id`,
		county, id, uscc, string(rv.Action), rv.Reason, factKind, factSize, factAccountKind,
		f.Account.Bank, f.Account.BankCode, f.Account.AccountNo, f.Account.AccountName, f.CorrectedUSCC,
		rv.DecisionBefore.String(), rv.DecisionAfter.String(), rv.RefundBeforeFen, rv.RefundAfterFen,
		rv.Reviewer, rv.ReviewerName, rv.ReviewedAt, ops.Key, ops.RequestSHA256[:]).Scan(&rv.ID)
	if err != nil {
		return Review{}, Result{}, false, err
	}
	res, err := s.result(ctx, tx, county, id, uscc)
	if err != nil {
		return Review{}, Result{}, false, err
	}
	e := ops.Audit(rv, res)
	if e.Domain == "" {
		e.Domain = county
	}
	if _, err := audit.Append(ctx, tx, e); err != nil {
		return Review{}, Result{}, false, err
	}
	return rv, res, false, nil
}

// GetResult returns the result of unit uscc in screening id of county, or
// fault.ErrNotFound.
func (s *Store) GetResult(ctx context.Context, county string, id int64, uscc string) (Result, error) {
	var res Result
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) (err error) {
		res, err = s.result(ctx, tx, county, id, uscc)
		return err
	})
	if err != nil {
		return Result{}, fail(err, "result of unit %s in screening %d of county %s", uscc, id, county)
	}
	return res, nil
}

// result reads one unit's result.
func (s *Store) result(ctx context.Context, q querier, county string, id int64, uscc string) (Result, error) {
	var (
		res   Result
		found bool
	)
	err := s.eachResult(ctx, q, county, id, ResultFilter{uscc: uscc}, func(r *Result) error {
		res, found = *r, true
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if !found {
		return Result{}, fault.New(fault.ErrNotFound, "no unit %s in screening %d (筛查中无此单位)", uscc, id)
	}
	return res, nil
}

// unitInput reads the rows of one unit in a dataset, each kind in file
// order.
func unitInput(ctx context.Context, tx pgx.Tx, county string, datasetID int64, uscc string) (refund.Input, error) {
	var in refund.Input
	units, err := loadUnit[refund.Unit](ctx, tx, county, datasetID, uscc, unitTable, &unitScanner{})
	if err != nil {
		return in, err
	}
	if len(units) != 1 {
		return in, fmt.Errorf("dataset %d has %d units %s", datasetID, len(units), uscc)
	}
	in.Unit = units[0]
	if in.Contributions, err = loadUnit[refund.Contribution](ctx, tx, county, datasetID, uscc, contributionTable, &contributionScanner{}); err != nil {
		return in, err
	}
	if in.Accounts, err = loadUnit[refund.Account](ctx, tx, county, datasetID, uscc, accountTable, &accountScanner{}); err != nil {
		return in, err
	}
	in.Exclusions, err = loadUnit[refund.Exclusion](ctx, tx, county, datasetID, uscc, exclusionTable, &exclusionScanner{})
	return in, err
}

// loadUnit reads the rows of tbl of one unit of a dataset in seq order.
func loadUnit[T any](ctx context.Context, tx pgx.Tx, county string, datasetID int64, uscc string, tbl table, sc rowScanner[T]) ([]T, error) {
	rows, err := tx.Query(ctx, `SELECT `+strings.Join(tbl.columns[3:], ", ")+` FROM `+tbl.name+
		` WHERE county = $1 AND dataset_id = $2 AND uscc = $3 ORDER BY seq`, county, datasetID, uscc)
	if err != nil {
		return nil, err
	}
	var out []T
	_, err = pgx.ForEachRow(rows, sc.dest(), func() error {
		var r T
		if err := sc.set(&r); err != nil {
			return fmt.Errorf("%s: %w", tbl.name, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// unitFacts reads the facts recorded for a unit of a screening, oldest
// first.
func unitFacts(ctx context.Context, tx pgx.Tx, county string, id int64, uscc string) ([]Fact, error) {
	rows, err := tx.Query(ctx, `SELECT `+reviewColumns+`, request_sha256 FROM review
		WHERE county = $1 AND screening_id = $2 AND uscc = $3 AND action = 'resolve_hold' ORDER BY id`, county, id, uscc)
	if err != nil {
		return nil, err
	}
	var sum []byte
	rvs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Review, error) { return scanReview(row, &sum) })
	if err != nil {
		return nil, err
	}
	facts := make([]Fact, len(rvs))
	for i, rv := range rvs {
		facts[i] = rv.Fact
	}
	return facts, nil
}

// ReviewPage selects one page of a county's reviews, newest first.
type ReviewPage struct {
	ScreeningID int64  // 0 for all
	USCC        string // "" for all
	BeforeID    int64  // only reviews older than this one; 0 for the first page
	Limit       int
}

// ListReviews returns one page of the reviews of county, newest first.
func (s *Store) ListReviews(ctx context.Context, county string, page ReviewPage) ([]Review, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reviewColumns+`, request_sha256 FROM review WHERE county = $1
		AND ($2 = 0 OR screening_id = $2) AND ($3 = '' OR uscc = $3) AND ($4 = 0 OR id < $4) ORDER BY id DESC LIMIT $5`,
		county, page.ScreeningID, page.USCC, page.BeforeID, page.Limit)
	if err != nil {
		return nil, fail(err, "list reviews of county %s", county)
	}
	var sum []byte
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Review, error) { return scanReview(row, &sum) })
	if err != nil {
		return nil, fail(err, "list reviews of county %s", county)
	}
	return out, nil
}

const reviewColumns = `county, id, screening_id, uscc, action, reason, fact_kind, fact_size, fact_account_kind,
	fact_bank, fact_bank_code, fact_account_no, fact_account_name, fact_corrected_uscc,
	decision_before, decision_after, refund_before_fen, refund_after_fen, reviewer, reviewer_name, reviewed_at, idempotency_key`

// scanReview reads reviewColumns and request_sha256 (into sum).
func scanReview(row pgx.CollectableRow, sum *[]byte) (Review, error) {
	var (
		rv                          Review
		action                      string
		factKind, factSize, acctKnd pgtype.Text
		before, after               string
	)
	f := &rv.Fact
	err := row.Scan(&rv.County, &rv.ID, &rv.ScreeningID, &rv.USCC, &action, &rv.Reason, &factKind, &factSize, &acctKnd,
		&f.Account.Bank, &f.Account.BankCode, &f.Account.AccountNo, &f.Account.AccountName, &f.CorrectedUSCC,
		&before, &after, &rv.RefundBeforeFen, &rv.RefundAfterFen, &rv.Reviewer, &rv.ReviewerName, &rv.ReviewedAt, &rv.IdempotencyKey, sum)
	if err != nil {
		return Review{}, err
	}
	rv.Action = ReviewAction(action)
	rv.ReviewedAt = rv.ReviewedAt.UTC()
	if factKind.Valid {
		f.Kind = FactKind(factKind.String)
	}
	if factSize.Valid {
		f.Size = parseSize(factSize.String)
	}
	if acctKnd.Valid {
		f.Account.Kind = parseAccountKind(acctKnd.String)
		f.Account.USCC = rv.USCC
	}
	if rv.DecisionBefore, err = refund.ParseDecision(before); err != nil {
		return Review{}, err
	}
	if rv.DecisionAfter, err = refund.ParseDecision(after); err != nil {
		return Review{}, err
	}
	return rv, nil
}
