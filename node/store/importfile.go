package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/refund"
)

// FileKinds returns the kinds of source file in their order.
func FileKinds() []FileKind { return append([]FileKind(nil), fileKinds...) }

// FileReport is what ImportService reports of an imported file beyond File.
type FileReport struct {
	Kind         FileKind
	SizeBytes    int64
	WarningCount int64
	ImportedBy   string
}

// DatasetReport is a dataset with what ImportService reports of it.
type DatasetReport struct {
	Dataset
	SealedBy  string
	UnitCount int64        // rows of its units file
	Reports   []FileReport // parallel to Dataset.Files
}

// Upload is one source file to import with ImportFile: its description and
// its rows, all of one kind (only the slice of Kind is read).
type Upload struct {
	County  string
	Dataset string // the dataset's name; a new name creates an open dataset
	Kind    FileKind
	File    FileMeta
	// SizeBytes is the file's size; WarningCount its rows with warnings;
	// ImportedBy the subject of the importer.
	SizeBytes    int64
	WarningCount int64
	ImportedBy   string
	// Lines, when set, holds the line of the file of each row (parallel to
	// the rows), kept for the warnings found when the dataset is sealed.
	Lines         []int32
	Units         []refund.Unit
	Contributions []refund.Contribution
	Accounts      []refund.Account
	Exclusions    []refund.Exclusion
	// Key, when set, is the request's idempotency key and RequestSHA256
	// what it was used for.
	Key           string
	RequestSHA256 [32]byte
}

func (u *Upload) rows() int {
	switch u.Kind {
	case FileUnits:
		return len(u.Units)
	case FileContributions:
		return len(u.Contributions)
	case FileAccounts:
		return len(u.Accounts)
	case FileExclusions:
		return len(u.Exclusions)
	}
	return 0
}

// ImportReply is the answer to an import: Response is what the finish
// function of ImportFile encoded, or, when Replayed, the first answer to
// the same idempotency key.
type ImportReply struct {
	Response []byte
	Replayed bool
}

// ImportReplay returns the first answer recorded for an idempotency key of
// county and what the key was used for; found is false for a new key.
func (s *Store) ImportReplay(ctx context.Context, county, key string) (requestSHA256 [32]byte, response []byte, found bool, err error) {
	var sum []byte
	err = s.pool.QueryRow(ctx, `SELECT request_sha256, response FROM import_request WHERE county = $1 AND idempotency_key = $2`,
		county, key).Scan(&sum, &response)
	if errors.Is(err, pgx.ErrNoRows) {
		return requestSHA256, nil, false, nil
	}
	if err != nil {
		return requestSHA256, nil, false, fail(err, "import key of county %s", county)
	}
	copy(requestSHA256[:], sum)
	return requestSHA256, response, true, nil
}

// errKeyReused refuses an idempotency key used before for another request.
var errKeyReused = fault.New(fault.ErrConflict, "the idempotency key was used for another request (幂等键已用于其他请求)")

// ImportFile imports up into its dataset in one transaction, creating the
// dataset when its name is new: a file of a kind the dataset already holds
// is replaced, rows and all. Rows go in with CopyFrom. finish runs inside
// the transaction once the file is stored, with the dataset as it now is;
// it returns the answer to record under up.Key (if any) and the audit entry
// to append (its Domain defaults to the county). Nothing is stored unless
// all of it is.
//
// With up.Key set, a key recorded before answers with its first answer when
// it was used for the same request (up.RequestSHA256), and fails with
// fault.ErrConflict when it was used for another. Other errors:
// fault.ErrInvalid (a bad file description or a row that cannot be stored),
// fault.ErrFailedPrecondition (the dataset is sealed).
func (s *Store) ImportFile(ctx context.Context, up *Upload, finish func(DatasetReport) (response []byte, entry audit.Entry, err error)) (ImportReply, error) {
	if err := up.File.validate(); err != nil {
		return ImportReply{}, fault.New(fault.ErrInvalid, "import %s file %q: %w", up.Kind, up.File.Name, err)
	}
	if up.County == "" || up.Dataset == "" {
		return ImportReply{}, fault.New(fault.ErrInvalid, "import: county and dataset name are required")
	}
	if up.Lines != nil && len(up.Lines) != up.rows() {
		return ImportReply{}, fault.New(fault.ErrInvalid, "import: %d lines for %d rows", len(up.Lines), up.rows())
	}
	var reply ImportReply
	for attempt := 0; ; attempt++ {
		err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
			r, err := s.importFile(ctx, tx, up, finish)
			reply = r
			return err
		})
		// Two requests with one new key at once: the loser sees the
		// winner's answer.
		if up.Key != "" && attempt == 0 && isUniqueViolation(err, "import_request_pkey") {
			continue
		}
		if err != nil {
			return ImportReply{}, fail(err, "import %s file %q into dataset %q of county %s", up.Kind, up.File.Name, up.Dataset, up.County)
		}
		return reply, nil
	}
}

