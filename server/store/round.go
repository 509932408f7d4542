package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
	"wengang/policy/civil"
)

// RoundState is the state of a publicity round as of a business date:
// wengang.v1.RoundState in lower case. Only RoundDraft, RoundApproved and
// RoundReleased are stored; RoundInPublicity and RoundEnded follow from an
// approved round's dates and the business date.
type RoundState string

// Round states.
const (
	RoundDraft       RoundState = "draft"
	RoundApproved    RoundState = "approved"
	RoundInPublicity RoundState = "in_publicity"
	RoundEnded       RoundState = "ended"
	RoundReleased    RoundState = "released"
)

// roundStateSQL computes a round's RoundState in SQL from its stored state
// and dates against the business date, parameter $1.
const roundStateSQL = `CASE WHEN r.state <> 'approved' THEN r.state
	WHEN $1::date < r.start_date THEN 'approved'
	WHEN $1::date <= r.end_date THEN 'in_publicity' ELSE 'ended' END`

// BatchRef names a received batch.
type BatchRef struct {
	County  string
	BatchID string
}

// Contact is where the public raises objections to a round (异议受理).
type Contact struct {
	Office, Phone, Address, Email string
}

// Round is a publicity round (公示批次) as of a business date.
type Round struct {
	ID             string
	Title          string
	PolicyYear     int
	Counties       []string   // sorted
	Batches        []BatchRef // by county and batch id
	Start, End     civil.Date
	Workdays       int
	State          RoundState // as of the business date it was read with
	Contact        Contact
	Entries        Tally // entries not removed
	ByState        map[ItemState]Tally
	OpenObjections int64
	BuiltBy        string
	BuiltAt        time.Time
	ApprovedBy     string
	ApprovedAt     time.Time
	ReleasedBy     string
	ReleasedAt     time.Time
}

// NewRound is a round to build.
type NewRound struct {
	Title          string
	Batches        []BatchRef
	Start, End     civil.Date // End: the last of Workdays working days from Start
	Workdays       int
	Contact        Contact
	IdempotencyKey string
}

// actorName is how a principal is named in rounds and objections: the
// person's name, else the token's or certificate's subject.
func actorName(p access.Principal) string {
	if p.Name != "" {
		return p.Name
	}
	return p.Subject
}

// isBuilder reports whether p built a round built by builtBy.
func isBuilder(p access.Principal, builtBy string) bool {
	return builtBy != "" && (p.Name == builtBy || p.Subject == builtBy)
}

// CreateRound builds a draft round from the received batches r names: every
// item of theirs in state received becomes an entry and moves to in_round
// (the counties hear of it when the round is approved). It is idempotent
// by r.IdempotencyKey: a repeat with the same batches, title and dates
// returns the round first built.
//
// Errors: fault.ErrInvalid (no key, no title, no batches, batches of
// different policy years); fault.ErrNotFound (a batch); fault.ErrConflict
// (the key was used for another request);
// fault.ErrFailedPrecondition (a batch already in a round, or with no item
// in state received). The change is audited under actor.
func (s *Store) CreateRound(ctx context.Context, actor access.Principal, r NewRound, today civil.Date, now time.Time) (Round, error) {
	if r.IdempotencyKey == "" || r.Title == "" || len(r.Batches) == 0 || r.Start == 0 || r.End < r.Start || r.Workdays < 1 {
		return Round{}, fault.New(fault.ErrInvalid, "create round: key, title, batches, start and end dates are required")
	}
	now = timestamp(now)
	refs := slices.Clone(r.Batches)
	slices.SortFunc(refs, func(a, b BatchRef) int { return strings.Compare(a.County+"/"+a.BatchID, b.County+"/"+b.BatchID) })
	refs = slices.Compact(refs)
	var id string
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		// One round built at a time: the live entries stay unique and
		// a reused key meets its first use.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('round:create', 0))`); err != nil {
			return err
		}
		var (
			title  string
			start  pgtype.Date
			counts int
		)
		err := tx.QueryRow(ctx, `SELECT id, title, start_date, (SELECT count(*) FROM round_batch b WHERE b.round_id = r.id)
			FROM publicity_round r WHERE idempotency_key = $1`, r.IdempotencyKey).Scan(&id, &title, &start, &counts)
		if err == nil {
			var same bool
			if title == r.Title && civilDate(start) == r.Start && counts == len(refs) {
				var n int
				err := tx.QueryRow(ctx, `SELECT count(*) FROM round_batch b JOIN unnest($2::text[], $3::text[]) AS k(county, batch_id)
					ON b.county = k.county AND b.batch_id = k.batch_id WHERE b.round_id = $1`, id, refCounties(refs), refBatches(refs)).Scan(&n)
				if err != nil {
					return err
				}
				same = n == len(refs)
			}
			if !same {
				return fault.New(fault.ErrConflict, "idempotency key %q was used to build round %s with other batches, title or dates (幂等键已用于其他请求)", r.IdempotencyKey, id)
			}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		id, err = createRound(ctx, tx, actor, r, refs, now)
		return err
	})
	if err != nil {
		return Round{}, fail(err, "create round")
	}
	return s.GetRound(ctx, id, today)
}

