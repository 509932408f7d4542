package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// ScreeningFacts is what notifying and sealing read of a screening: the
// dataset it ran over, its as-of date and the policy parameters it used.
type ScreeningFacts struct {
	County      string
	ID          int64
	DatasetID   int64
	DatasetHash string // the dataset's content hash
	AsOf        civil.Date
	PolicyID    string
	Policy      refund.Params // as recorded with the screening
	RunBy       string
}

// loadScreeningFacts reads screening id of county, or fails with
// fault.ErrNotFound. lock, when not empty, is a locking clause for the
// screening row ("FOR SHARE").
func loadScreeningFacts(ctx context.Context, q querier, county string, id int64, lock string) (ScreeningFacts, error) {
	f := ScreeningFacts{County: county, ID: id}
	var (
		hash   *string
		asOf   pgtype.Date
		policy []byte
	)
	err := q.QueryRow(ctx, `SELECT s.dataset_id, d.content_hash, s.as_of, s.policy_id, s.policy::text, s.run_by
		FROM screening s JOIN dataset d ON d.county = s.county AND d.id = s.dataset_id
		WHERE s.county = $1 AND s.id = $2 `+lock, county, id).Scan(&f.DatasetID, &hash, &asOf, &f.PolicyID, &policy, &f.RunBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return ScreeningFacts{}, fault.New(fault.ErrNotFound, "no screening %d in county %s", id, county)
	}
	if err != nil {
		return ScreeningFacts{}, err
	}
	if hash != nil {
		f.DatasetHash = *hash
	}
	f.AsOf = civilDate(asOf)
	if f.Policy, err = refund.ParseParams(bytes.NewReader(policy)); err != nil {
		return ScreeningFacts{}, fmt.Errorf("screening %d: its recorded policy parameters: %w", id, err)
	}
	return f, nil
}

// NotificationState is the delivery state of one SMS (see the state machine
// in migrations/0004_notification.sql).
type NotificationState string

// Notification states.
const (
	NotificationQueued    NotificationState = "queued"    // in the outbox, due at NextAttemptAt
	NotificationSent      NotificationState = "sent"      // accepted by the gateway
	NotificationDelivered NotificationState = "delivered" // the gateway reported delivery
	NotificationFailed    NotificationState = "failed"    // refused for good, or attempts used up
	NotificationNoMobile  NotificationState = "no_mobile" // no mobile number: never sent
)

// Notification is one SMS to one unit for one screening.
type Notification struct {
	County           string
	ID               int64
	ScreeningID      int64
	USCC             string
	Name             string
	Mobile           string
	Text             string
	RefundFen        int64
	State            NotificationState
	Attempts         int
	NextAttemptAt    time.Time
	GatewayMessageID string
	LastError        string
	QueuedAt         time.Time
	SentAt           time.Time // zero until sent
	DeliveredAt      time.Time // zero until delivered
	Response         *Response // the enterprise's latest response (ListNotifications only)
}

// MessageID is the notification's id outside the node: in the RPCs and as
// the message id given to the SMS gateway, which deduplicates by it. It is
// unique across nodes because it leads with the county: "371502-N42".
func (n Notification) MessageID() string { return NotificationID(n.County, n.ID) }

// NotificationID formats the id of notification id of county.
func NotificationID(county string, id int64) string {
	return county + "-N" + strconv.FormatInt(id, 10)
}

// NoticeUnit is a unit to notify, as NotifyUnits gives it to the text
// function.
type NoticeUnit struct {
	USCC      string
	Name      string
	Mobile    string // trimmed; "" when the unit has none
	RefundFen int64
}

// NotifyCounts counts the units a QueueNotifications call selected: queued
// by it, notified by an earlier call, and without a mobile number (now or
// before). Their sum is the number of units selected, whatever was done
// before.
type NotifyCounts struct {
	Queued   int64
	Already  int64
	NoMobile int64
}

