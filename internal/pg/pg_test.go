package pg_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/internal/pgtest"
)

// kvSchema is a small schema for the transaction and error tests.
var kvSchema = fstest.MapFS{
	"0001_kv.sql": {Data: []byte(`
		CREATE TABLE parent (id int PRIMARY KEY);
		CREATE TABLE kv (
			k text PRIMARY KEY,
			v int NOT NULL CHECK (v >= 0),
			parent int REFERENCES parent (id)
		);`)},
}

// onePool returns a pool of at most one connection on the database of pool,
// so that a test can tell whether that connection survived.
func onePool(t *testing.T, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config()
	cfg.MaxConns = 1
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func backendPID(t *testing.T, db *pgxpool.Pool) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pid int32
	if err := db.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("backend pid (is the connection stuck in a transaction?): %v", err)
	}
	return pid
}

func insert(ctx context.Context, tx pgx.Tx, k string) error {
	_, err := tx.Exec(ctx, "INSERT INTO kv (k, v) VALUES ($1, 1)", k)
	return err
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("connects", func(t *testing.T) {
		pool, err := pg.Open(ctx, pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		pool.Close()
	})
	t.Run("bad URL is invalid", func(t *testing.T) {
		_, err := pg.Open(ctx, "postgres://u:secret@127.0.0.1:notaport/db")
		if !errors.Is(err, fault.ErrInvalid) {
			t.Fatalf("err = %v, want fault.ErrInvalid", err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("unreachable fails", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := pg.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"); err == nil {
			t.Fatal("Open of a closed port succeeded")
		}
	})
}

func TestWithTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("commits when fn returns nil", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, kvSchema)
		err := pg.WithTx(ctx, db, func(tx pgx.Tx) error { return insert(ctx, tx, "a") })
		if err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "SELECT count(*) FROM kv"); n != 1 {
			t.Fatalf("%d rows after commit, want 1", n)
		}
	})

	t.Run("rolls back and returns fn's error", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, kvSchema)
		sentinel := errors.New("sentinel")
		err := pg.WithTx(ctx, db, func(tx pgx.Tx) error {
			if err := insert(ctx, tx, "a"); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", sentinel)
		})
		if !errors.Is(err, sentinel) {
			t.Fatalf("err = %v, want the sentinel", err)
		}
		if n := count(t, db, "SELECT count(*) FROM kv"); n != 0 {
			t.Fatalf("%d rows after rollback, want 0", n)
		}
	})

	t.Run("rolls back on panic and panics again", func(t *testing.T) {
		t.Parallel()
		db := onePool(t, pgtest.NewDB(t, kvSchema))
		pid := backendPID(t, db)
		got := func() (p any) {
			defer func() { p = recover() }()
			_ = pg.WithTx(ctx, db, func(tx pgx.Tx) error {
				if err := insert(ctx, tx, "a"); err != nil {
					return err
				}
				panic("boom")
			})
			return nil
		}()
		if got != "boom" {
			t.Fatalf("recovered %v, want boom", got)
		}
		// With one connection, a transaction left open would block here.
		if n := count(t, db, "SELECT count(*) FROM kv"); n != 0 {
			t.Fatalf("%d rows after panic, want 0", n)
		}
		if after := backendPID(t, db); after != pid {
			t.Errorf("the connection was replaced (pid %d, then %d): the rollback did not run on it", pid, after)
		}
	})

	t.Run("rolls back when ctx was cancelled", func(t *testing.T) {
		t.Parallel()
		db := onePool(t, pgtest.NewDB(t, kvSchema))
		pid := backendPID(t, db)
		ctx, cancel := context.WithCancel(ctx)
		err := pg.WithTx(ctx, db, func(tx pgx.Tx) error {
			if err := insert(ctx, tx, "a"); err != nil {
				return err
			}
			cancel() // the request goes away while its transaction is open
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if strings.Contains(err.Error(), "rollback") {
			t.Fatalf("the rollback failed: %v", err)
		}
		if n := count(t, db, "SELECT count(*) FROM kv"); n != 0 {
			t.Fatalf("%d rows, want 0", n)
		}
		// A rollback run with the cancelled ctx fails and pgx closes the
		// connection; a clean rollback keeps it.
		if after := backendPID(t, db); after != pid {
			t.Errorf("the connection was replaced (pid %d, then %d): the rollback did not run", pid, after)
		}
	})

	t.Run("options reach the transaction", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, kvSchema)
		err := pg.WithTx(ctx, pg.Options(db, pgx.TxOptions{AccessMode: pgx.ReadOnly}), func(tx pgx.Tx) error {
			return insert(ctx, tx, "a")
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25006" { // read_only_sql_transaction
			t.Fatalf("insert in a read-only transaction: err = %v, want SQLSTATE 25006", err)
		}
	})
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t, kvSchema)
	if _, err := db.Exec(ctx, "INSERT INTO kv (k, v) VALUES ('taken', 1)"); err != nil {
		t.Fatal(err)
	}
	dbErr := func(sql string) error {
		t.Helper()
		_, err := db.Exec(ctx, sql)
		if err == nil {
			t.Fatalf("%s succeeded", sql)
		}
		return err
	}
	already := fault.New(fault.ErrConflict, "already a conflict")
	plain := errors.New("plain")
	tests := []struct {
		name string
		err  error
		want error // the kind; nil: returned unchanged
	}{
		{"no rows is not found", db.QueryRow(ctx, "SELECT 1 WHERE false").Scan(new(int)), fault.ErrNotFound},
		{"unique violation is conflict", dbErr("INSERT INTO kv (k, v) VALUES ('taken', 2)"), fault.ErrConflict},
		{"foreign key violation is failed precondition", dbErr("INSERT INTO kv (k, v, parent) VALUES ('b', 1, 42)"), fault.ErrFailedPrecondition},
		{"check violation is invalid", dbErr("INSERT INTO kv (k, v) VALUES ('b', -1)"), fault.ErrInvalid},
		{"not null violation is invalid", dbErr("INSERT INTO kv (k, v) VALUES ('b', NULL)"), fault.ErrInvalid},
		{"data exception is invalid", dbErr("SELECT 1/0"), fault.ErrInvalid},
		{"bad input syntax is invalid", dbErr("SELECT 'x'::int"), fault.ErrInvalid},
		{"other database error is unchanged", dbErr("SELECT * FROM no_such_table"), nil},
		{"non-database error is unchanged", plain, nil},
		{"an error with a kind is unchanged", already, fault.ErrConflict},
		{"nil is nil", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pg.Translate(tc.err)
			if tc.want == nil || tc.err == already {
				if got != tc.err {
					t.Fatalf("Translate(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			if k := fault.Kind(got); k != tc.want {
				t.Fatalf("Translate(%v) has kind %v, want %v", tc.err, k, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("Translate(%v) lost its cause", tc.err)
			}
			if got.Error() != tc.err.Error() {
				t.Errorf("message %q, want the cause's %q", got, tc.err)
			}
		})
	}
}

func migrations(files ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(files); i += 2 {
		fsys[files[i]] = &fstest.MapFile{Data: []byte(files[i+1])}
	}
	return fsys
}

type applied struct {
	version int
	name    string
	at      time.Time
}

func schemaMigrations(t *testing.T, db *pgxpool.Pool) []applied {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	var out []applied
	var a applied
	if _, err := pgx.ForEachRow(rows, []any{&a.version, &a.name, &a.at}, func() error {
		out = append(out, a)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Plain CREATE TABLE: applying a migration twice fails.
	v1 := migrations(
		"0001_first.sql", "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);",
		"0002_second.sql", "CREATE TABLE b (id int PRIMARY KEY);",
		"README.md", "ignored",
	)

	t.Run("applies in order, and a second run changes nothing", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, nil)
		if err := pg.Migrate(ctx, db, v1); err != nil {
			t.Fatal(err)
		}
		first := schemaMigrations(t, db)
		if len(first) != 2 || first[0].version != 1 || first[0].name != "first" || first[1].version != 2 || first[1].name != "second" {
			t.Fatalf("schema_migrations = %+v, want 0001_first and 0002_second", first)
		}
		if err := pg.Migrate(ctx, db, v1); err != nil {
			t.Fatalf("second run: %v", err)
		}
		if second := schemaMigrations(t, db); fmt.Sprint(second) != fmt.Sprint(first) {
			t.Fatalf("second run changed schema_migrations: %v, then %v", first, second)
		}
		if n := count(t, db, "SELECT count(*) FROM a"); n != 1 {
			t.Fatalf("0001 ran %d times", n)
		}

		// A newer binary adds a migration: only it runs.
		v2 := migrations("0003_third.sql", "CREATE TABLE c (id int);")
		for k, f := range v1 {
			v2[k] = f
		}
		if err := pg.Migrate(ctx, db, v2); err != nil {
			t.Fatal(err)
		}
		if got := schemaMigrations(t, db); len(got) != 3 || got[2].name != "third" {
			t.Fatalf("schema_migrations = %+v, want 3 rows ending with third", got)
		}
	})

	t.Run("refuses a database that a newer binary migrated", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, nil)
		if err := pg.Migrate(ctx, db, v1); err != nil {
			t.Fatal(err)
		}
		old := migrations("0001_first.sql", "CREATE TABLE a (id int PRIMARY KEY);")
		err := pg.Migrate(ctx, db, old)
		if !errors.Is(err, fault.ErrFailedPrecondition) || !strings.Contains(err.Error(), "0002_second") {
			t.Fatalf("err = %v, want failed precondition naming 0002_second", err)
		}
	})

	t.Run("refuses a database migrated by other code", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, nil)
		if err := pg.Migrate(ctx, db, v1); err != nil {
			t.Fatal(err)
		}
		other := migrations("0001_other.sql", "SELECT 1;", "0002_second.sql", "SELECT 1;")
		if err := pg.Migrate(ctx, db, other); !errors.Is(err, fault.ErrFailedPrecondition) {
			t.Fatalf("err = %v, want failed precondition", err)
		}
	})

	t.Run("a failing migration changes nothing", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, nil)
		bad := migrations(
			"0001_first.sql", "CREATE TABLE a (id int);",
			"0002_broken.sql", "CREATE TABLE b (id int); SELEC 1;",
		)
		if err := pg.Migrate(ctx, db, bad); err == nil || !strings.Contains(err.Error(), "0002_broken") {
			t.Fatalf("err = %v, want an error naming 0002_broken", err)
		}
		if got := schemaMigrations(t, db); len(got) != 1 {
			t.Fatalf("schema_migrations = %+v, want only 0001", got)
		}
		if n := count(t, db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"); n != 0 {
			t.Fatal("table b of the failed migration exists")
		}
	})

	t.Run("concurrent runs apply each migration once", func(t *testing.T) {
		t.Parallel()
		db := pgtest.NewDB(t, nil)
		slow := migrations(
			"0001_first.sql", "CREATE TABLE a (id int); SELECT pg_sleep(0.2);",
			"0002_second.sql", "CREATE TABLE b (id int); SELECT pg_sleep(0.2);",
			"0003_third.sql", "CREATE TABLE c (id int);",
		)
		// Separate pools, as separate processes would have.
		const n = 4
		pools := make([]*pgxpool.Pool, n)
		for i := range pools {
			pools[i] = onePool(t, db)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = pg.Migrate(ctx, pools[i], slow) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate %d: %v", i, err)
			}
		}
		if got := schemaMigrations(t, db); len(got) != 3 {
			t.Fatalf("schema_migrations = %+v, want 3 rows", got)
		}
	})

	t.Run("bad migration sets are refused before the database", func(t *testing.T) {
		t.Parallel()
		for name, fsys := range map[string]fstest.MapFS{
			"empty":        migrations(),
			"bad name":     migrations("0001_First.sql", ""),
			"no number":    migrations("first.sql", ""),
			"gap":          migrations("0001_a.sql", "", "0003_c.sql", ""),
			"repeat":       migrations("0001_a.sql", "", "0001_b.sql", ""),
			"starts at 0":  migrations("0000_a.sql", ""),
			"only subdirs": migrations("sub/0001_a.sql", ""),
		} {
			if err := pg.Migrate(ctx, nil, fsys); err == nil {
				t.Errorf("%s: Migrate succeeded", name)
			}
		}
	})
}