func refCounties(refs []BatchRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.County
	}
	return out
}

func refBatches(refs []BatchRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.BatchID
	}
	return out
}

func createRound(ctx context.Context, tx pgx.Tx, actor access.Principal, r NewRound, refs []BatchRef, now time.Time) (string, error) {
	// The batches, with their policy years and rounds.
	rows, err := tx.Query(ctx, `SELECT k.county, k.batch_id, b.policy_year, coalesce(rb.round_id, '')
		FROM unnest($1::text[], $2::text[]) AS k(county, batch_id)
		LEFT JOIN received_batch b ON b.county = k.county AND b.id = k.batch_id
		LEFT JOIN round_batch rb ON rb.county = k.county AND rb.batch_id = k.batch_id`, refCounties(refs), refBatches(refs))
	if err != nil {
		return "", err
	}
	var (
		county, batchID, inRound string
		year                     *int32
		years                    = map[int32]bool{}
		policyYear               int32
	)
	if _, err := pgx.ForEachRow(rows, []any{&county, &batchID, &year, &inRound}, func() error {
		if year == nil {
			return fault.New(fault.ErrNotFound, "no received batch %s of county %s", batchID, county)
		}
		if inRound != "" {
			return fault.New(fault.ErrFailedPrecondition, "batch %s of county %s is already in round %s (批次已在公示批次中)", batchID, county, inRound)
		}
		years[*year], policyYear = true, *year
		return nil
	}); err != nil {
		return "", err
	}
	if len(years) > 1 {
		return "", fault.New(fault.ErrInvalid, "create round: the batches are of different policy years (批次政策年度不一致)")
	}

	var id string
	err = tx.QueryRow(ctx, `INSERT INTO publicity_round (id, title, policy_year, start_date, end_date, workdays,
			contact_office, contact_phone, contact_address, contact_email, idempotency_key, built_by, built_at)
		VALUES ('R' || $1::int || '-' || lpad(nextval('publicity_round_number')::text, 4, '0'), $2, $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		RETURNING id`, policyYear, r.Title, dateValue(r.Start), dateValue(r.End), r.Workdays,
		r.Contact.Office, r.Contact.Phone, r.Contact.Address, r.Contact.Email, r.IdempotencyKey, actorName(actor), now).Scan(&id)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO round_batch (round_id, county, batch_id) SELECT $1, * FROM unnest($2::text[], $3::text[])`,
		id, refCounties(refs), refBatches(refs)); err != nil {
		return "", err
	}
	// The received items of each batch, locked, become the entries.
	var empty []string
	for _, b := range refs {
		tag, err := tx.Exec(ctx, `WITH moved AS (
				UPDATE received_item SET state = 'in_round', round_id = $3, updated_at = $4
				WHERE county = $1 AND batch_id = $2 AND state = 'received' AND recomputed_refund_fen > 0
				RETURNING county, batch_id, uscc, policy_year, name, recomputed_refund_fen)
			INSERT INTO round_entry (county, round_id, batch_id, uscc, policy_year, name, amount_fen)
			SELECT county, $3, batch_id, uscc, policy_year, name, recomputed_refund_fen FROM moved`, b.County, b.BatchID, id, now)
		if err != nil {
			return "", err
		}
		if tag.RowsAffected() == 0 {
			empty = append(empty, b.County+" "+b.BatchID)
		}
	}
	if len(empty) > 0 {
		return "", fault.New(fault.ErrFailedPrecondition, "batches %s have no item in state received (批次无待公示企业)", strings.Join(empty, ", "))
	}
	detail, _ := json.Marshal(map[string]any{"title": r.Title, "batches": refs, "start": r.Start.String(), "end": r.End.String(), "workdays": r.Workdays})
	_, err = audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "round.create", ObjectType: "round", ObjectID: id, Detail: string(detail)})
	return id, err
}

// ApproveRound approves draft round id for publication: the round's state
// becomes approved and each entry moves to in_publicity, its county hearing
// it with the publicity dates. Approving an approved (or released) round
// returns it.
//
// Errors: fault.ErrNotFound; fault.ErrPermissionDenied (actor built the
// round: four eyes); fault.ErrFailedPrecondition (today is after the start
// date). The change is audited under actor.
func (s *Store) ApproveRound(ctx context.Context, actor access.Principal, id, comment string, today civil.Date, now time.Time) (Round, error) {
	now = timestamp(now)
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			state, builtBy string
			start, end     pgtype.Date
		)
		err := tx.QueryRow(ctx, `SELECT state, built_by, start_date, end_date FROM publicity_round WHERE id = $1 FOR UPDATE`, id).Scan(&state, &builtBy, &start, &end)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no round %s", id)
		}
		if err != nil {
			return err
		}
		if isBuilder(actor, builtBy) {
			return fault.New(fault.ErrPermissionDenied, "round %s was built by %s: another approver must approve it (四眼原则：审批人不得为经办人)", id, builtBy)
		}
		if state != string(RoundDraft) {
			return nil
		}
		if today > civilDate(start) {
			return fault.New(fault.ErrFailedPrecondition, "round %s starts on %s, before the business date %s: it would be shown for fewer working days; build a new round (公示开始日已过)",
				id, civilDate(start), today)
		}
		rows, err := tx.Query(ctx, `SELECT county, batch_id, uscc, amount_fen FROM round_entry WHERE round_id = $1 AND NOT removed ORDER BY county, uscc`, id)
		if err != nil {
			return err
		}
		var ds []Decision
		d := Decision{Kind: KindInPublicity, RoundID: id, PublicityStart: civilDate(start), PublicityEnd: civilDate(end), OccurredAt: now,
			Reason: fmt.Sprintf("已进入公示 %s 至 %s (in publicity in round %s from %s to %s)", civilDate(start), civilDate(end), id, civilDate(start), civilDate(end))}
		if _, err := pgx.ForEachRow(rows, []any{&d.County, &d.BatchID, &d.USCC, &d.AmountFen}, func() error {
			ds = append(ds, d)
			return nil
		}); err != nil {
			return err
		}
		if _, err := AppendDecisions(ctx, tx, ds); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE publicity_round SET state = 'approved', approved_by = $2, approved_at = $3 WHERE id = $1`, id, actorName(actor), now); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"entries": len(ds), "comment": comment})
		_, err = audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "round.approve", ObjectType: "round", ObjectID: id, Detail: string(detail)})
		return err
	})
	if err != nil {
		return Round{}, fail(err, "approve round %s", id)
	}
	return s.GetRound(ctx, id, today)
}

