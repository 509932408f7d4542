// Package audit keeps the append-only audit log (审计日志) of the city
// server and the county nodes: who changed what, when. Entries form one
// hash chain per domain (the city, or a county): each entry's hash covers
// its fields and the hash of the entry before it, so that an edited,
// inserted or deleted entry is detected by Verify.
//
// The table is the same in both processes' databases (DDL), so its SQL
// lives here once rather than in each store.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"wengang/internal/pg"
	"wengang/policy/access"
)

// DDL creates the audit log; each process's migrations include it.
// UPDATE and DELETE are refused by a trigger.
const DDL = `
CREATE TABLE audit_log (
	domain        text        NOT NULL,
	seq           bigint      NOT NULL CHECK (seq > 0),
	at            timestamptz NOT NULL,
	actor_kind    text        NOT NULL,
	actor_subject text        NOT NULL,
	actor_role    text        NOT NULL,
	action        text        NOT NULL,
	object_type   text        NOT NULL,
	object_id     text        NOT NULL,
	detail        text        NOT NULL,
	prev_hash     text        NOT NULL,
	hash          text        NOT NULL,
	PRIMARY KEY (domain, seq)
);
CREATE INDEX audit_log_object ON audit_log (domain, object_type, object_id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
`

// Entry is one audit record.
type Entry struct {
	Domain     string
	Seq        int64
	At         time.Time
	Actor      access.Principal
	Action     string // such as "dataset.import", "review.exclude"
	ObjectType string // such as "dataset", "batch"
	ObjectID   string
	Detail     string // free text or JSON, for people
	PrevHash   string
	Hash       string
}

// Genesis is the previous hash of a domain's first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Append adds e to the chain of e.Domain within tx and returns it with its
// sequence number and hashes. Appends to one domain are serialized by a
// transaction-scoped advisory lock, so the chain never forks; the entry
// exists only if tx commits.
func Append(ctx context.Context, tx pgx.Tx, e Entry) (Entry, error) {
	if e.Domain == "" || e.Action == "" {
		return Entry{}, errors.New("audit: entry needs a domain and an action")
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('audit:' || $1, 0))`, e.Domain); err != nil {
		return Entry{}, fmt.Errorf("audit: lock: %w", err)
	}
	e.Seq, e.PrevHash = 1, Genesis
	err := tx.QueryRow(ctx, `SELECT seq + 1, hash FROM audit_log WHERE domain = $1 ORDER BY seq DESC LIMIT 1`, e.Domain).Scan(&e.Seq, &e.PrevHash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, fmt.Errorf("audit: last entry: %w", err)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond) // what timestamptz keeps
	e.Hash = Hash(e)
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (domain, seq, at, actor_kind, actor_subject, actor_role, action, object_type, object_id, detail, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		e.Domain, e.Seq, e.At, string(e.Actor.Kind), actorSubject(e.Actor), e.Actor.Role, e.Action, e.ObjectType, e.ObjectID, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: insert: %w", pg.Translate(err))
	}
	return e, nil
}

// actorSubject names a person by name and token id, others by subject.
func actorSubject(p access.Principal) string {
	if p.Name != "" && p.Name != p.Subject {
		return p.Name + " (" + p.Subject + ")"
	}
	return p.Subject
}

// Hash returns the hex SHA-256 of e's fields and its previous hash, each
// length-prefixed so that no two entries encode alike.
func Hash(e Entry) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range []string{
		e.Domain, strconv.FormatInt(e.Seq, 10), e.At.UTC().Format(time.RFC3339Nano),
		string(e.Actor.Kind), actorSubject(e.Actor), e.Actor.Role,
		e.Action, e.ObjectType, e.ObjectID, e.Detail, e.PrevHash,
	} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Querier is what List reads through: a pool, a conn or a tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Filter selects entries of one domain, in sequence order.
type Filter struct {
	Domain     string
	AfterSeq   int64
	ObjectType string    // "" for all
	ObjectID   string    // "" for all
	Subject    string    // the actor's subject (or name); "" for all
	From, To   time.Time // at or after From, before To; zero for no bound
	Limit      int       // default 100, at most 1000
}

const columns = `domain, seq, at, actor_kind, actor_subject, actor_role, action, object_type, object_id, detail, prev_hash, hash`

// List returns the entries f selects. Each entry's Actor.Subject is the
// actor as the log renders it ("name (subject)" for a person with a name),
// so that Hash(entry) is its Hash.
func List(ctx context.Context, q Querier, f Filter) ([]Entry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var from, to any
	if !f.From.IsZero() {
		from = f.From
	}
	if !f.To.IsZero() {
		to = f.To
	}
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM audit_log WHERE domain = $1 AND seq > $2
		AND ($3 = '' OR object_type = $3) AND ($4 = '' OR object_id = $4)
		AND ($5 = '' OR actor_subject = $5 OR right(actor_subject, length($5) + 3) = ' (' || $5 || ')')
		AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7)
		ORDER BY seq LIMIT $8`, f.Domain, f.AfterSeq, f.ObjectType, f.ObjectID, f.Subject, from, to, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit: list %s: %w", f.Domain, err)
	}
	return pgx.CollectRows(rows, scanEntry)
}