// QueueNotifications queues one SMS for each selected unit of screening
// screeningID of county that has none for that screening yet: every unit
// whose current decision is eligible, or the listed usccs (each of which
// must be a unit of the screening, fault.ErrNotFound, and eligible,
// fault.ErrFailedPrecondition). text writes each SMS. A unit without a
// mobile number gets a row in state no_mobile and nothing is sent. The rows
// are queued at at, due at once (by that clock and the database's), with
// one audit entry by by. A unit is never queued twice for a screening, even
// by concurrent calls. A screening not in county is fault.ErrNotFound.
func (s *Store) QueueNotifications(ctx context.Context, county string, screeningID int64, usccs []string, at time.Time, by access.Principal,
	text func(ScreeningFacts, NoticeUnit) (string, error)) (NotifyCounts, error) {
	var counts NotifyCounts
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		f, err := loadScreeningFacts(ctx, tx, county, screeningID, "")
		if err != nil {
			return err
		}
		listed := len(usccs) > 0
		type unit struct {
			NoticeUnit
			decision string
			notified bool
		}
		var units []unit
		rows, err := tx.Query(ctx, `SELECT r.uscc, r.name, btrim(r.mobile), r.decision, r.refund_fen,
				EXISTS (SELECT 1 FROM notification n WHERE n.county = r.county AND n.screening_id = r.screening_id AND n.uscc = r.uscc)
			FROM screening_result r
			WHERE r.county = $1 AND r.screening_id = $2 AND ($3 OR r.uscc = ANY($4)) AND (r.decision = 'eligible' OR NOT $3)
			ORDER BY r.uscc`, county, screeningID, !listed, usccs)
		if err != nil {
			return err
		}
		var u unit
		if _, err = pgx.ForEachRow(rows, []any{&u.USCC, &u.Name, &u.Mobile, &u.decision, &u.RefundFen, &u.notified}, func() error {
			units = append(units, u)
			return nil
		}); err != nil {
			return err
		}
		if listed {
			if err := checkListedUnits(usccs, len(units), func(i int) string { return units[i].USCC }, func(i int) string {
				if units[i].decision != "eligible" {
					return units[i].decision
				}
				return ""
			}); err != nil {
				return err
			}
		}

		var (
			keys, names, mobiles, texts, states []string
			refunds                             []int64
			selected                            = make([]string, 0, len(units))
		)
		for _, u := range units {
			selected = append(selected, u.USCC)
			if u.notified {
				continue
			}
			t, err := text(f, u.NoticeUnit)
			if err != nil {
				return fmt.Errorf("SMS text for %s: %w", u.USCC, err)
			}
			state := NotificationQueued
			if u.Mobile == "" {
				state = NotificationNoMobile
			}
			keys, names, mobiles, texts = append(keys, u.USCC), append(names, u.Name), append(mobiles, u.Mobile), append(texts, t)
			states, refunds = append(states, string(state)), append(refunds, u.RefundFen)
		}
		var newNoMobile int64
		if len(keys) > 0 {
			rows, err := tx.Query(ctx, `INSERT INTO notification (county, screening_id, uscc, name, mobile, text, refund_fen, state, next_attempt_at, queued_at)
				SELECT $1, $2, u.uscc, u.name, u.mobile, u.text, u.refund_fen, u.state, LEAST($9, now()), $9
				FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[]) AS u (uscc, name, mobile, text, refund_fen, state)
				ON CONFLICT (county, screening_id, uscc) DO NOTHING
				RETURNING state`, county, screeningID, keys, names, mobiles, texts, refunds, states, at)
			if err != nil {
				return err
			}
			var st NotificationState
			if _, err := pgx.ForEachRow(rows, []any{&st}, func() error {
				if st == NotificationQueued {
					counts.Queued++
				} else {
					newNoMobile++
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM notification
			WHERE county = $1 AND screening_id = $2 AND uscc = ANY($3) AND state = 'no_mobile'`,
			county, screeningID, selected).Scan(&counts.NoMobile); err != nil {
			return err
		}
		counts.Already = int64(len(selected)) - counts.Queued - counts.NoMobile
		if counts.Queued+newNoMobile == 0 {
			return nil
		}
		_, err = audit.Append(ctx, tx, audit.Entry{
			Domain: county, At: at, Actor: by, Action: "notification.queue",
			ObjectType: "screening", ObjectID: strconv.FormatInt(screeningID, 10),
			Detail: fmt.Sprintf("queued %d SMS; %d unit(s) without a mobile number", counts.Queued, newNoMobile),
		})
		return err
	})
	if err != nil {
		return NotifyCounts{}, fail(err, "notify units of screening %d of county %s", screeningID, county)
	}
	return counts, nil
}

// checkListedUnits checks the n units found for the listed usccs: every
// listed code must be among them (fault.ErrNotFound naming the missing
// ones), and refuse(i), when it says why unit i may not be taken, makes a
// fault.ErrFailedPrecondition naming every such unit.
func checkListedUnits(usccs []string, n int, key func(int) string, refuse func(int) string) error {
	found := make(map[string]bool, n)
	var refused []string
	for i := range n {
		found[key(i)] = true
		if why := refuse(i); why != "" {
			refused = append(refused, key(i)+" ("+why+")")
		}
	}
	var missing []string
	for _, u := range usccs {
		if !found[u] && !slices.Contains(missing, u) {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		return fault.New(fault.ErrNotFound, "not units of the screening: %s", strings.Join(missing, ", "))
	}
	if len(refused) > 0 {
		return fault.New(fault.ErrFailedPrecondition, "may not be taken: %s", strings.Join(refused, ", "))
	}
	return nil
}

const notificationColumns = `n.county, n.id, n.screening_id, n.uscc, n.name, n.mobile, n.text, n.refund_fen, n.state, n.attempts,
	n.next_attempt_at, n.gateway_message_id, n.last_error, n.queued_at, n.sent_at, n.delivered_at`

// notificationDest returns the scan destinations of notificationColumns and
// a function that finishes n after a scan.
func notificationDest(n *Notification) ([]any, func()) {
	var sent, delivered *time.Time
	return []any{&n.County, &n.ID, &n.ScreeningID, &n.USCC, &n.Name, &n.Mobile, &n.Text, &n.RefundFen, &n.State, &n.Attempts,
			&n.NextAttemptAt, &n.GatewayMessageID, &n.LastError, &n.QueuedAt, &sent, &delivered}, func() {
			n.SentAt, n.DeliveredAt = time.Time{}, time.Time{}
			if sent != nil {
				n.SentAt = *sent
			}
			if delivered != nil {
				n.DeliveredAt = *delivered
			}
		}
}

// ClaimNotifications claims up to limit queued notifications of every
// county that are due at now, oldest due first, skipping rows another
// sender holds (FOR UPDATE SKIP LOCKED). Each claimed row has its attempt
// counted and is leased: it is not due again before now+lease, so no other
// sender takes it while this one sends; the sender records the outcome with
// RecordNotificationSent or RecordNotificationFailure. A due row that has
// already used maxAttempts (its sender died after the last claim) is marked
// failed instead of being returned.
func (s *Store) ClaimNotifications(ctx context.Context, now time.Time, limit int, lease time.Duration, maxAttempts int) ([]Notification, error) {
	if limit <= 0 || maxAttempts <= 0 || lease <= 0 {
		return nil, fault.New(fault.ErrInvalid, "claim notifications: limit, lease and maxAttempts must be positive")
	}
	var out []Notification
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+notificationColumns+` FROM notification n
			WHERE n.state = 'queued' AND n.next_attempt_at <= $1
			ORDER BY n.next_attempt_at, n.county, n.id LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
		if err != nil {
			return err
		}
		var n Notification
		dest, finish := notificationDest(&n)
		var exhausted []Notification
		if _, err := pgx.ForEachRow(rows, dest, func() error {
			finish()
			if n.Attempts >= maxAttempts {
				exhausted = append(exhausted, n)
			} else {
				out = append(out, n)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, n := range exhausted {
			if err := failNotification(ctx, tx, n.County, n.ID, fmt.Sprintf("gave up after %d attempts; the outcome of the last one is unknown (放弃发送)", n.Attempts), now); err != nil {
				return err
			}
		}
		if len(out) == 0 {
			return nil
		}
		counties, ids := make([]string, len(out)), make([]int64, len(out))
		for i := range out {
			out[i].Attempts++
			out[i].NextAttemptAt = now.Add(lease)
			counties[i], ids[i] = out[i].County, out[i].ID
		}
		_, err = tx.Exec(ctx, `UPDATE notification n SET attempts = n.attempts + 1, next_attempt_at = $3
			FROM unnest($1::text[], $2::bigint[]) AS c (county, id)
			WHERE n.county = c.county AND n.id = c.id`, counties, ids, now.Add(lease))
		return err
	})
	if err != nil {
		return nil, fail(err, "claim notifications")
	}
	return out, nil
}

// senderActor is who the audit log names for the sender's changes.
var senderActor = access.System("sms-sender")

// RecordNotificationSent records that the gateway accepted notification id
// of county with gatewayMessageID, at at. Only a queued notification (or one
// given up on, whose late success is the truth) becomes sent; recording a
// sent one again changes nothing. A notification not in county is
// fault.ErrNotFound.
func (s *Store) RecordNotificationSent(ctx context.Context, county string, id int64, gatewayMessageID string, at time.Time) error {
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		var state NotificationState
		err := tx.QueryRow(ctx, `SELECT state FROM notification WHERE county = $1 AND id = $2 FOR UPDATE`, county, id).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no notification %s", NotificationID(county, id))
		}
		if err != nil {
			return err
		}
		if state != NotificationQueued && state != NotificationFailed {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE notification SET state = 'sent', gateway_message_id = $3, sent_at = $4, last_error = ''
			WHERE county = $1 AND id = $2`, county, id, gatewayMessageID, at); err != nil {
			return err
		}
		_, err = audit.Append(ctx, tx, audit.Entry{
			Domain: county, At: at, Actor: senderActor, Action: "notification.sent",
			ObjectType: "notification", ObjectID: NotificationID(county, id), Detail: "gateway message id " + gatewayMessageID,
		})
		return err
	})
	if err != nil {
		return fail(err, "record notification %s sent", NotificationID(county, id))
	}
	return nil
}

// RecordNotificationFailure records a failed attempt to send notification
// id of county, with the gateway's reason. With a zero retryAt the sender
// gives up: the notification becomes failed. Otherwise it stays queued and
// is due again at retryAt. A notification that is no longer queued is left
// as it is.
func (s *Store) RecordNotificationFailure(ctx context.Context, county string, id int64, reason string, retryAt, at time.Time) error {
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if retryAt.IsZero() {
			return failNotification(ctx, tx, county, id, reason, at)
		}
		_, err := tx.Exec(ctx, `UPDATE notification SET last_error = $3, next_attempt_at = $4
			WHERE county = $1 AND id = $2 AND state = 'queued'`, county, id, reason, retryAt)
		return err
	})
	if err != nil {
		return fail(err, "record failure of notification %s", NotificationID(county, id))
	}
	return nil
}

// failNotification moves a queued notification to failed, with an audit
// entry.
func failNotification(ctx context.Context, tx pgx.Tx, county string, id int64, reason string, at time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE notification SET state = 'failed', last_error = $3
		WHERE county = $1 AND id = $2 AND state = 'queued'`, county, id, reason)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	_, err = audit.Append(ctx, tx, audit.Entry{
		Domain: county, At: at, Actor: senderActor, Action: "notification.failed",
		ObjectType: "notification", ObjectID: NotificationID(county, id), Detail: reason,
	})
	return err
}

// NotificationFilter selects notifications of a county for
// ListNotifications.
type NotificationFilter struct {
	ScreeningID int64               // 0: every screening
	States      []NotificationState // empty: every state
	USCC        string              // "": every unit
	// After is the last notification of the previous page (its USCC and
	// ID); zero for the first page.
	AfterUSCC string
	AfterID   int64
	Limit     int // at least 1
}

// ListNotifications returns the notifications of county that f selects,
// ordered by USCC and then id, each with the enterprise's latest response
// to it (by screening and unit).
func (s *Store) ListNotifications(ctx context.Context, county string, f NotificationFilter) ([]Notification, error) {
	if f.Limit <= 0 {
		return nil, fault.New(fault.ErrInvalid, "list notifications: the limit must be positive")
	}
	states := make([]string, len(f.States))
	for i, st := range f.States {
		states[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+notificationColumns+`, r.id IS NOT NULL, `+responseColumns+`
		FROM notification n
		LEFT JOIN LATERAL (SELECT * FROM enterprise_response e
			WHERE e.county = n.county AND e.screening_id = n.screening_id AND e.uscc = n.uscc
			ORDER BY e.id DESC LIMIT 1) r ON true
		WHERE n.county = $1 AND ($2 = 0 OR n.screening_id = $2) AND (cardinality($3::text[]) = 0 OR n.state = ANY($3))
			AND ($4 = '' OR n.uscc = $4) AND (n.uscc, n.id) > ($5, $6)
		ORDER BY n.uscc, n.id LIMIT $7`, county, f.ScreeningID, states, f.USCC, f.AfterUSCC, f.AfterID, f.Limit)
	if err != nil {
		return nil, fail(err, "list notifications of county %s", county)
	}
	var (
		out  []Notification
		n    Notification
		r    nullableResponse
		has  bool
		dest []any
	)
	nd, finish := notificationDest(&n)
	dest = append(append(nd, &has), r.dest()...)
	_, err = pgx.ForEachRow(rows, dest, func() error {
		finish()
		n.Response = nil
		if has {
			resp := r.response()
			n.Response = &resp
		}
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, fail(err, "list notifications of county %s", county)
	}
	return out, nil
}

// ResponseKind is what an enterprise answered.
type ResponseKind string

// Response kinds.
const (
	ResponseConfirmed ResponseKind = "confirmed" // 确认
	ResponseObjected  ResponseKind = "objected"  // 异议
)

// ObjectionState is the state of an objection; "" for a confirmation.
type ObjectionState string

// Objection states.
const (
	ObjectionOpen      ObjectionState = "open"      // the unit is kept out of batches
	ObjectionUpheld    ObjectionState = "upheld"    // accepted: the unit stays out of this screening's batches
	ObjectionDismissed ObjectionState = "dismissed" // the unit may be batched
)

// Response channels, as stored; "" is unspecified.
var responseChannels = []string{"", "sms", "phone", "portal", "counter", "other"}

// Response is one recorded answer of an enterprise.
type Response struct {
	County           string
	ID               int64
	ScreeningID      int64
	USCC             string
	Kind             ResponseKind
	Text             string
	Channel          string // "", "sms", "phone", "portal", "counter" or "other"
	ReceivedAt       time.Time
	RecordedBy       string
	RecordedAt       time.Time
	Objection        ObjectionState // "" for a confirmation
	ResolutionReason string
	ResolvedBy       string
	ResolvedAt       time.Time // zero until resolved
}

// ResponseID is the response's id in the RPCs: "371502-R7".
func (r Response) ResponseID() string { return ResponseID(r.County, r.ID) }

// ResponseID formats the id of response id of county.
func ResponseID(county string, id int64) string {
	return county + "-R" + strconv.FormatInt(id, 10)
}

const responseColumns = `r.county, r.id, r.screening_id, r.uscc, r.kind, r.text, r.channel, r.received_at, r.recorded_by, r.recorded_at,
	r.objection_state, r.resolution_reason, r.resolved_by, r.resolved_at`

// nullableResponse scans responseColumns, all of which may be NULL (from an
// outer join).
type nullableResponse struct {
	county, uscc, kind, text, channel, recordedBy, objection, reason, resolvedBy pgtype.Text
	id, screeningID                                                              pgtype.Int8
	receivedAt, recordedAt, resolvedAt                                           pgtype.Timestamptz
}

func (r *nullableResponse) dest() []any {
	return []any{&r.county, &r.id, &r.screeningID, &r.uscc, &r.kind, &r.text, &r.channel, &r.receivedAt, &r.recordedBy, &r.recordedAt,
		&r.objection, &r.reason, &r.resolvedBy, &r.resolvedAt}
}

func (r *nullableResponse) response() Response {
	return Response{
		County: r.county.String, ID: r.id.Int64, ScreeningID: r.screeningID.Int64, USCC: r.uscc.String,
		Kind: ResponseKind(r.kind.String), Text: r.text.String, Channel: r.channel.String,
		ReceivedAt: r.receivedAt.Time, RecordedBy: r.recordedBy.String, RecordedAt: r.recordedAt.Time,
		Objection: ObjectionState(r.objection.String), ResolutionReason: r.reason.String, ResolvedBy: r.resolvedBy.String,
		ResolvedAt: r.resolvedAt.Time, // zero when NULL
	}
}

func scanResponse(row pgx.Row) (Response, error) {
	var r nullableResponse
	if err := row.Scan(r.dest()...); err != nil {
		return Response{}, err
	}
	return r.response(), nil
}

// NewResponse is an answer to record.
type NewResponse struct {
	ScreeningID int64
	USCC        string
	Kind        ResponseKind
	Text        string
	Channel     string
	ReceivedAt  time.Time // when the enterprise answered
	// IdempotencyKey identifies the request; RequestSHA256 is a digest of
	// what it asks, so that a key used for another request is detected.
	IdempotencyKey string
	RequestSHA256  [32]byte
}

// sealLockKey is the SQL key of the transaction-level advisory lock that
// serializes sealing batches in a county ($1). Recording an objection takes
// it shared, so that a unit is never objected to and sealed at once: a
// seal sees every objection committed before it, and an objection sees
// every batch sealed before it.
const sealLockKey = `hashtextextended('wengang-batch:' || $1, 0)`

// RecordResponse records r for the unit r.USCC of screening r.ScreeningID
// of county, by by at at. A confirmation is recorded as it is; an objection
// opens, and fails with fault.ErrFailedPrecondition when the unit is
// already in a live batch of the policy year (objections then go to the
// city's publicity). A repeat of the idempotency key returns the response
// first recorded under it, unless it asked for something else
// (fault.ErrConflict). A screening or unit not in county is
// fault.ErrNotFound; a kind or channel not known is fault.ErrInvalid.
func (s *Store) RecordResponse(ctx context.Context, county string, r NewResponse, by access.Principal, at time.Time) (Response, error) {
	if (r.Kind != ResponseConfirmed && r.Kind != ResponseObjected) || !slices.Contains(responseChannels, r.Channel) || r.IdempotencyKey == "" {
		return Response{}, fault.New(fault.ErrInvalid, "record response: bad kind %q, channel %q or no idempotency key", r.Kind, r.Channel)
	}
	var out Response
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		if done, ok, err := responseByKey(ctx, tx, county, r); ok || err != nil {
			out = done
			return err
		}
		if r.Kind == ResponseObjected {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(`+sealLockKey+`)`, county); err != nil {
				return err
			}
		}
		f, err := loadScreeningFacts(ctx, tx, county, r.ScreeningID, "")
		if err != nil {
			return err
		}
		var liveBatch *string
		err = tx.QueryRow(ctx, `SELECT (SELECT i.batch_id FROM batch_item i
				WHERE i.county = r.county AND i.policy_year = $3 AND i.live
					AND i.uscc = coalesce(nullif(r.corrected_uscc, ''), r.uscc))
			FROM screening_result r WHERE r.county = $1 AND r.screening_id = $2 AND r.uscc = $4`,
			county, r.ScreeningID, f.Policy.PolicyYear, r.USCC).Scan(&liveBatch)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "%s is not a unit of screening %d", r.USCC, r.ScreeningID)
		}
		if err != nil {
			return err
		}
		var objection *string
		if r.Kind == ResponseObjected {
			if liveBatch != nil {
				return fault.New(fault.ErrFailedPrecondition,
					"%s is already in batch %s: objections now go to the city's publicity (已上报，请在公示期内向市局提出异议)", r.USCC, *liveBatch)
			}
			open := string(ObjectionOpen)
			objection = &open
		}
		row := tx.QueryRow(ctx, `INSERT INTO enterprise_response AS r (county, screening_id, uscc, kind, text, channel, received_at,
				recorded_by, recorded_at, objection_state, idempotency_key, request_sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (county, idempotency_key) DO NOTHING
			RETURNING `+responseColumns,
			county, r.ScreeningID, r.USCC, r.Kind, r.Text, r.Channel, r.ReceivedAt, by.Subject, at, objection, r.IdempotencyKey, r.RequestSHA256[:])
		out, err = scanResponse(row)
		if errors.Is(err, pgx.ErrNoRows) { // a concurrent request with the key won
			done, _, err := responseByKey(ctx, tx, county, r)
			out = done
			return err
		}
		if err != nil {
			return err
		}
		action, detail := "response.confirm", "confirmed via "+channelName(r.Channel)
		if r.Kind == ResponseObjected {
			action, detail = "objection.open", "objected via "+channelName(r.Channel)+": "+r.Text
		}
		_, err = audit.Append(ctx, tx, audit.Entry{
			Domain: county, At: at, Actor: by, Action: action,
			ObjectType: "unit", ObjectID: strconv.FormatInt(r.ScreeningID, 10) + "/" + r.USCC, Detail: detail + " (" + out.ResponseID() + ")",
		})
		return err
	})
	if err != nil {
		return Response{}, fail(err, "record response of %s in county %s", r.USCC, county)
	}
	return out, nil
}

func channelName(c string) string {
	if c == "" {
		return "unspecified channel"
	}
	return c
}

// responseByKey returns the response recorded under r's idempotency key
// and true, false when there is none, or fault.ErrConflict when the key
// was used for another request.
func responseByKey(ctx context.Context, tx pgx.Tx, county string, r NewResponse) (Response, bool, error) {
	var sum []byte
	var got nullableResponse
	err := tx.QueryRow(ctx, `SELECT r.request_sha256, `+responseColumns+` FROM enterprise_response r
		WHERE r.county = $1 AND r.idempotency_key = $2`, county, r.IdempotencyKey).Scan(append([]any{&sum}, got.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, err
	}
	if !bytes.Equal(sum, r.RequestSHA256[:]) {
		return Response{}, false, fault.New(fault.ErrConflict, "the idempotency key %q was used for another request", r.IdempotencyKey)
	}
	return got.response(), true, nil
}

// ResolveObjection settles objection id of county as resolution (upheld or
// dismissed) with reason, by by at at, and returns it. Resolving it again
// the same way returns it as first resolved. Errors: fault.ErrNotFound;
// fault.ErrInvalid for another resolution or no reason;
// fault.ErrFailedPrecondition when the response is a confirmation or the
// objection was resolved the other way.
func (s *Store) ResolveObjection(ctx context.Context, county string, id int64, resolution ObjectionState, reason string, by access.Principal, at time.Time) (Response, error) {
	if resolution != ObjectionUpheld && resolution != ObjectionDismissed {
		return Response{}, fault.New(fault.ErrInvalid, "resolution: want upheld or dismissed, not %q", resolution)
	}
	if strings.TrimSpace(reason) == "" {
		return Response{}, fault.New(fault.ErrInvalid, "reason: required")
	}
	var out Response
	err := pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		r, err := scanResponse(tx.QueryRow(ctx, `SELECT `+responseColumns+` FROM enterprise_response r
			WHERE r.county = $1 AND r.id = $2 FOR UPDATE`, county, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no response %s", ResponseID(county, id))
		}
		if err != nil {
			return err
		}
		switch r.Objection {
		case "":
			return fault.New(fault.ErrFailedPrecondition, "%s is a confirmation, not an objection", r.ResponseID())
		case resolution:
			out = r
			return nil
		case ObjectionOpen:
		default:
			return fault.New(fault.ErrFailedPrecondition, "objection %s was already resolved as %s", r.ResponseID(), r.Objection)
		}
		out, err = scanResponse(tx.QueryRow(ctx, `UPDATE enterprise_response r SET objection_state = $3, resolution_reason = $4,
				resolved_by = $5, resolved_at = $6
			WHERE r.county = $1 AND r.id = $2 RETURNING `+responseColumns, county, id, resolution, reason, by.Subject, at))
		if err != nil {
			return err
		}
		action := "objection.uphold"
		if resolution == ObjectionDismissed {
			action = "objection.dismiss"
		}
		_, err = audit.Append(ctx, tx, audit.Entry{
			Domain: county, At: at, Actor: by, Action: action,
			ObjectType: "unit", ObjectID: strconv.FormatInt(r.ScreeningID, 10) + "/" + r.USCC,
			Detail: r.ResponseID() + ": " + reason,
		})
		return err
	})
	if err != nil {
		return Response{}, fail(err, "resolve objection %s", ResponseID(county, id))
	}
	return out, nil
}

// ResponseFilter selects responses of a county for ListResponses.
type ResponseFilter struct {
	ScreeningID int64          // 0: every screening
	Kind        ResponseKind   // "": both
	Objection   ObjectionState // "": any
	BeforeID    int64          // the last id of the previous page; 0 for the first
	Limit       int            // at least 1
}

// ListResponses returns the responses of county that f selects, newest
// first.
func (s *Store) ListResponses(ctx context.Context, county string, f ResponseFilter) ([]Response, error) {
	if f.Limit <= 0 {
		return nil, fault.New(fault.ErrInvalid, "list responses: the limit must be positive")
	}
	rows, err := s.pool.Query(ctx, `SELECT `+responseColumns+` FROM enterprise_response r
		WHERE r.county = $1 AND ($2 = 0 OR r.screening_id = $2) AND ($3 = '' OR r.kind = $3)
			AND ($4 = '' OR r.objection_state = $4) AND ($5 = 0 OR r.id < $5)
		ORDER BY r.id DESC LIMIT $6`, county, f.ScreeningID, string(f.Kind), string(f.Objection), f.BeforeID, f.Limit)
	if err != nil {
		return nil, fail(err, "list responses of county %s", county)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Response, error) { return scanResponse(row) })
	if err != nil {
		return nil, fail(err, "list responses of county %s", county)
	}
	return out, nil
}