// GetRound returns round id with its state as of today, or
// fault.ErrNotFound.
func (s *Store) GetRound(ctx context.Context, id string, today civil.Date) (Round, error) {
	var out []Round
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var err error
		out, err = readRounds(ctx, tx, today, `r.id = $2`, "", id)
		return err
	})
	if err != nil {
		return Round{}, fail(err, "get round %s", id)
	}
	if len(out) == 0 {
		return Round{}, fault.New(fault.ErrNotFound, "no round %s", id)
	}
	return out[0], nil
}

// RoundFilter selects rounds for ListRounds.
type RoundFilter struct {
	States   []RoundState // as of Today; empty: all
	Counties []string     // rounds with a batch of one of these; empty: all
	Today    civil.Date
	Limit    int
	After    string // the page token of the previous page, "" for the first
}

// ListRounds returns up to f.Limit rounds, newest start date first, and
// the token of the next page ("" on the last page).
func (s *Store) ListRounds(ctx context.Context, f RoundFilter) ([]Round, string, error) {
	var after struct {
		Start civil.Date `json:"s"`
		ID    string     `json:"i"`
	}
	if err := parseToken(f.After, &after); err != nil {
		return nil, "", err
	}
	states := make([]string, len(f.States))
	for i, st := range f.States {
		states[i] = string(st)
	}
	var out []Round
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var err error
		out, err = readRounds(ctx, tx, f.Today, `(coalesce(cardinality($2::text[]), 0) = 0 OR (`+roundStateSQL+`) = ANY($2))
			AND (coalesce(cardinality($3::text[]), 0) = 0 OR EXISTS (SELECT 1 FROM round_batch b WHERE b.round_id = r.id AND b.county = ANY($3)))
			AND ($4::date IS NULL OR (r.start_date, r.id) < ($4::date, $5))`,
			fmt.Sprintf("LIMIT %d", f.Limit+1), states, f.Counties, dateValue(after.Start), after.ID)
		return err
	})
	if err != nil {
		return nil, "", fail(err, "list rounds")
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		after.Start, after.ID = last.Start, last.ID
		next = formatToken(after)
	}
	return out, next, nil
}

