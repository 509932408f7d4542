package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// PutUnits imports a units file (参保单位) into dataset datasetID of county:
// its description and its rows, in file order. Like every Put method, it is
// all or nothing, and fails with
//   - fault.ErrNotFound when county has no such dataset;
//   - fault.ErrFailedPrecondition when the dataset is sealed;
//   - fault.ErrConflict when a file of this kind is already in the dataset;
//   - fault.ErrInvalid when file or a row cannot be stored (an enum or a
//     date out of range, a negative amount or headcount), naming the row.
//
// Rows are validated for storage only; the policy's checks belong to the
// reader of the file, before this.
func (s *Store) PutUnits(ctx context.Context, county string, datasetID int64, file FileMeta, rows []refund.Unit) error {
	return put(ctx, s, county, datasetID, FileUnits, file, rows, unitTable, unitValues)
}

// PutContributions imports a contributions file (失业保险缴费明细) into
// dataset datasetID of county, as PutUnits does.
func (s *Store) PutContributions(ctx context.Context, county string, datasetID int64, file FileMeta, rows []refund.Contribution) error {
	return put(ctx, s, county, datasetID, FileContributions, file, rows, contributionTable, contributionValues)
}

// PutAccounts imports an accounts file (账户) into dataset datasetID of
// county, as PutUnits does.
func (s *Store) PutAccounts(ctx context.Context, county string, datasetID int64, file FileMeta, rows []refund.Account) error {
	return put(ctx, s, county, datasetID, FileAccounts, file, rows, accountTable, accountValues)
}

// PutExclusions imports an exclusion-lists file (名单) into dataset datasetID
// of county, as PutUnits does.
func (s *Store) PutExclusions(ctx context.Context, county string, datasetID int64, file FileMeta, rows []refund.Exclusion) error {
	return put(ctx, s, county, datasetID, FileExclusions, file, rows, exclusionTable, exclusionValues)
}

// table names a row table and its columns; the first three are always
// county, dataset_id and seq.
type table struct {
	name    string
	columns []string
}

var (
	unitTable = table{"dataset_unit", []string{"county", "dataset_id", "seq",
		"uscc", "name", "unit_county", "industry", "size", "status", "headcount_start", "headcount_end", "mobile"}}
	contributionTable = table{"dataset_contribution", []string{"county", "dataset_id", "seq",
		"uscc", "period", "employer_fen", "employee_fen", "late_fee_fen", "paid_on"}}
	accountTable = table{"dataset_account", []string{"county", "dataset_id", "seq",
		"uscc", "kind", "bank", "bank_code", "account_no", "account_name"}}
	exclusionTable = table{"dataset_exclusion", []string{"county", "dataset_id", "seq",
		"uscc", "list", "source", "listed_on", "removed_on"}}
)