func (s *Store) importFile(ctx context.Context, tx pgx.Tx, up *Upload, finish func(DatasetReport) ([]byte, audit.Entry, error)) (ImportReply, error) {
	if up.Key != "" {
		var sum, response []byte
		err := tx.QueryRow(ctx, `SELECT request_sha256, response FROM import_request WHERE county = $1 AND idempotency_key = $2`,
			up.County, up.Key).Scan(&sum, &response)
		switch {
		case err == nil && bytes.Equal(sum, up.RequestSHA256[:]):
			return ImportReply{Response: response, Replayed: true}, nil
		case err == nil:
			return ImportReply{}, errKeyReused
		case !errors.Is(err, pgx.ErrNoRows):
			return ImportReply{}, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO dataset (county, name) VALUES ($1, $2) ON CONFLICT (county, name) DO NOTHING`, up.County, up.Dataset); err != nil {
		return ImportReply{}, err
	}
	// FOR UPDATE: imports into one dataset, and its sealing, take turns.
	var (
		id    int64
		state DatasetState
	)
	if err := tx.QueryRow(ctx, `SELECT id, state FROM dataset WHERE county = $1 AND name = $2 FOR UPDATE`, up.County, up.Dataset).Scan(&id, &state); err != nil {
		return ImportReply{}, err
	}
	if state != DatasetOpen {
		return ImportReply{}, fault.New(fault.ErrFailedPrecondition, "the dataset is sealed: nothing more can be imported into it (数据集已封存)")
	}
	tbl := tableOf(up.Kind)
	if _, err := tx.Exec(ctx, `DELETE FROM `+tbl.name+` WHERE county = $1 AND dataset_id = $2`, up.County, id); err != nil {
		return ImportReply{}, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dataset_file WHERE county = $1 AND dataset_id = $2 AND kind = $3`, up.County, id, up.Kind); err != nil {
		return ImportReply{}, err
	}
	n := up.rows()
	_, err := tx.Exec(ctx, `INSERT INTO dataset_file (county, dataset_id, kind, file_name, format, encoding, row_count, sha256, size_bytes, warning_count, imported_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		up.County, id, up.Kind, up.File.Name, up.File.Format, up.File.Encoding, n, up.File.SHA256[:], up.SizeBytes, up.WarningCount, up.ImportedBy)
	if err != nil {
		return ImportReply{}, err
	}
	switch up.Kind {
	case FileUnits:
		err = copyRows(ctx, tx, up.County, id, tbl, up.Units, nil, unitValues)
	case FileContributions:
		err = copyRows(ctx, tx, up.County, id, tbl, up.Contributions, up.Lines, contributionValues)
	case FileAccounts:
		err = copyRows(ctx, tx, up.County, id, tbl, up.Accounts, up.Lines, accountValues)
	case FileExclusions:
		err = copyRows(ctx, tx, up.County, id, tbl, up.Exclusions, up.Lines, exclusionValues)
	}
	if err != nil {
		return ImportReply{}, err
	}
	rep, err := s.datasetReport(ctx, tx, up.County, "id = $2", id)
	if err != nil {
		return ImportReply{}, err
	}
	response, entry, err := finish(rep)
	if err != nil {
		return ImportReply{}, err
	}
	if entry.Domain == "" {
		entry.Domain = up.County
	}
	if _, err := audit.Append(ctx, tx, entry); err != nil {
		return ImportReply{}, err
	}
	if up.Key != "" {
		_, err := tx.Exec(ctx, `INSERT INTO import_request (county, idempotency_key, request_sha256, dataset_id, response) VALUES ($1, $2, $3, $4, $5)`,
			up.County, up.Key, up.RequestSHA256[:], id, response)
		if err != nil {
			return ImportReply{}, err
		}
	}
	return ImportReply{Response: response}, nil
}

// tableOf returns the row table of a kind of file.
func tableOf(k FileKind) table {
	switch k {
	case FileUnits:
		return unitTable
	case FileContributions:
		return contributionTable
	case FileAccounts:
		return accountTable
	}
	return exclusionTable
}

// copyRows copies rows into tbl with CopyFrom, with their lines when lines
// is set.
func copyRows[T any](ctx context.Context, tx pgx.Tx, county string, id int64, tbl table, rows []T, lines []int32, fill func([]any, *T) error) error {
	if len(rows) == 0 {
		return nil
	}
	cols := tbl.columns
	src := &lineSource[T]{rowSource: rowSource[T]{rows: rows, fill: fill}, lines: lines}
	if lines != nil {
		cols = append(cols[:len(cols):len(cols)], "line")
	}
	src.vals = make([]any, len(cols))
	src.vals[0], src.vals[1] = county, id
	n, err := tx.CopyFrom(ctx, pgx.Identifier{tbl.name}, cols, src)
	if src.err != nil {
		return src.err
	}
	if err != nil {
		return copyError(err)
	}
	if n != int64(len(rows)) {
		return errors.New("copied " + strconv.FormatInt(n, 10) + " rows of " + strconv.Itoa(len(rows)))
	}
	return nil
}

// lineSource is a rowSource that also sets each row's line, in the last
// value, when it has lines.
type lineSource[T any] struct {
	rowSource[T]
	lines []int32
}

func (s *lineSource[T]) Values() ([]any, error) {
	v, err := s.rowSource.Values()
	if err == nil && s.lines != nil {
		v[len(v)-1] = s.lines[s.i-1]
	}
	return v, err
}

// KnownUnits returns the USCCs of the units file of the dataset of county
// named name, as far as one has been imported; none when there is no such
// dataset yet.
func (s *Store) KnownUnits(ctx context.Context, county, name string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.uscc FROM dataset_unit u JOIN dataset d ON d.county = u.county AND d.id = u.dataset_id
		WHERE d.county = $1 AND d.name = $2`, county, name)
	if err != nil {
		return nil, fail(err, "units of dataset %q of county %s", name, county)
	}
	known := make(map[string]bool)
	var code string
	_, err = pgx.ForEachRow(rows, []any{&code}, func() error {
		known[code] = true
		return nil
	})
	if err != nil {
		return nil, fail(err, "units of dataset %q of county %s", name, county)
	}
	return known, nil
}

// GetDatasetReport returns dataset id of county with what ImportService
// reports of it, or fault.ErrNotFound.
func (s *Store) GetDatasetReport(ctx context.Context, county string, id int64) (DatasetReport, error) {
	return s.readReport(ctx, county, "id = $2", id)
}

// GetDatasetReportByName returns the dataset of county named name with
// what ImportService reports of it, or fault.ErrNotFound.
func (s *Store) GetDatasetReportByName(ctx context.Context, county, name string) (DatasetReport, error) {
	return s.readReport(ctx, county, "name = $2", name)
}

func (s *Store) readReport(ctx context.Context, county, where string, arg any) (DatasetReport, error) {
	var rep DatasetReport
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) (err error) {
		rep, err = s.datasetReport(ctx, tx, county, where, arg)
		return err
	})
	if err != nil {
		return DatasetReport{}, fail(err, "get dataset %s of county %s", describe(arg), county)
	}
	return rep, nil
}

