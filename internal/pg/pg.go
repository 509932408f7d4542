// Package pg holds what every store of this module shares about PostgreSQL:
// opening a pool, the one transaction helper, embedded migrations applied on
// start, and the translation of driver errors into the error kinds of
// internal/fault. It knows no table of any store.
package pg

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/fault"
)

// Open connects a pool to the database at url (a postgres:// URL or a
// key=value connection string) and checks that the database answers. The
// caller closes the pool.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password from the URL it quotes.
		return nil, fault.New(fault.ErrInvalid, "pg: database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pg: open %s: %w", describe(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pg: connect to %s: %w", describe(cfg), err)
	}
	return pool, nil
}

// describe names the database of cfg without its password.
func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Host, c.Port, c.User)
}

// Beginner begins transactions. *pgxpool.Pool, *pgx.Conn and pgx.Tx (whose
// Begin makes a savepoint) are Beginners, and so is the value of Options.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// TxBeginner begins transactions with options: *pgxpool.Pool and *pgx.Conn.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Options returns a Beginner whose transactions begin on db with opts, for
// WithTx: pg.WithTx(ctx, pg.Options(pool, pgx.TxOptions{AccessMode:
// pgx.ReadOnly}), fn).
func Options(db TxBeginner, opts pgx.TxOptions) Beginner {
	return optioned{db: db, opts: opts}
}

type optioned struct {
	db   TxBeginner
	opts pgx.TxOptions
}

func (o optioned) Begin(ctx context.Context) (pgx.Tx, error) { return o.db.BeginTx(ctx, o.opts) }

// WithTx runs fn in a transaction begun on db and commits it when fn returns
// nil. When fn returns an error or panics, the transaction is rolled back and
// WithTx returns fn's error (joined with the rollback's, if that fails too) or
// panics again with the same value. The rollback runs even when ctx is already
// cancelled, so that a cancelled request leaves its connection clean. Errors
// are returned as they come; callers translate them (see Translate).
func WithTx(ctx context.Context, db Beginner, fn func(pgx.Tx) error) (err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		rbErr := tx.Rollback(context.WithoutCancel(ctx))
		if p := recover(); p != nil {
			panic(p)
		}
		if rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committed = true // Commit ends the transaction whatever it returns.
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Translate maps a driver error to the error kinds of internal/fault, keeping
// err as the cause (errors.Is and errors.As still see it):
//
//	pgx.ErrNoRows                      fault.ErrNotFound
//	23505 unique, 23P01 exclusion      fault.ErrConflict
//	23503 foreign key                  fault.ErrFailedPrecondition
//	23514 check, 23502 not null, 22xxx fault.ErrInvalid
//
// Any other error, and one that already carries a kind, is returned as it is;
// nil stays nil.
func Translate(err error) error {
	if err == nil || fault.Kind(err) != nil {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.New(fault.ErrNotFound, "%w", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch code := pgErr.Code; {
	case code == "23505", code == "23P01":
		return fault.New(fault.ErrConflict, "%w", err)
	case code == "23503":
		return fault.New(fault.ErrFailedPrecondition, "%w", err)
	case code == "23514", code == "23502", strings.HasPrefix(code, "22"):
		return fault.New(fault.ErrInvalid, "%w", err)
	}
	return err
}
