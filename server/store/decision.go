package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/civil"
)

// Decision is one entry of the decisions feed: something the city decided
// about one item of a county's batch (wengang.v1.CityDecision).
type Decision struct {
	County         string
	Seq            int64 // the position in its county's feed, 1, 2, 3…; set by AppendDecisions
	Kind           DecisionKind
	BatchID        string
	USCC           string
	Reason         string      // words for the clerk
	Rejections     []Rejection // for KindRejected
	ConflictID     string      // for KindConflict
	RoundID        string      // for KindInPublicity and later
	PublicityStart civil.Date  // for KindInPublicity
	PublicityEnd   civil.Date
	AmountFen      int64  // the amount the city holds for the item
	InstructionID  string // for KindReleased, KindPaid, KindReturned, KindReissued
	BankReference  string // for KindPaid
	SettledOn      civil.Date
	OccurredAt     time.Time
}

// transitions is the item state machine of wengang.v1.ItemState: the state
// each decision kind moves an item to, and the states it may move it from.
// ItemInRound has no decision (the county hears of the round when it is
// approved); the city's round code sets it directly.
var transitions = map[DecisionKind]struct {
	to   ItemState
	from []ItemState
}{
	KindReceived:           {ItemReceived, []ItemState{ItemPending, ItemConflict}},
	KindRejected:           {ItemRejected, []ItemState{ItemPending, ItemReceived, ItemConflict, ItemInRound}},
	KindConflict:           {ItemConflict, []ItemState{ItemPending, ItemReceived}},
	KindInPublicity:        {ItemInPublicity, []ItemState{ItemReceived, ItemInRound}},
	KindObjected:           {ItemObjected, []ItemState{ItemInPublicity}},
	KindObjectionDismissed: {ItemInPublicity, []ItemState{ItemObjected}},
	KindRemoved:            {ItemRemoved, []ItemState{ItemInRound, ItemInPublicity, ItemObjected}},
	KindReleased:           {ItemReleased, []ItemState{ItemInPublicity}},
	KindPaid:               {ItemPaid, []ItemState{ItemReleased}},
	KindReturned:           {ItemReturned, []ItemState{ItemReleased, ItemPaid}}, // a bank may return a payment after reporting it paid (退票)
	KindReissued:           {ItemReleased, []ItemState{ItemReturned}},
}

// Transition returns the state that a decision of kind k moves an item in
// state from to. It is the one place the item state machine is enforced: a
// decision the state does not allow is fault.ErrFailedPrecondition, an
// unknown kind fault.ErrInvalid.
func Transition(from ItemState, k DecisionKind) (ItemState, error) {
	t, ok := transitions[k]
	if !ok {
		return "", fault.New(fault.ErrInvalid, "unknown decision kind %q", k)
	}
	if !slices.Contains(t.from, from) {
		return "", fault.New(fault.ErrFailedPrecondition, "an item in state %s cannot be %s (状态不允许)", from, k)
	}
	return t.to, nil
}

// StateAfter returns the state a decision of kind k leads to ("" for an
// unknown kind).
func StateAfter(k DecisionKind) ItemState { return transitions[k].to }

type itemKey struct{ county, batchID, uscc string }

// itemUpdate is what the decisions of one append do to one item.
type itemUpdate struct {
	state                              ItemState
	seq                                int64
	at                                 time.Time
	setRejections                      bool
	rejections                         []byte
	conflictID, roundID, instructionID string
}