// DatasetPage selects one page of a county's datasets, newest first.
type DatasetPage struct {
	State    DatasetState // "" for all
	BeforeID int64        // only datasets older than this one; 0 for the first page
	Limit    int
}

// ListDatasetReports returns one page of the datasets of county, newest
// first, with what ImportService reports of them.
func (s *Store) ListDatasetReports(ctx context.Context, county string, page DatasetPage) ([]DatasetReport, error) {
	var out []DatasetReport
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+datasetColumns+` FROM dataset WHERE county = $1 AND ($2 = '' OR state = $2)
			AND ($3 = 0 OR id < $3) ORDER BY id DESC LIMIT $4`, county, string(page.State), page.BeforeID, page.Limit)
		if err != nil {
			return err
		}
		ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dataset, error) { return scanDataset(r) })
		if err != nil {
			return err
		}
		if err := s.attachFiles(ctx, tx, county, ds); err != nil {
			return err
		}
		out = make([]DatasetReport, len(ds))
		for i := range ds {
			out[i].Dataset = ds[i]
		}
		return s.attachReports(ctx, tx, county, out)
	})
	if err != nil {
		return nil, fail(err, "list datasets of county %s", county)
	}
	return out, nil
}

// datasetReport reads the dataset of county matching where (on $2).
func (s *Store) datasetReport(ctx context.Context, q querier, county, where string, arg any) (DatasetReport, error) {
	d, err := s.getDataset(ctx, q, county, where, arg)
	if err != nil {
		return DatasetReport{}, err
	}
	reps := []DatasetReport{{Dataset: d}}
	if err := s.attachReports(ctx, q, county, reps); err != nil {
		return DatasetReport{}, err
	}
	return reps[0], nil
}

