// Package store is the county node's store: the only code of the node that
// speaks SQL. It keeps, per county (tenant), the datasets a county imported —
// the four kinds of source file as they were read, in file order — and gives
// them back unchanged for screening.
//
// Every method takes the county it acts for and sees only that county's rows:
// a dataset of another county is not found, whatever its id. Errors carry the
// kinds of internal/fault: ErrNotFound, ErrConflict, ErrFailedPrecondition and
// ErrInvalid as each method says; anything else is a failure of the database.
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/fault"
	"wengang/internal/pg"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the node database's migrations, for pg.Migrate.
var Migrations fs.FS = func() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // a constant, valid path: cannot happen
	}
	return sub
}()

// Store is the county node's database. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool, whose database has Migrations applied.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// DatasetState is the state of a dataset: open while files are imported into
// it, then sealed, for good.
type DatasetState string

// Dataset states.
const (
	DatasetOpen   DatasetState = "open"
	DatasetSealed DatasetState = "sealed"
)

// FileKind is a kind of source file (DOMAIN.md, "Source data files").
type FileKind string

// File kinds, in the order they are listed.
const (
	FileUnits         FileKind = "units"
	FileContributions FileKind = "contributions"
	FileAccounts      FileKind = "accounts"
	FileExclusions    FileKind = "exclusions"
)

var fileKinds = []FileKind{FileUnits, FileContributions, FileAccounts, FileExclusions}

// Dataset describes one dataset of a county: a named set of source files,
// at most one of each kind, that becomes immutable when sealed.
type Dataset struct {
	County      string
	ID          int64
	Name        string // unique within the county
	State       DatasetState
	ContentHash string // set when sealed
	CreatedAt   time.Time
	SealedAt    time.Time // zero while open
	Files       []File    // the files imported, in FileKind order
}

// FileMeta describes a source file as received.
type FileMeta struct {
	Name     string   // the file's name as uploaded, e.g. "units.csv"
	Format   string   // "csv" or "xlsx"
	Encoding string   // of a CSV file as detected ("utf-8", "utf-8-bom", "gb18030"); "" for XLSX
	SHA256   [32]byte // of the file's bytes
}

// File is a source file imported into a dataset.
type File struct {
	Kind FileKind
	FileMeta
	Rows       int // data rows, not counting the header
	ImportedAt time.Time
}

// CreateDataset creates an open dataset named name in county. The name must
// not be empty (fault.ErrInvalid) and not yet used in the county
// (fault.ErrConflict); other counties may use it.
func (s *Store) CreateDataset(ctx context.Context, county, name string) (Dataset, error) {
	if county == "" || name == "" {
		return Dataset{}, fault.New(fault.ErrInvalid, "create dataset: county and name are required")
	}
	row := s.pool.QueryRow(ctx, `INSERT INTO dataset (county, name) VALUES ($1, $2) RETURNING `+datasetColumns, county, name)
	d, err := scanDataset(row)
	if err != nil {
		if fault.Kind(pg.Translate(err)) == fault.ErrConflict {
			err = fault.New(fault.ErrConflict, "the county already has a dataset of that name")
		}
		return Dataset{}, fail(err, "create dataset %q of county %s", name, county)
	}
	return d, nil
}

// GetDataset returns dataset id of county with its files, or
// fault.ErrNotFound.
func (s *Store) GetDataset(ctx context.Context, county string, id int64) (Dataset, error) {
	return s.readDataset(ctx, county, "id = $2", id)
}

// GetDatasetByName returns the dataset of county named name with its files,
// or fault.ErrNotFound.
func (s *Store) GetDatasetByName(ctx context.Context, county, name string) (Dataset, error) {
	return s.readDataset(ctx, county, "name = $2", name)
}

// readDataset is getDataset in a snapshot of its own.
func (s *Store) readDataset(ctx context.Context, county, where string, arg any) (Dataset, error) {
	var d Dataset
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) (err error) {
		d, err = s.getDataset(ctx, tx, county, where, arg)
		return err
	})
	if err != nil {
		return Dataset{}, fail(err, "get dataset %s of county %s", describe(arg), county)
	}
	return d, nil
}