// readRounds reads the rounds matching where (whose parameters start at
// $2; $1 is today), newest start date first.
func readRounds(ctx context.Context, tx pgx.Tx, today civil.Date, where, limit string, args ...any) ([]Round, error) {
	rows, err := tx.Query(ctx, `SELECT r.id, r.title, r.policy_year, r.start_date, r.end_date, r.workdays, `+roundStateSQL+`,
			r.contact_office, r.contact_phone, r.contact_address, r.contact_email, r.built_by, r.built_at,
			r.approved_by, r.approved_at, r.released_by, r.released_at
		FROM publicity_round r WHERE `+where+` ORDER BY r.start_date DESC, r.id DESC `+limit, append([]any{dateValue(today)}, args...)...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Round, error) {
		var (
			r                  Round
			state              string
			start, end         pgtype.Date
			approved, released *time.Time
		)
		err := row.Scan(&r.ID, &r.Title, &r.PolicyYear, &start, &end, &r.Workdays, &state,
			&r.Contact.Office, &r.Contact.Phone, &r.Contact.Address, &r.Contact.Email, &r.BuiltBy, &r.BuiltAt,
			&r.ApprovedBy, &approved, &r.ReleasedBy, &released)
		r.Start, r.End, r.State, r.BuiltAt = civilDate(start), civilDate(end), RoundState(state), r.BuiltAt.UTC()
		if approved != nil {
			r.ApprovedAt = approved.UTC()
		}
		if released != nil {
			r.ReleasedAt = released.UTC()
		}
		r.ByState = map[ItemState]Tally{}
		return r, err
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	ids := make([]string, len(out))
	byID := make(map[string]*Round, len(out))
	for i := range out {
		ids[i], byID[out[i].ID] = out[i].ID, &out[i]
	}
	rows, err = tx.Query(ctx, `SELECT round_id, county, batch_id FROM round_batch WHERE round_id = ANY($1) ORDER BY round_id, county, batch_id`, ids)
	if err != nil {
		return nil, err
	}
	var roundID, county, batchID string
	if _, err := pgx.ForEachRow(rows, []any{&roundID, &county, &batchID}, func() error {
		r := byID[roundID]
		r.Batches = append(r.Batches, BatchRef{county, batchID})
		if !slices.Contains(r.Counties, county) {
			r.Counties = append(r.Counties, county)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT e.round_id, CASE WHEN e.removed THEN 'removed' ELSE i.state END, count(*), sum(e.amount_fen), count(*) FILTER (WHERE NOT e.removed), coalesce(sum(e.amount_fen) FILTER (WHERE NOT e.removed), 0)
		FROM round_entry e JOIN received_item i ON i.county = e.county AND i.batch_id = e.batch_id AND i.uscc = e.uscc
		WHERE e.round_id = ANY($1) GROUP BY 1, 2`, ids)
	if err != nil {
		return nil, err
	}
	var (
		state   string
		t, live Tally
	)
	if _, err := pgx.ForEachRow(rows, []any{&roundID, &state, &t.Count, &t.AmountFen, &live.Count, &live.AmountFen}, func() error {
		r := byID[roundID]
		st := ItemState(state)
		prev := r.ByState[st]
		r.ByState[st] = Tally{prev.Count + t.Count, prev.AmountFen + t.AmountFen}
		r.Entries.Count += live.Count
		r.Entries.AmountFen += live.AmountFen
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT round_id, count(*) FROM objection WHERE round_id = ANY($1) AND state = 'open' GROUP BY round_id`, ids)
	if err != nil {
		return nil, err
	}
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&roundID, &n}, func() error { byID[roundID].OpenObjections = n; return nil }); err != nil {
		return nil, err
	}
	return out, nil
}

// Entry is one enterprise of a round, as staff see it.
type Entry struct {
	RoundID, County, BatchID, USCC, Name string
	AmountFen                            int64
	State                                ItemState
	Removed                              bool
	ObjectionID                          string // the open or last objection
	Payee                                Payee
	InstructionID                        string
}

// Payee is the account an item is to be paid to.
type Payee struct {
	Kind, Bank, BankCode, AccountNo, AccountName string // Kind: corporate or social_insurance
}

// EntryFilter selects a round's entries for ListEntries.
type EntryFilter struct {
	RoundID string
	States  []ItemState // empty: all
	Query   string      // USCC prefix or part of the name; "" for all
	Limit   int
	After   string // the page token of the previous page
}

// ListEntries returns up to f.Limit entries of round f.RoundID, ordered by
// county and USCC, and the next page's token ("" on the last page).
// Errors: fault.ErrNotFound (no such round).
func (s *Store) ListEntries(ctx context.Context, f EntryFilter) ([]Entry, string, error) {
	var after struct {
		County string `json:"c"`
		USCC   string `json:"u"`
	}
	if err := parseToken(f.After, &after); err != nil {
		return nil, "", err
	}
	states := make([]string, len(f.States))
	for i, st := range f.States {
		states[i] = string(st)
	}
	var out []Entry
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM publicity_round WHERE id = $1`, f.RoundID).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return fault.New(fault.ErrNotFound, "no round %s", f.RoundID)
			}
			return err
		}
		rows, err := tx.Query(ctx, `SELECT e.county, e.batch_id, e.uscc, e.name, e.amount_fen, e.removed,
				CASE WHEN e.removed THEN 'removed' ELSE i.state END,
				coalesce((SELECT o.id FROM objection o WHERE o.county = e.county AND o.round_id = e.round_id AND o.uscc = e.uscc
					ORDER BY o.state = 'open' DESC, o.received_at DESC, o.id DESC LIMIT 1), ''),
				i.payee_kind, i.payee_bank, i.payee_bank_code, i.payee_account_no, i.payee_account_name,
				CASE WHEN i.round_id = e.round_id THEN i.instruction_id ELSE '' END
			FROM round_entry e JOIN received_item i ON i.county = e.county AND i.batch_id = e.batch_id AND i.uscc = e.uscc
			WHERE e.round_id = $1
			  AND (coalesce(cardinality($2::text[]), 0) = 0 OR (CASE WHEN e.removed THEN 'removed' ELSE i.state END) = ANY($2))
			  AND ($3 = '' OR e.uscc LIKE $3 || '%' OR strpos(e.name, $3) > 0)
			  AND (e.county, e.uscc) > ($4, $5)
			ORDER BY e.county, e.uscc LIMIT $6`, f.RoundID, states, f.Query, after.County, after.USCC, f.Limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
			e := Entry{RoundID: f.RoundID}
			var state string
			err := row.Scan(&e.County, &e.BatchID, &e.USCC, &e.Name, &e.AmountFen, &e.Removed, &state, &e.ObjectionID,
				&e.Payee.Kind, &e.Payee.Bank, &e.Payee.BankCode, &e.Payee.AccountNo, &e.Payee.AccountName, &e.InstructionID)
			e.State = ItemState(state)
			return e, err
		})
		return err
	})
	if err != nil {
		return nil, "", fail(err, "list entries of round %s", f.RoundID)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		after.County, after.USCC = out[len(out)-1].County, out[len(out)-1].USCC
		next = formatToken(after)
	}
	return out, next, nil
}

// parseToken reads a page token into v; "" leaves v as it is. A token this
// store did not write is fault.ErrInvalid.
func parseToken(tok string, v any) error {
	if tok == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return fault.New(fault.ErrInvalid, "page token %q was not issued by this server (分页标记无效)", tok)
	}
	return nil
}

// formatToken writes v as a page token.
func formatToken(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the token structs always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// The city's view of its intake, and the resolution of cross-county
// conflicts: what a round is built from.

// BatchSummary is a received batch with its items per state.
type BatchSummary struct {
	ReceivedBatch
	ByState map[ItemState]Tally // of the items' claimed refunds
}

// BatchFilter selects received batches for ListBatches.
type BatchFilter struct {
	Counties []string // empty: all
	Limit    int
	After    string // the page token of the previous page
}

// ListBatches returns up to f.Limit received batches, newest first, and
// the next page's token ("" on the last page). Content is left empty.
func (s *Store) ListBatches(ctx context.Context, f BatchFilter) ([]BatchSummary, string, error) {
	var after struct {
		At     time.Time `json:"t"`
		County string    `json:"c"`
		ID     string    `json:"i"`
	}
	if err := parseToken(f.After, &after); err != nil {
		return nil, "", err
	}
	var at *time.Time
	if after.ID != "" {
		at = &after.At
	}
	var out []BatchSummary
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT county, id, content_hash, screening_id, dataset_hash, policy_id, policy_year, as_of, item_count, total_fen,
				sealed_at, sealed_by, pushed_by, received_at, received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen
			FROM received_batch WHERE (coalesce(cardinality($1::text[]), 0) = 0 OR county = ANY($1))
			  AND ($2::timestamptz IS NULL OR (received_at, county, id) < ($2, $3, $4))
			ORDER BY received_at DESC, county DESC, id DESC LIMIT $5`, f.Counties, at, after.County, after.ID, f.Limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (BatchSummary, error) {
			var (
				b      BatchSummary
				asOf   pgtype.Date
				sealed *time.Time
				rc     = &b.Receipt
			)
			err := row.Scan(&b.County, &b.ID, &b.ContentHash, &b.ScreeningID, &b.DatasetHash, &b.PolicyID, &b.PolicyYear, &asOf, &b.ItemCount, &b.TotalFen,
				&sealed, &b.SealedBy, &b.PushedBy, &rc.ReceivedAt, &rc.Received.Count, &rc.Received.AmountFen,
				&rc.Rejected.Count, &rc.Rejected.AmountFen, &rc.Conflict.Count, &rc.Conflict.AmountFen)
			b.AsOf, rc.BatchID, rc.ContentHash, rc.ReceivedAt = civilDate(asOf), b.ID, b.ContentHash, rc.ReceivedAt.UTC()
			if sealed != nil {
				b.SealedAt = sealed.UTC()
			}
			b.ByState = map[ItemState]Tally{}
			return b, err
		})
		if err != nil || len(out) == 0 {
			return err
		}
		return batchTallies(ctx, tx, out)
	})
	if err != nil {
		return nil, "", fail(err, "list batches")
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		after.At, after.County, after.ID = last.Receipt.ReceivedAt, last.County, last.ID
		next = formatToken(after)
	}
	return out, next, nil
}

