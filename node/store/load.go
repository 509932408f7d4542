package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/pg"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// LoadDataset returns the rows of dataset id of county, each kind in its
// file's order, equal to the rows that were put (a kind never imported, or
// imported with no rows, is a nil slice). It reads one consistent snapshot,
// so a load that runs while files are imported sees each file whole or not
// at all. A dataset not in county is fault.ErrNotFound.
func (s *Store) LoadDataset(ctx context.Context, county string, id int64) (*refund.Dataset, error) {
	var ds refund.Dataset
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		d, err := s.getDataset(ctx, tx, county, "id = $2", id)
		if err != nil {
			return err
		}
		size := make(map[FileKind]int, len(d.Files))
		for _, f := range d.Files {
			size[f.Kind] = f.Rows
		}
		if ds.Units, err = load[refund.Unit](ctx, tx, county, id, unitTable, size[FileUnits], &unitScanner{}); err != nil {
			return err
		}
		if ds.Contributions, err = load[refund.Contribution](ctx, tx, county, id, contributionTable, size[FileContributions], &contributionScanner{}); err != nil {
			return err
		}
		if ds.Accounts, err = load[refund.Account](ctx, tx, county, id, accountTable, size[FileAccounts], &accountScanner{}); err != nil {
			return err
		}
		ds.Exclusions, err = load[refund.Exclusion](ctx, tx, county, id, exclusionTable, size[FileExclusions], &exclusionScanner{})
		return err
	})
	if err != nil {
		return nil, fail(err, "load dataset %d of county %s", id, county)
	}
	return &ds, nil
}

// rowScanner reads one row of a table into r, through the destinations
// it gives for the table's columns after seq.
type rowScanner[T any] interface {
	dest() []any
	set(r *T) error
}

// load reads the rows of tbl for a dataset in seq order; n is their number
// as recorded with the file.
func load[T any](ctx context.Context, tx pgx.Tx, county string, id int64, tbl table, n int, sc rowScanner[T]) ([]T, error) {
	if n == 0 {
		return nil, nil
	}
	cols := tbl.columns[3:]
	sql := "SELECT "
	for i, c := range cols {
		if i > 0 {
			sql += ", "
		}
		sql += c
	}
	sql += " FROM " + tbl.name + " WHERE county = $1 AND dataset_id = $2 ORDER BY seq"
	rows, err := tx.Query(ctx, sql, county, id)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, n)
	_, err = pgx.ForEachRow(rows, sc.dest(), func() error {
		var r T
		if err := sc.set(&r); err != nil {
			return fmt.Errorf("%s row %d: %w", tbl.name, len(out)+1, err)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("%s: %d rows, but its file recorded %d", tbl.name, len(out), n)
	}
	return out, nil
}

// The scanners: one per table, holding the scanned values of one row.

type unitScanner struct {
	r      refund.Unit
	size   pgtype.Text
	status string
}

func (s *unitScanner) dest() []any {
	return []any{&s.r.USCC, &s.r.Name, &s.r.County, &s.r.Industry, &s.size, &s.status,
		&s.r.HeadcountStart, &s.r.HeadcountEnd, &s.r.Mobile}
}

func (s *unitScanner) set(r *refund.Unit) error {
	*r = s.r
	if s.size.Valid {
		if r.Size = parseSize(s.size.String); r.Size == refund.SizeUnknown {
			return fmt.Errorf("size %q", s.size.String)
		}
	}
	if r.Status = parseStatus(s.status); r.Status == 0 {
		return fmt.Errorf("status %q", s.status)
	}
	return nil
}

type contributionScanner struct {
	r      refund.Contribution
	period int32
	paidOn pgtype.Date
}

func (s *contributionScanner) dest() []any {
	return []any{&s.r.USCC, &s.period, &s.r.EmployerFen, &s.r.EmployeeFen, &s.r.LateFeeFen, &s.paidOn}
}

func (s *contributionScanner) set(r *refund.Contribution) error {
	*r = s.r
	r.Period = civil.Month(s.period)
	r.PaidOn = civilDate(s.paidOn)
	return nil
}

type accountScanner struct {
	r    refund.Account
	kind string
}

func (s *accountScanner) dest() []any {
	return []any{&s.r.USCC, &s.kind, &s.r.Bank, &s.r.BankCode, &s.r.AccountNo, &s.r.AccountName}
}

func (s *accountScanner) set(r *refund.Account) error {
	*r = s.r
	if r.Kind = parseAccountKind(s.kind); r.Kind == 0 {
		return fmt.Errorf("account kind %q", s.kind)
	}
	return nil
}

type exclusionScanner struct {
	r                 refund.Exclusion
	list              string
	listed, removedOn pgtype.Date
}

func (s *exclusionScanner) dest() []any {
	return []any{&s.r.USCC, &s.list, &s.r.Source, &s.listed, &s.removedOn}
}

func (s *exclusionScanner) set(r *refund.Exclusion) error {
	*r = s.r
	if r.List = parseList(s.list); r.List == 0 {
		return fmt.Errorf("list %q", s.list)
	}
	r.ListedOn = civilDate(s.listed)
	r.RemovedOn = civilDate(s.removedOn)
	return nil
}

// civilDate returns the civil date of a date column; NULL is the zero Date.
func civilDate(d pgtype.Date) civil.Date {
	if !d.Valid {
		return 0
	}
	y, m, day := d.Time.Date()
	return civil.Date(y*10000 + int(m)*100 + day)
}

func parseSize(s string) refund.Size {
	for v := refund.SizeLarge; v <= refund.SizeMicro; v++ {
		if v.String() == s {
			return v
		}
	}
	return refund.SizeUnknown
}

func parseStatus(s string) refund.Status {
	for v := refund.StatusActive; v <= refund.StatusRevoked; v++ {
		if v.String() == s {
			return v
		}
	}
	return 0
}

func parseAccountKind(s string) refund.AccountKind {
	for v := refund.AccountCorporate; v <= refund.AccountSocialInsurance; v++ {
		if v.String() == s {
			return v
		}
	}
	return 0
}

func parseList(s string) refund.List {
	for v := refund.ListCredit; v <= refund.ListEnvironment; v++ {
		if v.String() == s {
			return v
		}
	}
	return 0
}