// ListDatasets returns the datasets of county with their files, oldest first.
func (s *Store) ListDatasets(ctx context.Context, county string) ([]Dataset, error) {
	var out []Dataset
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+datasetColumns+` FROM dataset WHERE county = $1 ORDER BY id`, county)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Dataset, error) { return scanDataset(r) })
		if err != nil {
			return err
		}
		return s.attachFiles(ctx, tx, county, out)
	})
	if err != nil {
		return nil, fail(err, "list datasets of county %s", county)
	}
	return out, nil
}

// SealDataset seals dataset id of county with contentHash (computed by the
// caller over the dataset's files) and returns it: from then on nothing can be
// imported into it. Sealing a sealed dataset again with the same hash returns
// it unchanged; with another hash it fails with fault.ErrConflict. An empty
// hash is fault.ErrInvalid; a dataset not in county, fault.ErrNotFound.
func (s *Store) SealDataset(ctx context.Context, county string, id int64, contentHash string) (Dataset, error) {
	if contentHash == "" {
		return Dataset{}, fault.New(fault.ErrInvalid, "seal dataset %d: the content hash is required", id)
	}
	var d Dataset
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE dataset SET state = 'sealed', content_hash = $3, sealed_at = now()
			WHERE county = $1 AND id = $2 AND state = 'open'`, county, id, contentHash)
		if err != nil {
			return err
		}
		if d, err = s.getDataset(ctx, tx, county, "id = $2", id); err != nil {
			return err
		}
		if tag.RowsAffected() == 0 && d.ContentHash != contentHash {
			return fault.New(fault.ErrConflict, "already sealed with another content hash")
		}
		return nil
	})
	if err != nil {
		return Dataset{}, fail(err, "seal dataset %d of county %s", id, county)
	}
	return d, nil
}

// snapshot is the transaction of the readers that read several tables: one
// consistent view of them.
var snapshot = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

const datasetColumns = `county, id, name, state, content_hash, created_at, sealed_at`

func scanDataset(row pgx.Row) (Dataset, error) {
	var (
		d      Dataset
		hash   *string
		sealed *time.Time
	)
	if err := row.Scan(&d.County, &d.ID, &d.Name, &d.State, &hash, &d.CreatedAt, &sealed); err != nil {
		return Dataset{}, err
	}
	if hash != nil {
		d.ContentHash = *hash
	}
	if sealed != nil {
		d.SealedAt = *sealed
	}
	return d, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// errNoDataset says that the county has no dataset of that id or name, be
// it that there is none or that it is another county's.
var errNoDataset = fault.New(fault.ErrNotFound, "no such dataset")

// getDataset returns the dataset of county matching where (on $2) with its
// files, or errNoDataset.
func (s *Store) getDataset(ctx context.Context, q querier, county, where string, arg any) (Dataset, error) {
	d, err := scanDataset(q.QueryRow(ctx, `SELECT `+datasetColumns+` FROM dataset WHERE county = $1 AND `+where, county, arg))
	if err == pgx.ErrNoRows {
		return Dataset{}, errNoDataset
	}
	if err != nil {
		return Dataset{}, err
	}
	ds := []Dataset{d}
	if err := s.attachFiles(ctx, q, county, ds); err != nil {
		return Dataset{}, err
	}
	return ds[0], nil
}

// describe names a dataset by its id or its name.
func describe(idOrName any) string {
	if name, ok := idOrName.(string); ok {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprint(idOrName)
}

// fail returns err prefixed with what was being done, its driver errors
// translated to fault kinds.
func fail(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, pg.Translate(err))...)
}

// attachFiles sets the Files of each of ds, datasets of county.
func (s *Store) attachFiles(ctx context.Context, q querier, county string, ds []Dataset) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]int64, len(ds))
	at := make(map[int64]int, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
		at[d.ID] = i
	}
	rows, err := q.Query(ctx, `SELECT dataset_id, kind, file_name, format, encoding, row_count, sha256, imported_at
		FROM dataset_file WHERE county = $1 AND dataset_id = ANY($2)`, county, ids)
	if err != nil {
		return err
	}
	var (
		id  int64
		f   File
		sum []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &f.Kind, &f.Name, &f.Format, &f.Encoding, &f.Rows, &sum, &f.ImportedAt}, func() error {
		copy(f.SHA256[:], sum)
		d := &ds[at[id]]
		d.Files = append(d.Files, f)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range ds {
		slices.SortFunc(ds[i].Files, func(a, b File) int {
			return slices.Index(fileKinds, a.Kind) - slices.Index(fileKinds, b.Kind)
		})
	}
	return nil
}
