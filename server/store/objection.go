package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
	"wengang/policy/civil"
)

// Objection states.
const (
	ObjectionOpen      = "open"
	ObjectionUpheld    = "upheld"
	ObjectionDismissed = "dismissed"
)

// NewObjection is an objection to record against one enterprise of a round
// in publicity, raised through the portal or with staff.
type NewObjection struct {
	RoundID, USCC, ContactName, ContactPhone, Text string
	Channel                                        string // "portal", "phone", "counter", "sms", "other"
	RecordedBy                                     string // a staff member's name, or "portal"
	ReceivedAt                                     time.Time
	IdempotencyKey                                 string     // "" for none; a repeat returns the first objection
	Today                                          civil.Date // the business date: objections are taken from start_date to end_date
}

// Objection is an objection raised during publicity (公示异议).
type Objection struct {
	ID, County, RoundID, USCC, Name, ContactName, ContactPhone, Text, Channel, State, RecordedBy string
	ReceivedAt                                                                                   time.Time
	ResolutionReason, ResolvedBy                                                                 string
	ResolvedAt                                                                                   time.Time
}

const objectionColumns = `o.id, o.county, o.round_id, o.uscc, e.name, o.contact_name, o.contact_phone, o.text, o.channel, o.state,
	o.recorded_by, o.received_at, o.resolution_reason, o.resolved_by, o.resolved_at`

func scanObjection(row pgx.CollectableRow) (Objection, error) {
	var (
		o        Objection
		resolved *time.Time
	)
	err := row.Scan(&o.ID, &o.County, &o.RoundID, &o.USCC, &o.Name, &o.ContactName, &o.ContactPhone, &o.Text, &o.Channel, &o.State,
		&o.RecordedBy, &o.ReceivedAt, &o.ResolutionReason, &o.ResolvedBy, &resolved)
	o.ReceivedAt = o.ReceivedAt.UTC()
	if resolved != nil {
		o.ResolvedAt = resolved.UTC()
	}
	return o, err
}

// getObjection reads objection id within tx (locked with forUpdate), or
// fault.ErrNotFound.
func getObjection(ctx context.Context, tx pgx.Tx, id string, forUpdate bool) (Objection, error) {
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE OF o"
	}
	rows, err := tx.Query(ctx, `SELECT `+objectionColumns+` FROM objection o
		JOIN round_entry e ON e.county = o.county AND e.round_id = o.round_id AND e.uscc = o.uscc WHERE o.id = $1`+lock, id)
	if err != nil {
		return Objection{}, err
	}
	o, err := pgx.CollectExactlyOneRow(rows, scanObjection)
	if errors.Is(err, pgx.ErrNoRows) {
		return Objection{}, fault.New(fault.ErrNotFound, "no objection %s", id)
	}
	return o, err
}