// GetBatchSummary returns received batch id of county with its items per
// state, or fault.ErrNotFound.
func (s *Store) GetBatchSummary(ctx context.Context, county, id string) (BatchSummary, error) {
	b, err := s.GetBatch(ctx, county, id)
	if err != nil {
		return BatchSummary{}, err
	}
	out := []BatchSummary{{ReceivedBatch: b, ByState: map[ItemState]Tally{}}}
	err = pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error { return batchTallies(ctx, tx, out) })
	if err != nil {
		return BatchSummary{}, fail(err, "get batch %s of county %s", id, county)
	}
	return out[0], nil
}

func batchTallies(ctx context.Context, tx pgx.Tx, bs []BatchSummary) error {
	idx := make(map[[2]string]*BatchSummary, len(bs))
	counties, ids := make([]string, len(bs)), make([]string, len(bs))
	for i := range bs {
		counties[i], ids[i] = bs[i].County, bs[i].ID
		idx[[2]string{bs[i].County, bs[i].ID}] = &bs[i]
	}
	rows, err := tx.Query(ctx, `SELECT i.county, i.batch_id, i.state, count(*), sum(i.refund_fen) FROM received_item i
		JOIN unnest($1::text[], $2::text[]) AS k(county, batch_id) ON i.county = k.county AND i.batch_id = k.batch_id
		GROUP BY 1, 2, 3`, counties, ids)
	if err != nil {
		return err
	}
	var (
		county, id, state string
		t                 Tally
	)
	_, err = pgx.ForEachRow(rows, []any{&county, &id, &state, &t.Count, &t.AmountFen}, func() error {
		idx[[2]string{county, id}].ByState[ItemState(state)] = t
		return nil
	})
	return err
}

