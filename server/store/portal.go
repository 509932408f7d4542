package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/fault"
	"wengang/policy/civil"
)

// PublicRound is a publicity round as the public sees it: approved (or
// released) and started. It carries nothing of an account.
type PublicRound struct {
	ID             string
	Title          string
	PolicyYear     int
	StartDate      civil.Date
	EndDate        civil.Date
	Released       bool // released for payment; otherwise approved
	ContactOffice  string
	ContactPhone   string
	ContactAddress string
	ContactEmail   string
	Counties       []string // the counties with entries listed, in code order
	Listed         Tally    // entries listed (not removed) and their amounts
}

// InPublicity reports whether the round takes objections on date today:
// approved, not released, and today within its publicity period.
func (r PublicRound) InPublicity(today civil.Date) bool {
	return !r.Released && r.StartDate <= today && today <= r.EndDate
}

// PublicEntry is one enterprise on a publicity list: never an account.
type PublicEntry struct {
	County    string
	USCC      string
	Name      string
	AmountFen int64
}

// publicRoundSQL selects the rounds shown on date $1: approved or released,
// started by then; never drafts.
const publicRoundSQL = `SELECT r.id, r.title, r.policy_year, r.start_date, r.end_date, r.state = 'released',
		r.contact_office, r.contact_phone, r.contact_address, r.contact_email,
		coalesce((SELECT array_agg(DISTINCT e.county ORDER BY e.county) FROM round_entry e WHERE e.round_id = r.id AND NOT e.removed), '{}'),
		(SELECT count(*) FROM round_entry e WHERE e.round_id = r.id AND NOT e.removed),
		coalesce((SELECT sum(e.amount_fen) FROM round_entry e WHERE e.round_id = r.id AND NOT e.removed), 0)
	FROM publicity_round r
	WHERE r.state IN ('approved', 'released') AND r.start_date <= $1`

func scanPublicRound(row pgx.Row) (PublicRound, error) {
	var (
		r          PublicRound
		start, end pgtype.Date
	)
	if err := row.Scan(&r.ID, &r.Title, &r.PolicyYear, &start, &end, &r.Released,
		&r.ContactOffice, &r.ContactPhone, &r.ContactAddress, &r.ContactEmail,
		&r.Counties, &r.Listed.Count, &r.Listed.AmountFen); err != nil {
		return PublicRound{}, err
	}
	r.StartDate, r.EndDate = civilDate(start), civilDate(end)
	return r, nil
}

// PublicRounds returns the rounds shown to the public on business date
// today (approved or released, start date on or before today), newest start
// date first (then newest id).
func (s *Store) PublicRounds(ctx context.Context, today civil.Date) ([]PublicRound, error) {
	rows, err := s.pool.Query(ctx, publicRoundSQL+` ORDER BY r.start_date DESC, r.id DESC`, dateValue(today))
	if err != nil {
		return nil, fail(err, "list public rounds")
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PublicRound, error) { return scanPublicRound(row) })
	if err != nil {
		return nil, fail(err, "list public rounds")
	}
	return rs, nil
}

// PublicRound returns round id as shown on business date today, or
// fault.ErrNotFound when there is no such round or it is not shown to the
// public (a draft, or not started).
func (s *Store) PublicRound(ctx context.Context, id string, today civil.Date) (PublicRound, error) {
	r, err := scanPublicRound(s.pool.QueryRow(ctx, publicRoundSQL+` AND r.id = $2`, dateValue(today), id))
	if err != nil {
		if err == pgx.ErrNoRows {
			return PublicRound{}, fault.New(fault.ErrNotFound, "no public round %q (无此公示批次)", id)
		}
		return PublicRound{}, fail(err, "get public round %s", id)
	}
	return r, nil
}

// PublicEntries returns every entry listed in round id (removed ones left
// out; objected ones listed), ordered by county, name and USCC: the whole
// list the portal pages, searches and downloads. It does not check that
// the round is public; callers get the round with PublicRound first.
func (s *Store) PublicEntries(ctx context.Context, roundID string) ([]PublicEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT county, uscc, name, amount_fen FROM round_entry
		WHERE round_id = $1 AND NOT removed ORDER BY county, name COLLATE "C", uscc`, roundID)
	if err != nil {
		return nil, fail(err, "list entries of round %s", roundID)
	}
	es, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PublicEntry, error) {
		var e PublicEntry
		err := row.Scan(&e.County, &e.USCC, &e.Name, &e.AmountFen)
		return e, err
	})
	if err != nil {
		return nil, fail(err, "list entries of round %s", roundID)
	}
	return es, nil
}

// PublicityFilter selects one page of a round's list.
type PublicityFilter struct {
	RoundID string
	// Query keeps the entries whose name contains it or whose USCC starts
	// with it; "" keeps all. The caller normalizes it.
	Query  string
	County string // "" for every county
	Offset int
	Limit  int // > 0
}

// ListPublicity returns one page of the entries of f.RoundID that f selects,
// in PublicEntries' order, and how many match on all pages.
func (s *Store) ListPublicity(ctx context.Context, f PublicityFilter) ([]PublicEntry, int64, error) {
	if f.Limit <= 0 || f.Offset < 0 {
		return nil, 0, fault.New(fault.ErrInvalid, "page offset %d and size %d", f.Offset, f.Limit)
	}
	where := `round_id = $1 AND NOT removed AND ($2 = '' OR county = $2)
		AND ($3 = '' OR strpos(name, $3) > 0 OR starts_with(uscc, $3))`
	var matched int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM round_entry WHERE `+where, f.RoundID, f.County, f.Query).Scan(&matched); err != nil {
		return nil, 0, fail(err, "count entries of round %s", f.RoundID)
	}
	rows, err := s.pool.Query(ctx, `SELECT county, uscc, name, amount_fen FROM round_entry WHERE `+where+`
		ORDER BY county, name COLLATE "C", uscc OFFSET $4 LIMIT $5`, f.RoundID, f.County, f.Query, f.Offset, f.Limit)
	if err != nil {
		return nil, 0, fail(err, "list entries of round %s", f.RoundID)
	}
	es, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PublicEntry, error) {
		var e PublicEntry
		err := row.Scan(&e.County, &e.USCC, &e.Name, &e.AmountFen)
		return e, err
	})
	if err != nil {
		return nil, 0, fail(err, "list entries of round %s", f.RoundID)
	}
	return es, matched, nil
}

// MatchEntry reports whether e is kept by query q (already normalized):
// its name contains q or its USCC starts with q. It is ListPublicity's
// filter, for callers that filter PublicEntries in memory.
func MatchEntry(e PublicEntry, q string) bool {
	return q == "" || strings.Contains(e.Name, q) || strings.HasPrefix(e.USCC, q)
}

// String returns the round's id and dates, for logs.
func (r PublicRound) String() string {
	return fmt.Sprintf("%s (%s–%s)", r.ID, r.StartDate, r.EndDate)
}