// AppendDecision appends one decision within tx; see AppendDecisions.
func AppendDecision(ctx context.Context, tx pgx.Tx, d Decision) (Decision, error) {
	ds, err := AppendDecisions(ctx, tx, []Decision{d})
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// AppendDecisions appends decisions to their counties' feeds within tx, in
// the order given, and moves each item they are about as Transition says
// (with its rejections, conflict, round and instruction ids when the
// decision carries them). It returns the decisions with their sequences.
//
// Sequences are gapless per county: each county's counter row is locked
// (in county order, so that appends do not deadlock) until tx ends, so a
// decision is visible only once every lower one of its county is, and a
// rolled-back append leaves no hole. The caller writes the audit entry of
// the action that caused the decisions in the same tx.
//
// Errors: fault.ErrInvalid (a decision without county, batch, USCC, kind
// or time); fault.ErrNotFound (no such item); fault.ErrFailedPrecondition
// (a transition the item's state does not allow). Nothing is written then.
func AppendDecisions(ctx context.Context, tx pgx.Tx, ds []Decision) ([]Decision, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	out := slices.Clone(ds)
	var counties, batches, usccs []string
	seen := make(map[itemKey]bool)
	perCounty := make(map[string]int64)
	for i := range out {
		d := &out[i]
		if d.County == "" || d.BatchID == "" || d.USCC == "" || d.OccurredAt.IsZero() {
			return nil, fault.New(fault.ErrInvalid, "append decision: county, batch, USCC and time are required")
		}
		if _, ok := transitions[d.Kind]; !ok {
			return nil, fault.New(fault.ErrInvalid, "append decision: unknown kind %q", d.Kind)
		}
		d.OccurredAt = timestamp(d.OccurredAt)
		perCounty[d.County]++
		k := itemKey{d.County, d.BatchID, d.USCC}
		if !seen[k] {
			seen[k] = true
			counties, batches, usccs = append(counties, k.county), append(batches, k.batchID), append(usccs, k.uscc)
		}
	}

	// The items, locked, with their states.
	rows, err := tx.Query(ctx, `SELECT i.county, i.batch_id, i.uscc, i.state FROM received_item i
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(county, batch_id, uscc)
		  ON i.county = k.county AND i.batch_id = k.batch_id AND i.uscc = k.uscc
		ORDER BY i.county, i.batch_id, i.uscc FOR UPDATE OF i`, counties, batches, usccs)
	if err != nil {
		return nil, fail(err, "append decisions: read items")
	}
	states := make(map[itemKey]ItemState, len(seen))
	var (
		k  itemKey
		st string
	)
	if _, err := pgx.ForEachRow(rows, []any{&k.county, &k.batchID, &k.uscc, &st}, func() error {
		states[k] = ItemState(st)
		return nil
	}); err != nil {
		return nil, fail(err, "append decisions: read items")
	}

	// Sequences, county by county in sorted order.
	next := make(map[string]int64, len(perCounty))
	for _, c := range slices.Sorted(maps.Keys(perCounty)) {
		var last int64
		err := tx.QueryRow(ctx, `INSERT INTO decision_counter (county, last_seq) VALUES ($1, $2)
			ON CONFLICT (county) DO UPDATE SET last_seq = decision_counter.last_seq + EXCLUDED.last_seq
			RETURNING last_seq`, c, perCounty[c]).Scan(&last)
		if err != nil {
			return nil, fail(err, "append decisions: sequence of county %s", c)
		}
		next[c] = last - perCounty[c] + 1
	}

	updates := make(map[itemKey]*itemUpdate, len(seen))
	for i := range out {
		d := &out[i]
		k := itemKey{d.County, d.BatchID, d.USCC}
		from, ok := states[k]
		if !ok {
			return nil, fault.New(fault.ErrNotFound, "append decision: no item %s of batch %s of county %s", d.USCC, d.BatchID, d.County)
		}
		to, err := Transition(from, d.Kind)
		if err != nil {
			return nil, fmt.Errorf("append decision on item %s of batch %s of county %s: %w", d.USCC, d.BatchID, d.County, err)
		}
		states[k] = to
		d.Seq = next[d.County]
		next[d.County]++
		u := updates[k]
		if u == nil {
			u = &itemUpdate{}
			updates[k] = u
		}
		u.state, u.seq, u.at = to, d.Seq, d.OccurredAt
		if d.Kind == KindRejected {
			u.setRejections, u.rejections = true, rejectionsJSON(d.Rejections)
		}
		if d.ConflictID != "" {
			u.conflictID = d.ConflictID
		}
		if d.RoundID != "" {
			u.roundID = d.RoundID
		}
		if d.InstructionID != "" {
			u.instructionID = d.InstructionID
		}
	}

	_, err = tx.CopyFrom(ctx, pgx.Identifier{"decision"}, []string{
		"county", "seq", "kind", "batch_id", "uscc", "reason", "rejections", "conflict_id", "round_id",
		"publicity_start", "publicity_end", "amount_fen", "instruction_id", "bank_reference", "settled_on", "occurred_at",
	}, pgx.CopyFromSlice(len(out), func(i int) ([]any, error) {
		d := &out[i]
		return []any{
			d.County, d.Seq, string(d.Kind), d.BatchID, d.USCC, d.Reason, string(rejectionsJSON(d.Rejections)), d.ConflictID, d.RoundID,
			dateValue(d.PublicityStart), dateValue(d.PublicityEnd), d.AmountFen, d.InstructionID, d.BankReference, dateValue(d.SettledOn), d.OccurredAt,
		}, nil
	}))
	if err != nil {
		return nil, fail(err, "append decisions: insert")
	}

	var (
		uCounty, uBatch, uUSCC, uState, uRej, uConflict, uRound, uInstr []string
		uSeq                                                            []int64
		uAt                                                             []time.Time
		uSetRej                                                         []bool
	)
	for k, u := range updates {
		uCounty, uBatch, uUSCC = append(uCounty, k.county), append(uBatch, k.batchID), append(uUSCC, k.uscc)
		uState, uSeq, uAt = append(uState, string(u.state)), append(uSeq, u.seq), append(uAt, u.at)
		uSetRej, uRej = append(uSetRej, u.setRejections), append(uRej, string(u.rejections))
		uConflict, uRound, uInstr = append(uConflict, u.conflictID), append(uRound, u.roundID), append(uInstr, u.instructionID)
	}
	_, err = tx.Exec(ctx, `UPDATE received_item i SET
			state = u.state, last_sequence = u.seq, updated_at = u.at,
			rejections = CASE WHEN u.set_rej THEN u.rej::jsonb ELSE i.rejections END,
			conflict_id = CASE WHEN u.conflict_id <> '' THEN u.conflict_id ELSE i.conflict_id END,
			round_id = CASE WHEN u.round_id <> '' THEN u.round_id ELSE i.round_id END,
			instruction_id = CASE WHEN u.instruction_id <> '' THEN u.instruction_id ELSE i.instruction_id END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::bool[], $8::text[], $9::text[], $10::text[], $11::text[])
			AS u(county, batch_id, uscc, state, seq, at, set_rej, rej, conflict_id, round_id, instruction_id)
		WHERE i.county = u.county AND i.batch_id = u.batch_id AND i.uscc = u.uscc`,
		uCounty, uBatch, uUSCC, uState, uSeq, uAt, uSetRej, uRej, uConflict, uRound, uInstr)
	if err != nil {
		return nil, fail(err, "append decisions: update items")
	}
	return out, nil
}

// MaxPull bounds the decisions one PullDecisions returns.
const MaxPull = 5000

// PullDecisions returns, oldest first, up to limit decisions of the given
// counties after the sequences in after (a county missing from after starts
// from the beginning), and whether more are ready now. Within a county the
// decisions come in sequence order without gaps.
//
// A sequence in after beyond its county's last decision is
// fault.ErrInvalid: the position was not issued by this database.
func (s *Store) PullDecisions(ctx context.Context, counties []string, after map[string]int64, limit int) ([]Decision, bool, error) {
	if limit <= 0 || limit > MaxPull {
		return nil, false, fault.New(fault.ErrInvalid, "pull decisions: limit %d not in 1..%d", limit, MaxPull)
	}
	if len(counties) == 0 {
		return nil, false, nil
	}
	afters := make([]int64, len(counties))
	for i, c := range counties {
		afters[i] = after[c]
	}
	var (
		out  []Decision
		more bool
	)
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		heads := make(map[string]int64, len(counties))
		rows, err := tx.Query(ctx, `SELECT county, last_seq FROM decision_counter WHERE county = ANY($1)`, counties)
		if err != nil {
			return err
		}
		var (
			c    string
			last int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&c, &last}, func() error { heads[c] = last; return nil }); err != nil {
			return err
		}
		for i, c := range counties {
			if afters[i] < 0 || afters[i] > heads[c] {
				return fault.New(fault.ErrInvalid, "cursor: position %d of county %s was not issued by this server (its feed ends at %d)", afters[i], c, heads[c])
			}
		}
		rows, err = tx.Query(ctx, `SELECT d.county, d.seq, d.kind, d.batch_id, d.uscc, d.reason, d.rejections, d.conflict_id, d.round_id,
				d.publicity_start, d.publicity_end, d.amount_fen, d.instruction_id, d.bank_reference, d.settled_on, d.occurred_at
			FROM decision d JOIN unnest($1::text[], $2::bigint[]) AS c(county, after) ON d.county = c.county AND d.seq > c.after
			ORDER BY d.id LIMIT $3`, counties, afters, limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanDecision)
		if err != nil {
			return err
		}
		if len(out) > limit {
			out, more = out[:limit], true
		}
		return nil
	})
	if err != nil {
		return nil, false, fail(err, "pull decisions")
	}
	return out, more, nil
}

func scanDecision(row pgx.CollectableRow) (Decision, error) {
	var (
		d                        Decision
		kind                     string
		rej                      []byte
		pubStart, pubEnd, settle pgtype.Date
	)
	err := row.Scan(&d.County, &d.Seq, &kind, &d.BatchID, &d.USCC, &d.Reason, &rej, &d.ConflictID, &d.RoundID,
		&pubStart, &pubEnd, &d.AmountFen, &d.InstructionID, &d.BankReference, &settle, &d.OccurredAt)
	if err != nil {
		return Decision{}, err
	}
	d.Kind = DecisionKind(kind)
	d.PublicityStart, d.PublicityEnd, d.SettledOn = civilDate(pubStart), civilDate(pubEnd), civilDate(settle)
	d.OccurredAt = d.OccurredAt.UTC()
	if d.Rejections, err = parseRejections(rej); err != nil {
		return Decision{}, err
	}
	return d, nil
}
