// Package pgtest gives each test its own PostgreSQL database, migrated and
// empty, on the private cluster named by WENGANG_TEST_DATABASE_URL (a
// superuser URL; `make test` starts the cluster with
// deploy/postgres/cluster.sh and sets it).
//
// A database costs one CREATE DATABASE ... TEMPLATE: the migrations are
// applied once per cluster and set of migrations, to a template database
// named after a hash of the migration files, which every test clones. Test
// binaries of several packages may run at the same time against one cluster;
// the template is built under an advisory lock, under a temporary name, and
// renamed when complete, so none of them sees it half-built.
//
// Without WENGANG_TEST_DATABASE_URL, a test that asks for a database is
// skipped, except under CI=true, where it fails: CI must run the database
// tests, never skip them.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/pg"
)

// EnvURL names the environment variable that holds the cluster's superuser URL.
const EnvURL = "WENGANG_TEST_DATABASE_URL"

// EnvKeep names the environment variable that, when set, keeps the database
// of a failed test for inspection instead of dropping it.
const EnvKeep = "WENGANG_TEST_KEEP_DB"

// templateFormat is hashed with the migrations: change it when the way a
// template is built changes, so that old templates are not reused.
const templateFormat = "pgtest/v1"

const setupTimeout = 2 * time.Minute

// process holds what the tests of one test binary share: an admin pool per
// cluster and the templates known to be built. It is package state because
// a test binary is one process and the point is to build each template once.
var process struct {
	mu        sync.Mutex
	admin     map[string]*pgxpool.Pool // by URL
	templates map[string]bool          // by URL + "\x00" + template name
}

// URL returns the admin URL of the test cluster. Without one it skips t, or
// fails it when the environment variable CI is "true".
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url != "" {
		return url
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: %s is not set, and CI=true: CI must run the database tests, not skip them. "+
			"Run the README's test command (make test): it starts a private PostgreSQL cluster "+
			"with deploy/postgres/cluster.sh and sets %s.", EnvURL, EnvURL)
	}
	t.Skipf("pgtest: no test database (%s is not set): run `make test`, which starts a private "+
		"PostgreSQL cluster with deploy/postgres/cluster.sh, or set %s to a superuser URL", EnvURL, EnvURL)
	return ""
}

// NewDB returns a pool on a new database of its own for t, with migrations
// applied by pg.Migrate (nil migrations: an empty database). The database is
// dropped, and the pool closed, when t ends; under WENGANG_TEST_KEEP_DB a
// failed test's database is kept and its name logged. It skips or fails t as
// URL does when there is no test cluster.
func NewDB(t testing.TB, migrations fs.FS) *pgxpool.Pool {
	t.Helper()
	pool, _ := newDB(t, migrations)
	return pool
}

// NewURL is NewDB for code that opens its database itself (a server
// started as main starts it): it returns the fresh database's URL.
func NewURL(t testing.TB, migrations fs.FS) string {
	t.Helper()
	_, u := newDB(t, migrations)
	return u
}

func newDB(t testing.TB, migrations fs.FS) (*pgxpool.Pool, string) {
	t.Helper()
	url := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	admin, err := adminPool(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	tmpl, err := ensureTemplate(ctx, admin, url, migrations)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	name := "wengang_test_" + randomHex(8)
	if err := execRetry(ctx, admin, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(tmpl)); err != nil {
		t.Fatalf("pgtest: create database %s from %s: %v", name, tmpl, err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv(EnvKeep) != "" {
			t.Logf("pgtest: kept database %s of the failed test (%s is set)", name, EnvKeep)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", name, err)
	}
	t.Cleanup(pool.Close) // runs before the drop above
	return pool, dbURL(url, name)
}

// dbURL returns the admin URL with its database replaced by name.
func dbURL(admin, name string) string {
	u, err := neturl.Parse(admin)
	if err != nil || u.Scheme == "" {
		// A keyword/value connection string.
		return admin + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// adminPool returns the process's pool on the cluster's maintenance database.
func adminPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	process.mu.Lock()
	defer process.mu.Unlock()
	if p := process.admin[url]; p != nil {
		return p, nil
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	cfg.MaxConns = 4
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = p.Ping(ctx)
	}
	if err != nil {
		if p != nil {
			p.Close()
		}
		return nil, fmt.Errorf("cannot reach the test cluster at %s (%w); is it running? "+
			"deploy/postgres/cluster.sh start prints the URL of one", EnvURL, err)
	}
	if process.admin == nil {
		process.admin = make(map[string]*pgxpool.Pool)
		process.templates = make(map[string]bool)
	}
	process.admin[url] = p
	return p, nil
}

// ensureTemplate returns the name of the template database holding
// migrations, building it if no process has.
func ensureTemplate(ctx context.Context, admin *pgxpool.Pool, url string, migrations fs.FS) (string, error) {
	sum, err := hashFS(migrations)
	if err != nil {
		return "", err
	}
	name := "wengang_tmpl_" + hex.EncodeToString(sum[:8])

	process.mu.Lock()
	defer process.mu.Unlock()
	key := url + "\x00" + name
	if process.templates[key] {
		return name, nil
	}

	// A connection of its own, closed at the end, holds the session lock:
	// closing it releases the lock whatever happened.
	conn, err := pgx.ConnectConfig(ctx, admin.Config().ConnConfig)
	if err != nil {
		return "", fmt.Errorf("connect to the test cluster: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(binary.BigEndian.Uint64(sum[8:16]))); err != nil {
		return "", fmt.Errorf("lock template %s: %w", name, err)
	}

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template %s: %w", name, err)
	}
	if !exists {
		if err := buildTemplate(ctx, conn, admin.Config(), name, migrations); err != nil {
			return "", err
		}
	}
	process.templates[key] = true
	return name, nil
}

// buildTemplate creates database name with migrations applied: under a
// temporary name first (dropping what a crashed run may have left there),
// then renamed, so that name exists only complete.
func buildTemplate(ctx context.Context, conn *pgx.Conn, adminCfg *pgxpool.Config, name string, migrations fs.FS) error {
	build := name + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(build)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop leftover %s: %w", build, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(build)); err != nil {
		return fmt.Errorf("create %s: %w", build, err)
	}
	if migrations != nil {
		cfg := adminCfg.Copy()
		cfg.ConnConfig.Database = build
		cfg.MaxConns = 1
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("open %s: %w", build, err)
		}
		err = pg.Migrate(ctx, pool, migrations)
		pool.Close()
		if err != nil {
			return fmt.Errorf("template %s: %w", name, err)
		}
	}
	// No connection may use a template while it is cloned: refuse them all.
	if err := execRetry(ctx, conn, "ALTER DATABASE "+ident(build)+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("close %s to connections: %w", build, err)
	}
	if err := execRetry(ctx, conn, "ALTER DATABASE "+ident(build)+" RENAME TO "+ident(name)); err != nil {
		return fmt.Errorf("rename %s to %s: %w", build, name, err)
	}
	return nil
}

// execRetry runs a statement that fails with object_in_use (55006) while a
// closed connection's backend has not yet gone away, retrying for a while.
func execRetry(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string) error {
	for delay := 10 * time.Millisecond; ; delay *= 2 {
		_, err := db.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || delay > 2*time.Second {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// hashFS hashes the names and contents of the regular files of fsys, and
// templateFormat; a nil fsys hashes as empty.
func hashFS(fsys fs.FS) ([sha256.Size]byte, error) {
	h := sha256.New()
	h.Write([]byte(templateFormat))
	if fsys != nil {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "\x00%s\x00%d\x00", path, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("hash migrations: %w", err)
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
