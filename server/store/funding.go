package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
	"wengang/policy/civil"
)

// fundingConfirmed is the state of a confirmed funding request.
const fundingConfirmed = "confirmed"

// MaxFundingPage bounds the funding requests of one read.
const MaxFundingPage = 1000

const fundingColumns = `county, id, round_id, instruction_count, total_fen, state, requested_at, reference, confirmed_on, confirmed_by, confirmed_at`

func scanFunding(row pgx.CollectableRow) (FundingRequest, error) {
	var (
		f  FundingRequest
		on pgtype.Date
		at *time.Time
	)
	if err := row.Scan(&f.County, &f.ID, &f.RoundID, &f.InstructionCount, &f.TotalFen, &f.State, &f.RequestedAt,
		&f.Reference, &on, &f.ConfirmedBy, &at); err != nil {
		return FundingRequest{}, err
	}
	f.RequestedAt = f.RequestedAt.UTC()
	f.ConfirmedOn = civilDate(on)
	if at != nil {
		f.ConfirmedAt = at.UTC()
	}
	return f, nil
}

// FundingFilter selects funding requests; zero fields select all.
type FundingFilter struct {
	Counties []string
	// State: "requested" or "confirmed"; "" for both.
	State   string
	RoundID string
}

// FundingPosition is where a page of funding requests continues: after
// the request with this time and id.
type FundingPosition struct {
	At time.Time
	ID string
}

// ListFundingRequests returns up to limit funding requests matching f,
// oldest first, after position after (zero: from the first); next is the
// position to continue from, zero on the last page.
func (s *Store) ListFundingRequests(ctx context.Context, f FundingFilter, after FundingPosition, limit int) (out []FundingRequest, next FundingPosition, err error) {
	if limit <= 0 || limit > MaxFundingPage {
		return nil, FundingPosition{}, fault.New(fault.ErrInvalid, "list funding requests: limit %d not in 1..%d", limit, MaxFundingPage)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+fundingColumns+` FROM funding_request
		WHERE ($1::timestamptz IS NULL OR (requested_at, id) > ($1, $2)) AND ($3::text[] IS NULL OR county = ANY($3))
		  AND ($4 = '' OR state = $4) AND ($5 = '' OR round_id = $5)
		ORDER BY requested_at, id LIMIT $6`, nullTime(after.At), after.ID, nilIfEmpty(f.Counties), f.State, f.RoundID, limit+1)
	if err != nil {
		return nil, FundingPosition{}, fail(err, "list funding requests")
	}
	out, err = pgx.CollectRows(rows, scanFunding)
	if err != nil {
		return nil, FundingPosition{}, fail(err, "list funding requests")
	}
	if len(out) > limit {
		out = out[:limit]
		next = FundingPosition{At: out[limit-1].RequestedAt, ID: out[limit-1].ID}
	}
	return out, next, nil
}

// GetFundingRequest returns a funding request by id, or fault.ErrNotFound.
func (s *Store) GetFundingRequest(ctx context.Context, id string) (FundingRequest, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+fundingColumns+` FROM funding_request WHERE id = $1`, id)
	if err != nil {
		return FundingRequest{}, fail(err, "get funding request %s", id)
	}
	f, err := pgx.CollectExactlyOneRow(rows, scanFunding)
	if errors.Is(err, pgx.ErrNoRows) {
		return FundingRequest{}, fault.New(fault.ErrNotFound, "no funding request %s (无此拨付申请)", id)
	}
	if err != nil {
		return FundingRequest{}, fail(err, "get funding request %s", id)
	}
	return f, nil
}

