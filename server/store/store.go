// Package store is the city server's store: the only code of the city that
// speaks SQL. It keeps the batches the county nodes pushed, exactly once
// each, with every item's state (wengang.v1.ItemState), the cross-county
// conflicts found at intake, the decisions feed that tells each county what
// the city decided about its items, the account corrections and screening
// reports the counties send, and the city's audit log.
//
// Every county-owned table leads its key with the county code. Errors carry
// the kinds of internal/fault (ErrNotFound, ErrInvalid, ErrConflict,
// ErrFailedPrecondition) as each function says; anything else is a failure
// of the database.
package store

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/pg"
	"wengang/policy/civil"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the city database's migrations, for pg.Migrate.
var Migrations fs.FS = func() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // a constant, valid path: cannot happen
	}
	return sub
}()

// AuditDomain is the audit-log domain of everything the city changes.
const AuditDomain = "city"

// Store is the city's database. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool, whose database has Migrations applied.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// ItemState is the state of one received item: wengang.v1.ItemState in
// lower case. ItemPending exists only inside the intake transaction.
type ItemState string

// Item states.
const (
	ItemPending     ItemState = "pending"
	ItemReceived    ItemState = "received"
	ItemRejected    ItemState = "rejected"
	ItemConflict    ItemState = "conflict"
	ItemInRound     ItemState = "in_round"
	ItemInPublicity ItemState = "in_publicity"
	ItemObjected    ItemState = "objected"
	ItemRemoved     ItemState = "removed"
	ItemReleased    ItemState = "released"
	ItemPaid        ItemState = "paid"
	ItemReturned    ItemState = "returned"
)

// Live reports whether an item in state s still counts as the enterprise's
// claim for its policy year (everything but rejected and removed).
func (s ItemState) Live() bool { return s != ItemRejected && s != ItemRemoved }

// DecisionKind is the kind of one entry of the decisions feed:
// wengang.v1.CityDecisionKind in lower case.
type DecisionKind string

// Decision kinds.
const (
	KindReceived           DecisionKind = "received"
	KindRejected           DecisionKind = "rejected"
	KindConflict           DecisionKind = "conflict"
	KindInPublicity        DecisionKind = "in_publicity"
	KindObjected           DecisionKind = "objected"
	KindObjectionDismissed DecisionKind = "objection_dismissed"
	KindRemoved            DecisionKind = "removed"
	KindReleased           DecisionKind = "released"
	KindPaid               DecisionKind = "paid"
	KindReturned           DecisionKind = "returned"
	KindReissued           DecisionKind = "reissued"
)

// RejectionCode says why the city refused an item: the name of
// wengang.v1.RejectionCode without its prefix, such as "USCC_CHECKSUM".
type RejectionCode string

// Rejection codes.
const (
	RejectUSCCInvalid      RejectionCode = "USCC_INVALID"
	RejectUSCCChecksum     RejectionCode = "USCC_CHECKSUM"
	RejectCountyMismatch   RejectionCode = "COUNTY_MISMATCH"
	RejectPolicyUnknown    RejectionCode = "POLICY_UNKNOWN"
	RejectEvidenceMismatch RejectionCode = "EVIDENCE_MISMATCH"
	RejectNotEligible      RejectionCode = "NOT_ELIGIBLE"
	RejectRefundMismatch   RejectionCode = "REFUND_MISMATCH"
	RejectAccountInvalid   RejectionCode = "ACCOUNT_INVALID"
	RejectDuplicate        RejectionCode = "DUPLICATE"
	RejectAlreadyPaid      RejectionCode = "ALREADY_PAID"
)

// Rejection is one reason the city refused an item.
type Rejection struct {
	Code    RejectionCode `json:"code"`
	Detail  string        `json:"detail,omitempty"`
	Reasons []string      `json:"reasons,omitempty"` // refund reason codes, such as "NOT_SME", for NOT_ELIGIBLE
}

// Tally is a number of items and the sum of their amounts.
type Tally struct {
	Count     int64
	AmountFen int64
}

func (t *Tally) add(fen int64) {
	t.Count++
	t.AmountFen += fen
}

// fail returns err prefixed with what was being done, its driver errors
// translated to fault kinds.
func fail(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, pg.Translate(err))...)
}

// dateValue is a civil date as a query argument: NULL for the zero Date.
func dateValue(d civil.Date) pgtype.Date {
	if d == 0 {
		return pgtype.Date{}
	}
	return pgtype.Date{Time: time.Date(d.Year(), time.Month(d.Month()), d.Day(), 0, 0, 0, 0, time.UTC), Valid: true}
}

// civilDate reads a date column; NULL is the zero Date.
func civilDate(d pgtype.Date) civil.Date {
	if !d.Valid {
		return 0
	}
	y, m, dd := d.Time.Date()
	return civil.Date(y*10000 + int(m)*100 + dd)
}

// rejectionsJSON encodes rejections for a jsonb column ("[]" when none).
func rejectionsJSON(rs []Rejection) []byte {
	if len(rs) == 0 {
		return []byte("[]")
	}
	b, err := json.Marshal(rs)
	if err != nil {
		panic(err) // strings and slices of strings always marshal
	}
	return b
}

// parseRejections decodes a jsonb column of rejections.
func parseRejections(b []byte) ([]Rejection, error) {
	var rs []Rejection
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("rejections %q: %w", b, err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, nil
}

// snapshot is the transaction of readers that read several tables: one
// consistent view of them.
var snapshot = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// timestamp returns t as PostgreSQL keeps it: UTC, microseconds.
func timestamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