// ReceivedItem is one item as the city holds it, with the encoding of the
// item as pushed.
type ReceivedItem struct {
	ItemStatus
	Encoded []byte // the deterministic encoding of wengang.v1.BatchItem, with its evidence
}

// ItemFilter selects received items for ListItems.
type ItemFilter struct {
	Counties []string // empty: all
	BatchID  string
	States   []ItemState
	USCC     string
	Limit    int
	After    string // the page token of the previous page
}

// ListItems returns up to f.Limit received items ordered by county, batch
// and USCC, and the next page's token ("" on the last page).
func (s *Store) ListItems(ctx context.Context, f ItemFilter) ([]ReceivedItem, string, error) {
	var after struct {
		County string `json:"c"`
		Batch  string `json:"b"`
		USCC   string `json:"u"`
	}
	if err := parseToken(f.After, &after); err != nil {
		return nil, "", err
	}
	states := make([]string, len(f.States))
	for i, st := range f.States {
		states[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, `SELECT county, batch_id, uscc, policy_year, name, refund_fen, recomputed_refund_fen, state, rejections,
			conflict_id, round_id, instruction_id, last_sequence, updated_at, item
		FROM received_item WHERE (coalesce(cardinality($1::text[]), 0) = 0 OR county = ANY($1)) AND ($2 = '' OR batch_id = $2)
		  AND (coalesce(cardinality($3::text[]), 0) = 0 OR state = ANY($3)) AND ($4 = '' OR uscc = $4) AND state <> 'pending'
		  AND (county, batch_id, uscc) > ($5, $6, $7)
		ORDER BY county, batch_id, uscc LIMIT $8`, f.Counties, f.BatchID, states, f.USCC, after.County, after.Batch, after.USCC, f.Limit+1)
	if err != nil {
		return nil, "", fail(err, "list items")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReceivedItem, error) {
		var (
			it    ReceivedItem
			state string
			rej   []byte
		)
		err := row.Scan(&it.County, &it.BatchID, &it.USCC, &it.PolicyYear, &it.Name, &it.RefundFen, &it.RecomputedRefundFen, &state, &rej,
			&it.ConflictID, &it.RoundID, &it.InstructionID, &it.LastSequence, &it.UpdatedAt, &it.Encoded)
		if err != nil {
			return ReceivedItem{}, err
		}
		it.State, it.UpdatedAt = ItemState(state), it.UpdatedAt.UTC()
		it.Rejections, err = parseRejections(rej)
		return it, err
	})
	if err != nil {
		return nil, "", fail(err, "list items")
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		after.County, after.Batch, after.USCC = last.County, last.BatchID, last.USCC
		next = formatToken(after)
	}
	return out, next, nil
}