// RecordObjection records an objection against enterprise o.USCC of round
// o.RoundID and freezes that enterprise alone: its item moves to objected
// and its county hears it (a second open objection against a frozen
// enterprise changes no state). The actor of the audit entry is the
// request's authenticated principal, else an anonymous one named
// o.RecordedBy ("portal" for the public). A repeat of o.IdempotencyKey returns the first objection.
//
// Errors: fault.ErrInvalid (no text, an unknown channel);
// fault.ErrNotFound (no such round, or the enterprise is not in it, or
// was removed from it); fault.ErrFailedPrecondition (the round is not in
// publicity on o.Today: the business date, not o.ReceivedAt, decides, so
// that drills on a fixed business date work with the wall clock);
// fault.ErrConflict (the key was used for another objection).
func (s *Store) RecordObjection(ctx context.Context, o NewObjection) (Objection, error) {
	if o.Text == "" || o.RoundID == "" || o.USCC == "" {
		return Objection{}, fault.New(fault.ErrInvalid, "record objection: round, USCC and text are required (异议内容必填)")
	}
	if !slices.Contains([]string{"portal", "phone", "counter", "sms", "other"}, o.Channel) {
		return Objection{}, fault.New(fault.ErrInvalid, "record objection: unknown channel %q", o.Channel)
	}
	if o.RecordedBy == "" {
		o.RecordedBy = "portal"
	}
	actor, ok := access.PrincipalFrom(ctx)
	if !ok || actor.Kind == access.KindAnonymous || actor.Subject == "" {
		// The public, through the portal: no one to name but the channel.
		actor = access.Principal{Kind: access.KindAnonymous, Subject: o.RecordedBy, Name: o.RecordedBy, Role: actor.Role}
	}
	now := timestamp(o.ReceivedAt)
	var out Objection
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if o.IdempotencyKey != "" {
			// Two requests with one key meet here.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('objection:' || $1, 0))`, o.IdempotencyKey); err != nil {
				return err
			}
			var id string
			err := tx.QueryRow(ctx, `SELECT id FROM objection WHERE idempotency_key = $1`, o.IdempotencyKey).Scan(&id)
			if err == nil {
				first, err := getObjection(ctx, tx, id, false)
				if err != nil {
					return err
				}
				if first.RoundID != o.RoundID || first.USCC != o.USCC || first.Text != o.Text {
					return fault.New(fault.ErrConflict, "idempotency key %q was used for objection %s to another enterprise or with other words (幂等键已用于其他异议)", o.IdempotencyKey, id)
				}
				out = first
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		var (
			state      string
			start, end pgtype.Date
		)
		err := tx.QueryRow(ctx, `SELECT state, start_date, end_date FROM publicity_round WHERE id = $1 FOR SHARE`, o.RoundID).Scan(&state, &start, &end)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no round %s", o.RoundID)
		}
		if err != nil {
			return err
		}
		if state == string(RoundDraft) || o.Today < civilDate(start) || o.Today > civilDate(end) {
			return fault.New(fault.ErrFailedPrecondition, "round %s is not in publicity on %s (publicity %s to %s): objections are taken during publicity only (不在公示期内)",
				o.RoundID, o.Today, civilDate(start), civilDate(end))
		}
		var (
			county, batchID, itemState string
			amount                     int64
		)
		err = tx.QueryRow(ctx, `SELECT e.county, e.batch_id, i.state, e.amount_fen FROM round_entry e
			JOIN received_item i ON i.county = e.county AND i.batch_id = e.batch_id AND i.uscc = e.uscc
			WHERE e.round_id = $1 AND e.uscc = $2 AND NOT e.removed FOR UPDATE OF i`, o.RoundID, o.USCC).Scan(&county, &batchID, &itemState, &amount)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "enterprise %s is not in round %s (该企业不在本批公示名单中)", o.USCC, o.RoundID)
		}
		if err != nil {
			return err
		}
		if ItemState(itemState) != ItemInPublicity && ItemState(itemState) != ItemObjected {
			return fault.New(fault.ErrFailedPrecondition, "enterprise %s of round %s is %s, not in publicity (该企业不在公示中)", o.USCC, o.RoundID, itemState)
		}
		// Numbered in the year of the business date, like the round.
		year := o.Today.Year()
		if o.Today == 0 {
			year = civil.DateOf(now).Year()
		}
		var id string
		err = tx.QueryRow(ctx, `INSERT INTO objection (county, id, round_id, uscc, contact_name, contact_phone, text, channel, recorded_by, received_at, idempotency_key)
			VALUES ($1, 'O' || $11::int || '-' || lpad(nextval('objection_number')::text, 6, '0'),
				$2, $3, $4, $5, $6, $7, $8, $9, nullif($10, '')) RETURNING id`,
			county, o.RoundID, o.USCC, o.ContactName, o.ContactPhone, o.Text, o.Channel, o.RecordedBy, now, o.IdempotencyKey, year).Scan(&id)
		if err != nil {
			return err
		}
		if ItemState(itemState) == ItemInPublicity {
			_, err := AppendDecision(ctx, tx, Decision{County: county, BatchID: batchID, USCC: o.USCC, Kind: KindObjected, RoundID: o.RoundID, AmountFen: amount, OccurredAt: now,
				Reason: fmt.Sprintf("公示期间收到异议 %s，暂停处理 (objection %s received during publicity; frozen until it is resolved)", id, id)})
			if err != nil {
				return err
			}
		}
		detail, _ := json.Marshal(map[string]any{"round": o.RoundID, "uscc": o.USCC, "channel": o.Channel, "recorded_by": o.RecordedBy})
		if _, err := audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "objection.record", ObjectType: "objection", ObjectID: id, Detail: string(detail)}); err != nil {
			return err
		}
		out, err = getObjection(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return Objection{}, fail(err, "record objection to %s in round %s", o.USCC, o.RoundID)
	}
	return out, nil
}

// GetObjection returns objection id, or fault.ErrNotFound.
func (s *Store) GetObjection(ctx context.Context, id string) (Objection, error) {
	var o Objection
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var err error
		o, err = getObjection(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return Objection{}, fail(err, "get objection %s", id)
	}
	return o, nil
}

// ObjectionFilter selects objections for ListObjections.
type ObjectionFilter struct {
	RoundID string // "" for all rounds
	State   string // "" for all states
	Limit   int
	After   string // the page token of the previous page
}