// put stores one file in one transaction: it locks the dataset against
// sealing (FOR SHARE: files of other kinds may come in at the same time),
// records the file, then copies its rows.
func put[T any](ctx context.Context, s *Store, county string, id int64, kind FileKind, file FileMeta, rows []T, tbl table, fill func(vals []any, r *T) error) error {
	if err := file.validate(); err != nil {
		return fail(fault.New(fault.ErrInvalid, "%w", err), "import %s file %q into dataset %d of county %s", kind, file.Name, id, county)
	}
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var state DatasetState
		err := tx.QueryRow(ctx, "SELECT state FROM dataset WHERE county = $1 AND id = $2 FOR SHARE", county, id).Scan(&state)
		if err == pgx.ErrNoRows {
			return errNoDataset
		}
		if err != nil {
			return err
		}
		if state != DatasetOpen {
			return fault.New(fault.ErrFailedPrecondition, "the dataset is sealed: nothing more can be imported into it")
		}
		tag, err := tx.Exec(ctx, `INSERT INTO dataset_file (county, dataset_id, kind, file_name, format, encoding, row_count, sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			county, id, kind, file.Name, file.Format, file.Encoding, len(rows), file.SHA256[:])
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var had string
			_ = tx.QueryRow(ctx, "SELECT file_name FROM dataset_file WHERE county = $1 AND dataset_id = $2 AND kind = $3", county, id, kind).Scan(&had)
			return fault.New(fault.ErrConflict, "the dataset already has a %s file (%q)", kind, had)
		}
		src := &rowSource[T]{rows: rows, fill: fill, vals: make([]any, len(tbl.columns))}
		src.vals[0], src.vals[1] = county, id
		n, err := tx.CopyFrom(ctx, pgx.Identifier{tbl.name}, tbl.columns, src)
		if src.err != nil { // pgx reports only its message, through the server
			return src.err
		}
		if err != nil {
			return copyError(err)
		}
		if n != int64(len(rows)) {
			return errors.New("copied " + strconv.FormatInt(n, 10) + " rows of " + strconv.Itoa(len(rows)))
		}
		return nil
	})
	if err != nil {
		return fail(err, "import %s file %q into dataset %d of county %s", kind, file.Name, id, county)
	}
	return nil
}

func (f FileMeta) validate() error {
	switch {
	case f.Name == "":
		return errors.New("the file name is required")
	case f.Format != "csv" && f.Format != "xlsx":
		return errors.New("the format must be csv or xlsx, not " + strconv.Quote(f.Format))
	}
	return nil
}

// rowSource feeds rows to CopyFrom one at a time, converting each as it goes
// into a slice of values that it reuses (CopyFrom encodes a row before it
// asks for the next). vals[0] and vals[1] are the county and the dataset id;
// fill sets the rest but for vals[2], the row's seq.
type rowSource[T any] struct {
	rows []T
	fill func(vals []any, r *T) error
	vals []any
	i    int // seq of the current row, from 1
	err  error
}

func (s *rowSource[T]) Next() bool {
	if s.err != nil || s.i >= len(s.rows) {
		return false
	}
	s.i++
	return true
}

func (s *rowSource[T]) Values() ([]any, error) {
	s.vals[2] = int32(s.i)
	if err := s.fill(s.vals, &s.rows[s.i-1]); err != nil {
		s.err = fault.New(fault.ErrInvalid, "row %d: %w", s.i, err)
		return nil, s.err
	}
	return s.vals, nil
}

func (s *rowSource[T]) Err() error { return s.err }

// copyLine finds the row in the context of an error raised during COPY:
// "COPY dataset_unit, line 7: ..." (in binary COPY, line n is the n-th row).
var copyLine = regexp.MustCompile(`^COPY [^,]+, line ([0-9]+)`)

// copyError translates an error of COPY, naming the row the server refused.
func copyError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if m := copyLine.FindStringSubmatch(pgErr.Where); m != nil {
			return fmt.Errorf("row %s: %w", m[1], pg.Translate(err))
		}
	}
	return err
}

func unitValues(v []any, r *refund.Unit) error {
	if r.Size > refund.SizeMicro {
		return errors.New("size " + r.Size.String() + " is not a size class")
	}
	if r.Status < refund.StatusActive || r.Status > refund.StatusRevoked {
		return errors.New("status " + r.Status.String() + " is not a registration status")
	}
	var size any // NULL: unknown
	if r.Size != refund.SizeUnknown {
		size = r.Size.String()
	}
	v[3], v[4], v[5], v[6], v[7], v[8] = r.USCC, r.Name, r.County, r.Industry, size, r.Status.String()
	v[9], v[10], v[11] = r.HeadcountStart, r.HeadcountEnd, r.Mobile
	return nil
}

func contributionValues(v []any, r *refund.Contribution) error {
	paid, err := dateValue(r.PaidOn, "paid_on")
	if err != nil {
		return err
	}
	v[3], v[4], v[5], v[6], v[7], v[8] = r.USCC, int32(r.Period), r.EmployerFen, r.EmployeeFen, r.LateFeeFen, paid
	return nil
}

func accountValues(v []any, r *refund.Account) error {
	if r.Kind < refund.AccountCorporate || r.Kind > refund.AccountSocialInsurance {
		return errors.New("kind " + r.Kind.String() + " is not an account kind")
	}
	v[3], v[4], v[5], v[6], v[7], v[8] = r.USCC, r.Kind.String(), r.Bank, r.BankCode, r.AccountNo, r.AccountName
	return nil
}

func exclusionValues(v []any, r *refund.Exclusion) error {
	if r.List < refund.ListCredit || r.List > refund.ListEnvironment {
		return errors.New("list " + r.List.String() + " is not an exclusion list")
	}
	listed, err := dateValue(r.ListedOn, "listed_on")
	if err != nil {
		return err
	}
	removed, err := dateValue(r.RemovedOn, "removed_on")
	if err != nil {
		return err
	}
	v[3], v[4], v[5], v[6], v[7] = r.USCC, r.List.String(), r.Source, listed, removed
	return nil
}

// dateValue returns d for a date column: NULL for the zero Date, else a
// time.Time at midnight UTC (pgx writes its year, month and day). A Date
// that does not exist is an error, never moved to another day.
func dateValue(d civil.Date, column string) (any, error) {
	if d.IsZero() {
		return nil, nil
	}
	if _, err := civil.NewDate(d.Year(), d.Month(), d.Day()); err != nil {
		return nil, errors.New(column + " " + strconv.Itoa(int(d)) + " is not a date")
	}
	return time.Date(d.Year(), time.Month(d.Month()), d.Day(), 0, 0, 0, 0, time.UTC), nil
}