// attachReports sets what ImportService reports of datasets whose Files are
// already attached.
func (s *Store) attachReports(ctx context.Context, q querier, county string, reps []DatasetReport) error {
	if len(reps) == 0 {
		return nil
	}
	ids := make([]int64, len(reps))
	at := make(map[int64]int, len(reps))
	for i := range reps {
		ids[i] = reps[i].ID
		at[reps[i].ID] = i
		reps[i].Reports = make([]FileReport, len(reps[i].Files))
		for j, f := range reps[i].Files {
			reps[i].Reports[j].Kind = f.Kind
			if f.Kind == FileUnits {
				reps[i].UnitCount = int64(f.Rows)
			}
		}
	}
	rows, err := q.Query(ctx, `SELECT id, sealed_by FROM dataset WHERE county = $1 AND id = ANY($2)`, county, ids)
	if err != nil {
		return err
	}
	var (
		id       int64
		sealedBy string
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &sealedBy}, func() error {
		reps[at[id]].SealedBy = sealedBy
		return nil
	}); err != nil {
		return err
	}
	rows, err = q.Query(ctx, `SELECT dataset_id, kind, size_bytes, warning_count, imported_by FROM dataset_file
		WHERE county = $1 AND dataset_id = ANY($2)`, county, ids)
	if err != nil {
		return err
	}
	var r FileReport
	_, err = pgx.ForEachRow(rows, []any{&id, &r.Kind, &r.SizeBytes, &r.WarningCount, &r.ImportedBy}, func() error {
		rep := &reps[at[id]]
		for j := range rep.Reports {
			if rep.Reports[j].Kind == r.Kind {
				rep.Reports[j] = r
			}
		}
		return nil
	})
	return err
}

