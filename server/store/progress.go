package store

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/pg"
	"wengang/policy/civil"
)

// CountyProgress is how far one county's refund has come, from its latest
// screening report and the city's own records (the progress dashboard).
type CountyProgress struct {
	County string
	// The latest screening reported (by report time), if any.
	ScreeningID string
	AsOf        civil.Date
	Screened    int64 // units screened
	Eligible    Tally // eligible after review
	Hold        Tally // held after review
	// Items by their state on the city, amounts as claimed.
	Received    Tally // received and not rejected (every later state included)
	Rejected    Tally
	InPublicity Tally // in publicity or objected
	Released    Tally // released, paid or returned
	Paid        Tally
	Returned    Tally // returned and not yet reissued
	Outstanding Tally // released, not yet paid or returned
	// Value dates of the county's first and last payment (0 for none).
	FirstPaidOn civil.Date
	LastPaidOn  civil.Date
}

// Progress returns the progress of counties (every county with a report,
// an item or a payment when counties is empty), by county code. Counties
// with nothing are left out; the caller lists them with zeros. All figures
// come from one snapshot.
func (s *Store) Progress(ctx context.Context, counties []string) (map[string]*CountyProgress, error) {
	out := make(map[string]*CountyProgress)
	get := func(c string) *CountyProgress {
		p := out[c]
		if p == nil {
			p = &CountyProgress{County: c}
			out[c] = p
		}
		return p
	}
	all := len(counties) == 0
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT ON (county) county, screening_id, as_of, screened_units,
				reviewed_eligible_count, reviewed_eligible_fen, reviewed_hold_count, reviewed_hold_fen
			FROM screening_report WHERE $1 OR county = ANY($2)
			ORDER BY county, reported_at DESC, revision DESC`, all, counties)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				c    string
				p    CountyProgress
				asOf pgtype.Date
			)
			if err := rows.Scan(&c, &p.ScreeningID, &asOf, &p.Screened, &p.Eligible.Count, &p.Eligible.AmountFen,
				&p.Hold.Count, &p.Hold.AmountFen); err != nil {
				rows.Close()
				return err
			}
			g := get(c)
			g.ScreeningID, g.AsOf, g.Screened, g.Eligible, g.Hold = p.ScreeningID, civilDate(asOf), p.Screened, p.Eligible, p.Hold
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT county, state, count(*), coalesce(sum(refund_fen), 0) FROM received_item
			WHERE state <> 'pending' AND ($1 OR county = ANY($2)) GROUP BY county, state`, all, counties)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				c, state string
				t        Tally
			)
			if err := rows.Scan(&c, &state, &t.Count, &t.AmountFen); err != nil {
				rows.Close()
				return err
			}
			g := get(c)
			add := func(to *Tally) { to.Count += t.Count; to.AmountFen += t.AmountFen }
			switch ItemState(state) {
			case ItemRejected:
				add(&g.Rejected)
				continue
			case ItemInPublicity, ItemObjected:
				add(&g.InPublicity)
			case ItemReleased:
				add(&g.Released)
				add(&g.Outstanding)
			case ItemPaid:
				add(&g.Released)
				add(&g.Paid)
			case ItemReturned:
				add(&g.Released)
				add(&g.Returned)
			}
			add(&g.Received)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT county, min(paid_on), max(paid_on) FROM payment_instruction
			WHERE state = 'paid' AND paid_on IS NOT NULL AND ($1 OR county = ANY($2)) GROUP BY county`, all, counties)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				c           string
				first, last pgtype.Date
			)
			if err := rows.Scan(&c, &first, &last); err != nil {
				rows.Close()
				return err
			}
			g := get(c)
			g.FirstPaidOn, g.LastPaidOn = civilDate(first), civilDate(last)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fail(err, "read progress")
	}
	return out, nil
}