// ConfirmFunding confirms that the funds of funding request id are in place
// (资金拨付), with the voucher's reference and date, and makes its
// instructions pullable: each gets the next position of the finance feed,
// in release order. Confirming a confirmed request changes nothing and
// returns it as first confirmed. An empty reference or date is
// fault.ErrInvalid, an unknown id fault.ErrNotFound. Audited under actor.
func (s *Store) ConfirmFunding(ctx context.Context, actor access.Principal, id, reference string, on civil.Date, now time.Time) (FundingRequest, error) {
	if reference == "" || on == 0 {
		return FundingRequest{}, fault.New(fault.ErrInvalid, "confirm funding %s: a reference and a date are required (须填拨付凭证号)", id)
	}
	now = timestamp(now)
	var out FundingRequest
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+fundingColumns+` FROM funding_request WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		f, err := pgx.CollectExactlyOneRow(rows, scanFunding)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no funding request %s (无此拨付申请)", id)
		}
		if err != nil {
			return err
		}
		if f.State != fundingConfirmed {
			f.State, f.Reference, f.ConfirmedOn, f.ConfirmedBy, f.ConfirmedAt = fundingConfirmed, reference, on, actor.Subject, now
			if _, err := tx.Exec(ctx, `UPDATE funding_request SET state = 'confirmed', reference = $3, confirmed_on = $4, confirmed_by = $5, confirmed_at = $6
				WHERE county = $1 AND id = $2`, f.County, f.ID, reference, dateValue(on), actor.Subject, now); err != nil {
				return err
			}
			detail, _ := json.Marshal(map[string]any{"reference": reference, "confirmed_on": on.String(), "count": f.InstructionCount, "total_fen": f.TotalFen})
			if _, err := audit.Append(ctx, tx, audit.Entry{
				Domain: AuditDomain, At: now, Actor: actor, Action: "funding.confirm",
				ObjectType: "funding_request", ObjectID: f.ID, Detail: string(detail),
			}); err != nil {
				return err
			}
		}
		out = f
		// Instructions of a confirmed request without a position (all of
		// them at the first confirmation) join the feed.
		return makePullable(ctx, tx, f.County, f.ID)
	})
	if err != nil {
		return FundingRequest{}, fail(err, "confirm funding %s", id)
	}
	return out, nil
}

// makePullable gives the instructions of a confirmed funding request that
// have no feed position the next ones, in release order. The counter row
// stays locked until tx ends, so positions become visible in order.
func makePullable(ctx context.Context, tx pgx.Tx, county, fundingID string) error {
	rows, err := tx.Query(ctx, `SELECT id FROM payment_instruction WHERE county = $1 AND funding_request_id = $2 AND pull_seq IS NULL
		ORDER BY seq FOR UPDATE`, county, fundingID)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		return err
	}
	var last int64
	if err := tx.QueryRow(ctx, `UPDATE instruction_pull_counter SET last_seq = last_seq + $1 RETURNING last_seq`, len(ids)).Scan(&last); err != nil {
		return err
	}
	seqs := make([]int64, len(ids))
	for n := range ids {
		seqs[n] = last - int64(len(ids)) + 1 + int64(n)
	}
	_, err = tx.Exec(ctx, `UPDATE payment_instruction p SET pull_seq = v.pull_seq FROM unnest($1::text[], $2::bigint[]) AS v(id, pull_seq)
		WHERE p.county = $3 AND p.id = v.id`, ids, seqs, county)
	return err
}

// Reconciliation totals one county's instructions (County "" for all).
type Reconciliation struct {
	County      string
	Released    Tally // every instruction, re-issues included
	Paid        Tally
	Returned    Tally // returned and reissued
	Outstanding Tally // released and acknowledged
	Reissued    Tally // re-issues (also in Released)
	Funded      Tally // pullable: funding confirmed
}

// Balanced reports whether released = paid + returned + outstanding, in
// count and fen.
func (r Reconciliation) Balanced() bool {
	return r.Released.Count == r.Paid.Count+r.Returned.Count+r.Outstanding.Count &&
		r.Released.AmountFen == r.Paid.AmountFen+r.Returned.AmountFen+r.Outstanding.AmountFen
}

// ReconcileFilter selects the instructions to reconcile; zero fields
// select all.
type ReconcileFilter struct {
	Counties   []string
	RoundID    string
	PolicyYear int
}

// Reconcile totals the instructions matching f per county, sorted by
// county, and in all.
func (s *Store) Reconcile(ctx context.Context, f ReconcileFilter) (perCounty []Reconciliation, total Reconciliation, err error) {
	rows, err := s.pool.Query(ctx, `SELECT county,
			count(*), coalesce(sum(amount_fen), 0),
			count(*) FILTER (WHERE state = 'paid'), coalesce(sum(amount_fen) FILTER (WHERE state = 'paid'), 0),
			count(*) FILTER (WHERE state IN ('returned', 'reissued')), coalesce(sum(amount_fen) FILTER (WHERE state IN ('returned', 'reissued')), 0),
			count(*) FILTER (WHERE state IN ('released', 'acknowledged')), coalesce(sum(amount_fen) FILTER (WHERE state IN ('released', 'acknowledged')), 0),
			count(*) FILTER (WHERE reissue_of <> ''), coalesce(sum(amount_fen) FILTER (WHERE reissue_of <> ''), 0),
			count(*) FILTER (WHERE pull_seq IS NOT NULL), coalesce(sum(amount_fen) FILTER (WHERE pull_seq IS NOT NULL), 0)
		FROM payment_instruction
		WHERE ($1::text[] IS NULL OR county = ANY($1)) AND ($2 = '' OR round_id = $2) AND ($3 = 0 OR policy_year = $3)
		GROUP BY county ORDER BY county`, nilIfEmpty(f.Counties), f.RoundID, f.PolicyYear)
	if err != nil {
		return nil, Reconciliation{}, fail(err, "reconcile")
	}
	perCounty, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Reconciliation, error) {
		var r Reconciliation
		err := row.Scan(&r.County, &r.Released.Count, &r.Released.AmountFen, &r.Paid.Count, &r.Paid.AmountFen,
			&r.Returned.Count, &r.Returned.AmountFen, &r.Outstanding.Count, &r.Outstanding.AmountFen,
			&r.Reissued.Count, &r.Reissued.AmountFen, &r.Funded.Count, &r.Funded.AmountFen)
		return r, err
	})
	if err != nil {
		return nil, Reconciliation{}, fail(err, "reconcile")
	}
	for _, r := range perCounty {
		for _, p := range []struct {
			to   *Tally
			from Tally
		}{
			{&total.Released, r.Released}, {&total.Paid, r.Paid}, {&total.Returned, r.Returned},
			{&total.Outstanding, r.Outstanding}, {&total.Reissued, r.Reissued}, {&total.Funded, r.Funded},
		} {
			p.to.Count += p.from.Count
			p.to.AmountFen += p.from.AmountFen
		}
	}
	return perCounty, total, nil
}

// ExportSelection returns the instructions to export into a pain.001, in
// county and release order, with the latest confirmation among their
// funding requests (what makes the export's time and date deterministic):
// every outstanding instruction of funding request fundingID, or else the
// instructions ids, each outstanding and funded.
//
// Errors: fault.ErrNotFound (the funding request or an id);
// fault.ErrFailedPrecondition (funding not confirmed, an instruction
// settled, nothing outstanding).
func (s *Store) ExportSelection(ctx context.Context, fundingID string, ids []string) (out []Instruction, confirmed FundingRequest, err error) {
	err = pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var rows pgx.Rows
		if fundingID != "" {
			rows, err = tx.Query(ctx, `SELECT `+fundingColumns+` FROM funding_request WHERE id = $1`, fundingID)
			if err != nil {
				return err
			}
			f, err := pgx.CollectExactlyOneRow(rows, scanFunding)
			if errors.Is(err, pgx.ErrNoRows) {
				return fault.New(fault.ErrNotFound, "no funding request %s (无此拨付申请)", fundingID)
			}
			if err != nil {
				return err
			}
			if f.State != fundingConfirmed {
				return fault.New(fault.ErrFailedPrecondition, "funding request %s is not confirmed (资金未拨付)", fundingID)
			}
			confirmed = f
			rows, err = tx.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction
				WHERE county = $1 AND funding_request_id = $2 AND state IN ('released', 'acknowledged') ORDER BY seq`, f.County, f.ID)
			if err != nil {
				return err
			}
			if out, err = pgx.CollectRows(rows, scanInstruction); err != nil {
				return err
			}
			if len(out) == 0 {
				return fault.New(fault.ErrFailedPrecondition, "funding request %s has no outstanding instruction (无待支付指令)", fundingID)
			}
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT `+instructionColumns+` FROM payment_instruction WHERE id = ANY($1) ORDER BY county, seq`, ids)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, scanInstruction); err != nil {
			return err
		}
		found := make(map[string]bool, len(out))
		var fundings []string
		for _, i := range out {
			found[i.ID] = true
			switch {
			case !i.Pullable():
				return fault.New(fault.ErrFailedPrecondition, "instruction %s is not funded (资金未拨付)", i.ID)
			case !i.State.Outstanding():
				return fault.New(fault.ErrFailedPrecondition, "instruction %s is %s, not outstanding (已结算)", i.ID, i.State)
			}
			fundings = append(fundings, i.FundingRequestID)
		}
		for _, id := range ids {
			if !found[id] {
				return fault.New(fault.ErrNotFound, "no payment instruction %s (无此支付指令)", id)
			}
		}
		rows, err = tx.Query(ctx, `SELECT `+fundingColumns+` FROM funding_request WHERE id = ANY($1) ORDER BY confirmed_at DESC, id LIMIT 1`,
			slices.Compact(slices.Sorted(slices.Values(fundings))))
		if err != nil {
			return err
		}
		confirmed, err = pgx.CollectExactlyOneRow(rows, scanFunding)
		return err
	})
	if err != nil {
		return nil, FundingRequest{}, fail(err, "export selection")
	}
	return out, confirmed, nil
}
