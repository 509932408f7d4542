package pg

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5"

	"wengang/internal/fault"
)

// migrateLock is the key of the transaction-level advisory lock under which
// Migrate reads and changes schema_migrations, so that processes starting
// together apply each migration once. Advisory locks are per database, so
// databases of one cluster do not wait for each other.
const migrateLock int64 = 0x77656e6761_6e67 // "wengang"

// migrationName is NNNN_name.sql.
var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// migration is one numbered schema change read from a migrations FS.
type migration struct {
	Version int    // NNNN of its file name, from 1
	Name    string // the name part of its file name
	SQL     string
}

// readMigrations returns the migrations at the root of fsys in version order.
// Every .sql file there must be named NNNN_name.sql (four digits, then
// lower-case letters, digits and underscores) and the versions must run from
// 1 without a gap or a repeat; other files and directories are ignored. An FS
// without migrations is an error: it is most likely the wrong directory.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries { // ReadDir sorts by name, so by version
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: the name is not NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if want := len(migs) + 1; v != want {
			return nil, fmt.Errorf("migration %s: expected version %04d next (versions run from 0001 without gaps or repeats)", e.Name(), want)
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		migs = append(migs, migration{Version: v, Name: m[2], SQL: string(b)})
	}
	if len(migs) == 0 {
		return nil, fmt.Errorf("read migrations: no NNNN_name.sql file at the root of the FS")
	}
	return migs, nil
}

// Migrate brings the database of db to the newest migration in fsys, whose
// root holds files named NNNN_name.sql (four digits from 0001 without gaps,
// then lower-case letters, digits and underscores; other files are ignored).
// Each migration not yet recorded in the table schema_migrations runs in its own transaction, in version order, and
// is recorded there in the same transaction; a migration therefore applies
// completely or not at all, and once. Every step holds a transaction-level
// advisory lock, so any number of processes may call Migrate on one database
// at the same time. A migration may hold several statements but none that
// cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM).
//
// Migrate refuses, with fault.ErrFailedPrecondition and without changing
// anything, a database that records a version the binary does not know, or
// under another name: it was migrated by a newer or a different binary.
func Migrate(ctx context.Context, db Beginner, fsys fs.FS) error {
	migs, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	for {
		var applied *migration
		err := WithTx(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			// Created under the lock: two concurrent CREATE TABLE IF NOT
			// EXISTS can both try to create it.
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    int PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
				return fmt.Errorf("create schema_migrations: %w", err)
			}
			done, err := appliedMigrations(ctx, tx)
			if err != nil {
				return err
			}
			for v, name := range done {
				if v < 1 || v > len(migs) {
					return fault.New(fault.ErrFailedPrecondition,
						"the database has schema version %04d_%s, which this binary does not know (it knows 0001 to %04d): run a newer binary", v, name, len(migs))
				}
				if m := migs[v-1]; m.Name != name {
					return fault.New(fault.ErrFailedPrecondition,
						"the database has schema version %04d_%s, but this binary's %04d is %s: they come from different code", v, name, v, m.Name)
				}
			}
			for i := range migs {
				m := &migs[i]
				if _, ok := done[m.Version]; ok {
					continue
				}
				if _, err := tx.Exec(ctx, m.SQL); err != nil {
					return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
					return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
				}
				applied = m
				return nil
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if applied == nil {
			return nil
		}
	}
}

func appliedMigrations(ctx context.Context, tx pgx.Tx) (map[int]string, error) {
	rows, err := tx.Query(ctx, "SELECT version, name FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	done := make(map[int]string)
	var (
		v    int32
		name string
	)
	_, err = pgx.ForEachRow(rows, []any{&v, &name}, func() error {
		done[int(v)] = name
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return done, nil
}