func scanEntry(row pgx.CollectableRow) (Entry, error) {
	var e Entry
	var kind string
	err := row.Scan(&e.Domain, &e.Seq, &e.At, &kind, &e.Actor.Subject, &e.Actor.Role, &e.Action, &e.ObjectType, &e.ObjectID, &e.Detail, &e.PrevHash, &e.Hash)
	e.Actor.Kind = access.Kind(kind)
	e.At = e.At.UTC()
	return e, err
}

// Verification is the outcome of checking a range of a chain.
type Verification struct {
	OK       bool
	Checked  int64
	LastSeq  int64
	LastHash string
	BadSeq   int64  // the first entry that breaks the chain; 0 when OK
	Problem  string // what is wrong with it
}

// Verify checks the entries fromSeq..toSeq of domain's chain (fromSeq 0
// means 1, toSeq 0 the latest) in one snapshot: each follows the one
// before without a gap, carries its hash as prev_hash, and hashes right.
// The range starts from the stored hash of entry fromSeq−1. A break is a
// result, not an error.
func Verify(ctx context.Context, db pg.TxBeginner, domain string, fromSeq, toSeq int64) (Verification, error) {
	if fromSeq < 1 {
		fromSeq = 1
	}
	var v Verification
	snapshot := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := pg.WithTx(ctx, pg.Options(db, snapshot), func(tx pgx.Tx) error {
		v = Verification{OK: true, LastSeq: fromSeq - 1, LastHash: Genesis}
		if fromSeq > 1 {
			err := tx.QueryRow(ctx, `SELECT hash FROM audit_log WHERE domain = $1 AND seq = $2`, domain, fromSeq-1).Scan(&v.LastHash)
			if errors.Is(err, pgx.ErrNoRows) {
				v.OK, v.BadSeq, v.Problem = false, fromSeq-1, fmt.Sprintf("entry %d, before the range, is missing", fromSeq-1)
				return nil
			}
			if err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+columns+` FROM audit_log WHERE domain = $1 AND seq >= $2 AND ($3 = 0 OR seq <= $3)
			ORDER BY seq`, domain, fromSeq, toSeq)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				return err
			}
			switch {
			case e.Seq != v.LastSeq+1:
				v.OK, v.BadSeq, v.Problem = false, e.Seq, fmt.Sprintf("sequence %d follows %d: entries are missing", e.Seq, v.LastSeq)
			case e.PrevHash != v.LastHash:
				v.OK, v.BadSeq, v.Problem = false, e.Seq, "its previous hash does not match the entry before it"
			case Hash(e) != e.Hash:
				v.OK, v.BadSeq, v.Problem = false, e.Seq, "its hash does not match its fields: it was changed"
			}
			if !v.OK {
				return nil
			}
			v.Checked++
			v.LastSeq, v.LastHash = e.Seq, e.Hash
		}
		return rows.Err()
	})
	if err != nil {
		return Verification{}, fmt.Errorf("audit: verify %s: %w", domain, err)
	}
	return v, nil
}