// Party is one county's item in a conflict, with what the city holds of it.
type Party struct {
	County     string
	BatchID    string
	Name       string
	RefundFen  int64
	ReceivedAt time.Time
}

// ConflictView is a cross-county conflict with its parties' items.
type ConflictView struct {
	Conflict
	Items []Party // in order of receipt
}

// ConflictFilter selects conflicts for ListConflicts.
type ConflictFilter struct {
	Open     *bool    // nil: all; else open or resolved only
	Counties []string // conflicts involving one of these; empty: all
	Limit    int
	After    string
}

// ListConflicts returns up to f.Limit conflicts, oldest first, and the next
// page's token ("" on the last page).
func (s *Store) ListConflicts(ctx context.Context, f ConflictFilter) ([]ConflictView, string, error) {
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
	state := ""
	if f.Open != nil {
		state = map[bool]string{true: "open", false: "resolved"}[*f.Open]
	}
	var out []ConflictView
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT c.id FROM conflict c WHERE ($1 = '' OR c.state = $1)
			  AND (coalesce(cardinality($2::text[]), 0) = 0 OR EXISTS (SELECT 1 FROM conflict_party p WHERE p.conflict_id = c.id AND p.county = ANY($2)))
			  AND ($3::timestamptz IS NULL OR (c.created_at, c.id) > ($3, $4))
			ORDER BY c.created_at, c.id LIMIT $5`, state, f.Counties, at, after.ID, f.Limit+1)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range ids {
			c, err := conflictView(ctx, tx, id, false)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, "", fail(err, "list conflicts")
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		after.At, after.ID = out[len(out)-1].CreatedAt, out[len(out)-1].ID
		next = formatToken(after)
	}
	return out, next, nil
}

// GetConflictView returns conflict id with its parties' items, or
// fault.ErrNotFound.
func (s *Store) GetConflictView(ctx context.Context, id string) (ConflictView, error) {
	var c ConflictView
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var err error
		c, err = conflictView(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return ConflictView{}, fail(err, "get conflict %s", id)
	}
	return c, nil
}

func conflictView(ctx context.Context, tx pgx.Tx, id string, forUpdate bool) (ConflictView, error) {
	c := ConflictView{Conflict: Conflict{ID: id}}
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE"
	}
	var (
		state    string
		resolved *time.Time
	)
	err := tx.QueryRow(ctx, `SELECT policy_year, uscc, state, kept_county, kept_batch_id, reason, resolved_by, created_at, resolved_at
		FROM conflict WHERE id = $1`+lock, id).Scan(&c.PolicyYear, &c.USCC, &state, &c.KeptCounty, &c.KeptBatchID, &c.Reason, &c.ResolvedBy, &c.CreatedAt, &resolved)
	if errors.Is(err, pgx.ErrNoRows) {
		return ConflictView{}, fault.New(fault.ErrNotFound, "no conflict %s", id)
	}
	if err != nil {
		return ConflictView{}, err
	}
	c.Open, c.CreatedAt = state == "open", c.CreatedAt.UTC()
	if resolved != nil {
		c.ResolvedAt = resolved.UTC()
	}
	rows, err := tx.Query(ctx, `SELECT p.county, p.batch_id, p.added_at, i.name, i.refund_fen, b.received_at FROM conflict_party p
		JOIN received_batch b ON b.county = p.county AND b.id = p.batch_id
		JOIN received_item i ON i.county = p.county AND i.batch_id = p.batch_id AND i.uscc = p.uscc
		WHERE p.conflict_id = $1 ORDER BY b.received_at, p.county, p.batch_id`, id)
	if err != nil {
		return ConflictView{}, err
	}
	var (
		p  ConflictParty
		it Party
	)
	_, err = pgx.ForEachRow(rows, []any{&p.County, &p.BatchID, &p.AddedAt, &it.Name, &it.RefundFen, &it.ReceivedAt}, func() error {
		p.AddedAt, it.County, it.BatchID, it.ReceivedAt = p.AddedAt.UTC(), p.County, p.BatchID, it.ReceivedAt.UTC()
		c.Parties, c.Items = append(c.Parties, p), append(c.Items, it)
		return nil
	})
	return c, err
}

// ResolveConflict keeps the item of county keepCounty's batch keepBatch in
// conflict id: it goes back to received (and may enter a round) and the
// other parties' items are rejected as duplicates with the reason, each
// county hearing its decision through its feed. Resolving a resolved
// conflict the same way returns it as first resolved.
//
// Errors: fault.ErrInvalid (no reason; the kept item is not a party);
// fault.ErrNotFound; fault.ErrFailedPrecondition (resolved the other way).
// The change is audited under actor.
func (s *Store) ResolveConflict(ctx context.Context, actor access.Principal, id, keepCounty, keepBatch, reason string, now time.Time) (ConflictView, error) {
	if reason == "" {
		return ConflictView{}, fault.New(fault.ErrInvalid, "resolve conflict: a written reason is required (须填写理由)")
	}
	now = timestamp(now)
	var out ConflictView
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := conflictView(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !c.Open {
			if c.KeptCounty != keepCounty || c.KeptBatchID != keepBatch {
				return fault.New(fault.ErrFailedPrecondition, "conflict %s was resolved for county %s's batch %s by %s (已裁定)", id, c.KeptCounty, c.KeptBatchID, c.ResolvedBy)
			}
			out = c
			return nil
		}
		if !slices.ContainsFunc(c.Parties, func(p ConflictParty) bool { return p.County == keepCounty && p.BatchID == keepBatch }) {
			return fault.New(fault.ErrInvalid, "county %s's batch %s is not a party to conflict %s", keepCounty, keepBatch, id)
		}
		// The parties' items still frozen by the conflict.
		rows, err := tx.Query(ctx, `SELECT p.county, p.batch_id, i.recomputed_refund_fen FROM conflict_party p
			JOIN received_item i ON i.county = p.county AND i.batch_id = p.batch_id AND i.uscc = p.uscc
			WHERE p.conflict_id = $1 AND i.state = 'conflict' ORDER BY p.county, p.batch_id FOR UPDATE OF i`, id)
		if err != nil {
			return err
		}
		var ds []Decision
		d := Decision{USCC: c.USCC, ConflictID: id, OccurredAt: now}
		if _, err := pgx.ForEachRow(rows, []any{&d.County, &d.BatchID, &d.AmountFen}, func() error {
			x := d
			if x.County == keepCounty && x.BatchID == keepBatch {
				x.Kind = KindReceived
				x.Reason = fmt.Sprintf("跨县重复已裁定由本县发放：%s (conflict %s resolved for this county: %s)", reason, id, reason)
			} else {
				x.Kind = KindRejected
				x.Rejections = []Rejection{{Code: RejectDuplicate, Detail: fmt.Sprintf("跨县重复已裁定由县 %s 发放：%s (conflict %s resolved for county %s: %s)", keepCounty, reason, id, keepCounty, reason)}}
				x.Reason = rejectedReason(x.Rejections)
			}
			ds = append(ds, x)
			return nil
		}); err != nil {
			return err
		}
		if _, err := AppendDecisions(ctx, tx, ds); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE conflict SET state = 'resolved', kept_county = $2, kept_batch_id = $3, reason = $4, resolved_by = $5, resolved_at = $6
			WHERE id = $1`, id, keepCounty, keepBatch, reason, actorName(actor), now); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]any{"uscc": c.USCC, "kept_county": keepCounty, "kept_batch": keepBatch, "reason": reason, "decisions": len(ds)})
		if _, err := audit.Append(ctx, tx, audit.Entry{Domain: AuditDomain, At: now, Actor: actor, Action: "conflict.resolve", ObjectType: "conflict", ObjectID: id, Detail: string(detail)}); err != nil {
			return err
		}
		out, err = conflictView(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return ConflictView{}, fail(err, "resolve conflict %s", id)
	}
	return out, nil
}