// ContentHash is a dataset's content hash (import.proto): the lowercase
// hex SHA-256 of one line "KIND SHA256\n" per file, in kind order.
func ContentHash(files []File) string {
	h := sha256.New()
	for _, k := range fileKinds {
		for _, f := range files {
			if f.Kind == k {
				fmt.Fprintf(h, "%s %s\n", k, hex.EncodeToString(f.SHA256[:]))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MissingKinds returns the kinds of file a dataset lacks, in kind order.
func MissingKinds(files []File) []FileKind {
	var missing []FileKind
	for _, k := range fileKinds {
		found := false
		for _, f := range files {
			found = found || f.Kind == k
		}
		if !found {
			missing = append(missing, k)
		}
	}
	return missing
}

// Seal seals dataset id of county in the name of by at now, with
// ContentHash of its files, and returns it with sealed true; entry runs inside the
// transaction and gives the audit entry to append (Domain defaults to the
// county). A sealed dataset is returned unchanged with sealed false, and no
// entry. A dataset that lacks a kind of file is fault.ErrFailedPrecondition
// naming every missing kind; one not in county, fault.ErrNotFound.
func (s *Store) Seal(ctx context.Context, county string, id int64, by string, now time.Time, entry func(DatasetReport) audit.Entry) (rep DatasetReport, sealed bool, err error) {
	err = pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var state DatasetState
		err := tx.QueryRow(ctx, `SELECT state FROM dataset WHERE county = $1 AND id = $2 FOR UPDATE`, county, id).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoDataset
		}
		if err != nil {
			return err
		}
		if rep, err = s.datasetReport(ctx, tx, county, "id = $2", id); err != nil {
			return err
		}
		if state == DatasetSealed {
			return nil
		}
		if missing := MissingKinds(rep.Files); len(missing) > 0 {
			names := make([]string, len(missing))
			for i, k := range missing {
				names[i] = string(k)
			}
			return fault.New(fault.ErrFailedPrecondition, "the dataset lacks its %s file(s): import them first (缺少文件: %s)",
				strings.Join(names, ", "), strings.Join(names, ", "))
		}
		_, err = tx.Exec(ctx, `UPDATE dataset SET state = 'sealed', content_hash = $3, sealed_at = $4, sealed_by = $5
			WHERE county = $1 AND id = $2`, county, id, ContentHash(rep.Files), now, by)
		if err != nil {
			return err
		}
		if rep, err = s.datasetReport(ctx, tx, county, "id = $2", id); err != nil {
			return err
		}
		e := entry(rep)
		if e.Domain == "" {
			e.Domain = county
		}
		if _, err := audit.Append(ctx, tx, e); err != nil {
			return err
		}
		sealed = true
		return nil
	})
	if err != nil {
		return DatasetReport{}, false, fail(err, "seal dataset %d of county %s", id, county)
	}
	return rep, sealed, nil
}

// UnknownRow is a row of a contributions, accounts or exclusions file
// whose USCC is not a unit of its dataset's units file.
type UnknownRow struct {
	Kind FileKind
	File string // the file's name
	Line int32  // 0 when the row was stored without its line
	USCC string
}

// UnknownRows returns the rows of dataset id of county whose USCC is not a
// unit of its units file, by kind and then in file order.
func (s *Store) UnknownRows(ctx context.Context, county string, id int64) ([]UnknownRow, error) {
	var out []UnknownRow
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		for _, k := range fileKinds[1:] {
			tbl := tableOf(k)
			rows, err := tx.Query(ctx, `SELECT f.file_name, coalesce(r.line, 0), r.uscc FROM `+tbl.name+` r
				JOIN dataset_file f ON f.county = r.county AND f.dataset_id = r.dataset_id AND f.kind = $3
				WHERE r.county = $1 AND r.dataset_id = $2
				AND NOT EXISTS (SELECT 1 FROM dataset_unit u WHERE u.county = r.county AND u.dataset_id = r.dataset_id AND u.uscc = r.uscc)
				ORDER BY r.seq`, county, id, k)
			if err != nil {
				return err
			}
			u := UnknownRow{Kind: k}
			if _, err := pgx.ForEachRow(rows, []any{&u.File, &u.Line, &u.USCC}, func() error {
				out = append(out, u)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fail(err, "unknown units of dataset %d of county %s", id, county)
	}
	return out, nil
}

// isUniqueViolation reports whether err is a unique violation of the named
// constraint.
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}