// ListObjections returns up to f.Limit objections, oldest first, and the
// next page's token ("" on the last page).
func (s *Store) ListObjections(ctx context.Context, f ObjectionFilter) ([]Objection, string, error) {
	var after struct {
		At time.Time `json:"t"`
		ID string    `json:"i"`
	}
	if err := parseToken(f.After, &after); err != nil {
		return nil, "", err
	}
	var at *time.Time
	if after.ID != "" {
		at = &after.At
	}
	rows, err := s.pool.Query(ctx, `SELECT `+objectionColumns+` FROM objection o
		JOIN round_entry e ON e.county = o.county AND e.round_id = o.round_id AND e.uscc = o.uscc
		WHERE ($1 = '' OR o.round_id = $1) AND ($2 = '' OR o.state = $2)
		  AND ($3::timestamptz IS NULL OR (o.received_at, o.id) > ($3, $4))
		ORDER BY o.received_at, o.id LIMIT $5`, f.RoundID, f.State, at, after.ID, f.Limit+1)
	if err != nil {
		return nil, "", fail(err, "list objections")
	}
	out, err := pgx.CollectRows(rows, scanObjection)
	if err != nil {
		return nil, "", fail(err, "list objections")
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		after.At, after.ID = out[len(out)-1].ReceivedAt, out[len(out)-1].ID
		next = formatToken(after)
	}
	return out, next, nil
}

// ResolveObjection settles open objection id: upheld removes the
// enterprise from its round (the entry is marked removed, the item moves
// to removed with the reason, and any other open objection against it is
// settled with it); dismissed puts the enterprise back in publicity once no
// other objection against it is open. Its county hears either. Resolving a
// resolved objection the same way returns it as first resolved.
//
// Errors: fault.ErrInvalid (resolution not upheld or dismissed, no
// reason); fault.ErrNotFound; fault.ErrFailedPrecondition (resolved the
// other way). The change is audited under actor.
func (s *Store) ResolveObjection(ctx context.Context, actor access.Principal, id, resolution, reason string, now time.Time) (Objection, error) {
	if resolution != ObjectionUpheld && resolution != ObjectionDismissed {
		return Objection{}, fault.New(fault.ErrInvalid, "resolve objection: resolution must be upheld or dismissed, not %q", resolution)
	}
	if reason == "" {
		return Objection{}, fault.New(fault.ErrInvalid, "resolve objection: a written reason is required (须填写理由)")
	}
	now = timestamp(now)
	var out Objection
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		o, err := getObjection(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if o.State != ObjectionOpen {
			if o.State != resolution {
				return fault.New(fault.ErrFailedPrecondition, "objection %s was already %s by %s (异议已处理)", id, o.State, o.ResolvedBy)
			}
			out = o
			return nil
		}
		var (
			batchID, itemState string
			amount             int64
		)
		err = tx.QueryRow(ctx, `SELECT e.batch_id, i.state, e.amount_fen FROM round_entry e
			JOIN received_item i ON i.county = e.county AND i.batch_id = e.batch_id AND i.uscc = e.uscc
			WHERE e.county = $1 AND e.round_id = $2 AND e.uscc = $3 FOR UPDATE OF e, i`, o.County, o.RoundID, o.USCC).Scan(&batchID, &itemState, &amount)
		if err != nil {
			return err
		}
		others := `UPDATE objection SET state = $4, resolution_reason = $5, resolved_by = $6, resolved_at = $7
			WHERE county = $1 AND round_id = $2 AND uscc = $3 AND state = 'open'`
		d := Decision{County: o.County, BatchID: batchID, USCC: o.USCC, RoundID: o.RoundID, AmountFen: amount, OccurredAt: now}
		var decide bool
		if resolution == ObjectionUpheld {
			// Every open objection against the enterprise is settled with it.
			if _, err := tx.Exec(ctx, others, o.County, o.RoundID, o.USCC, ObjectionUpheld, reason, actorName(actor), now); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE round_entry SET removed = true WHERE county = $1 AND round_id = $2 AND uscc = $3`, o.County, o.RoundID, o.USCC); err != nil {
				return err
			}
			d.Kind, decide = KindRemoved, ItemState(itemState) == ItemObjected
			d.Reason = fmt.Sprintf("公示异议 %s 成立，撤销：%s (objection upheld; removed from round %s: %s)", id, reason, o.RoundID, reason)
		} else {
			if _, err := tx.Exec(ctx, `UPDATE objection SET state = $2, resolution_reason = $3, resolved_by = $4, resolved_at = $5 WHERE id = $1`,
				id, ObjectionDismissed, reason, actorName(actor), now); err != nil {
				return err
			}
			var open int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM objection WHERE county = $1 AND round_id = $2 AND uscc = $3 AND state = 'open'`,
				o.County, o.RoundID, o.USCC).Scan(&open); err != nil {
				return err
			}
			d.Kind, decide = KindObjectionDismissed, open == 0 && ItemState(itemState) == ItemObjected
			d.Reason = fmt.Sprintf("公示异议 %s 不成立：%s (objection dismissed: %s)", id, reason, reason)
		}
		if decide {
			if _, err := AppendDecision(ctx, tx, d); err != nil {
				return err
			}
		}
		detail, _ := json.Marshal(map[string]any{"resolution": resolution, "reason": reason, "round": o.RoundID, "uscc": o.USCC})
		if _, err := audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "objection." + resolution, ObjectType: "objection", ObjectID: id, Detail: string(detail)}); err != nil {
			return err
		}
		out, err = getObjection(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return Objection{}, fail(err, "resolve objection %s", id)
	}
	return out, nil
}
