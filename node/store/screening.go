package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// Screening is one run of the refund rules over a sealed dataset, as
// stored: what it read, the parameters it used (their JSON), the SHA-256 of
// the results.csv it gave, who ran it, and its tallies.
type Screening struct {
	County         string
	ID             int64
	DatasetID      int64
	DatasetName    string
	DatasetHash    string
	AsOf           civil.Date
	PolicyID       string
	Policy         []byte // the refund.Params used, as JSON
	PolicyYear     int
	ResultsSHA256  [32]byte
	RunBy          string // subject of the clerk's token
	RunByName      string // the clerk's name
	RunAt          time.Time
	IdempotencyKey string
	Screened       Tally // as the rules decided
	Reviewed       Tally // after review
}

// Tally counts a screening's units by decision, with their refunds.
type Tally struct {
	Units int64
	Count [4]int64 // indexed by refund.Decision
	Fen   [4]int64
}

// Outcome is a unit's decision and what goes with it.
type Outcome struct {
	Decision  refund.Decision
	Reasons   refund.Reasons
	RefundFen int64
	Size      refund.Size    // SizeUnknown: none known
	Payee     refund.Account // Kind 0: none; the screened outcome keeps its Kind and AccountNo only
}

// Override is a reviewer's override of the rules' decision on a unit.
type Override string

// Overrides.
const (
	OverrideNone       Override = ""
	OverrideExcluded   Override = "excluded"   // 剔除: ineligible, refund 0
	OverrideReinstated Override = "reinstated" // 恢复: refusals set aside
)

// Result is one unit's row of a screening: the unit's facts, its outcome
// as screened (never changed) and its current outcome (after review).
type Result struct {
	USCC           string // as the units file has it: the key
	Name           string
	UnitCounty     string
	Industry       string
	Status         refund.Status
	HeadcountStart int32
	HeadcountEnd   int32
	Mobile         string
	MonthsPaid     int32
	BaseFen        int64
	Screened       Outcome
	Current        Outcome
	USCCVerified   bool   // a reviewer confirmed a code whose check character is wrong
	CorrectedUSCC  string // the right code, when the file's was mistyped
	Reviewed       bool
	Override       Override
	// BatchID is the live batch of the screening's policy year that holds
	// the unit, if any; read only.
	BatchID string
}

// NewScreening describes a screening to store with CreateScreening.
type NewScreening struct {
	County        string
	DatasetID     int64
	AsOf          civil.Date
	PolicyID      string
	Policy        []byte // JSON
	ResultsSHA256 [32]byte
	RunBy         string
	RunByName     string
	RunAt         time.Time
	Key           string // idempotency key, required
}

// ScreeningByKey returns the screening of county run with an idempotency
// key; found is false when there is none.
func (s *Store) ScreeningByKey(ctx context.Context, county, key string) (sc Screening, found bool, err error) {
	err = pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `SELECT id FROM screening WHERE county = $1 AND idempotency_key = $2`, county, key).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		sc, err = s.getScreening(ctx, tx, county, id)
		return err
	})
	if err != nil {
		return Screening{}, false, fail(err, "screening of county %s by key", county)
	}
	return sc, found, nil
}

// CreateScreening stores a screening and its results (one per unit, with
// CopyFrom; their current outcome is the screened one) in one transaction,
// with the audit entry that entry gives (Domain defaults to the county),
// and returns it. When ns.Key was used before, it stores nothing and
// returns that screening with replayed true: the caller compares it with
// its request. The dataset must be sealed (fault.ErrFailedPrecondition).
func (s *Store) CreateScreening(ctx context.Context, ns NewScreening, rows []Result, entry func(Screening) audit.Entry) (sc Screening, replayed bool, err error) {
	if ns.Key == "" {
		return Screening{}, false, fault.New(fault.ErrInvalid, "create screening: the idempotency key is required")
	}
	for attempt := 0; ; attempt++ {
		err = pg.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
			var id int64
			err := tx.QueryRow(ctx, `SELECT id FROM screening WHERE county = $1 AND idempotency_key = $2`, ns.County, ns.Key).Scan(&id)
			if err == nil {
				replayed = true
				sc, err = s.getScreening(ctx, tx, ns.County, id)
				return err
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			var state DatasetState
			err = tx.QueryRow(ctx, `SELECT state FROM dataset WHERE county = $1 AND id = $2 FOR SHARE`, ns.County, ns.DatasetID).Scan(&state)
			if errors.Is(err, pgx.ErrNoRows) {
				return errNoDataset
			}
			if err != nil {
				return err
			}
			if state != DatasetSealed {
				return fault.New(fault.ErrFailedPrecondition, "the dataset is not sealed")
			}
			asOf, err := dateValue(ns.AsOf, "as_of")
			if err != nil || asOf == nil {
				return fault.New(fault.ErrInvalid, "the as-of date %d is not a date", int32(ns.AsOf))
			}
			err = tx.QueryRow(ctx, `INSERT INTO screening (county, dataset_id, as_of, policy_id, policy, results_sha256, run_by, run_by_name, run_at, idempotency_key)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
				ns.County, ns.DatasetID, asOf, ns.PolicyID, string(ns.Policy), ns.ResultsSHA256[:], ns.RunBy, ns.RunByName, ns.RunAt, ns.Key).Scan(&id)
			if err != nil {
				return err
			}
			src := &resultSource{rows: rows, vals: make([]any, len(resultColumns))}
			src.vals[0], src.vals[1] = ns.County, id
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"screening_result"}, resultColumns, src)
			if err != nil {
				return copyError(err)
			}
			if n != int64(len(rows)) {
				return fmt.Errorf("copied %d results of %d", n, len(rows))
			}
			if sc, err = s.getScreening(ctx, tx, ns.County, id); err != nil {
				return err
			}
			e := entry(sc)
			if e.Domain == "" {
				e.Domain = ns.County
			}
			_, err = audit.Append(ctx, tx, e)
			return err
		})
		if attempt == 0 && isUniqueViolation(err, "screening_county_idempotency_key_key") {
			continue // the same key at the same time: answer with the winner's
		}
		if err != nil {
			return Screening{}, false, fail(err, "create screening of dataset %d of county %s", ns.DatasetID, ns.County)
		}
		return sc, replayed, nil
	}
}

var resultColumns = []string{"county", "screening_id",
	"uscc", "name", "unit_county", "industry", "status", "headcount_start", "headcount_end", "mobile", "months_paid", "base_fen",
	"screened_decision", "screened_reasons", "screened_refund_fen", "screened_size", "screened_payee_kind", "screened_payee_account_no",
	"decision", "reasons", "refund_fen", "size", "payee_kind", "payee_bank", "payee_bank_code", "payee_account_no", "payee_account_name",
	"uscc_verified", "corrected_uscc", "reviewed", "override"}

// resultSource feeds results to CopyFrom; vals[0] and vals[1] are the
// county and the screening id.
type resultSource struct {
	rows []Result
	vals []any
	i    int
}

func (s *resultSource) Next() bool {
	if s.i >= len(s.rows) {
		return false
	}
	s.i++
	return true
}

func (s *resultSource) Values() ([]any, error) {
	r := &s.rows[s.i-1]
	v := s.vals
	v[2], v[3], v[4], v[5], v[6] = r.USCC, r.Name, r.UnitCounty, r.Industry, r.Status.String()
	v[7], v[8], v[9], v[10], v[11] = r.HeadcountStart, r.HeadcountEnd, r.Mobile, r.MonthsPaid, r.BaseFen
	v[12], v[13], v[14] = r.Screened.Decision.String(), r.Screened.Reasons.String(), r.Screened.RefundFen
	v[15], v[16], v[17] = sizeValue(r.Screened.Size), kindValue(r.Screened.Payee.Kind), r.Screened.Payee.AccountNo
	c := &r.Current
	v[18], v[19], v[20], v[21] = c.Decision.String(), c.Reasons.String(), c.RefundFen, sizeValue(c.Size)
	v[22], v[23], v[24], v[25], v[26] = kindValue(c.Payee.Kind), c.Payee.Bank, c.Payee.BankCode, c.Payee.AccountNo, c.Payee.AccountName
	v[27], v[28], v[29], v[30] = r.USCCVerified, r.CorrectedUSCC, r.Reviewed, string(r.Override)
	return v, nil
}

func (s *resultSource) Err() error { return nil }

// sizeValue is a size column: NULL when unknown.
func sizeValue(sz refund.Size) any {
	if sz == refund.SizeUnknown {
		return nil
	}
	return sz.String()
}

// kindValue is an account kind column: NULL when there is no account.
func kindValue(k refund.AccountKind) any {
	if k == 0 {
		return nil
	}
	return k.String()
}

// GetScreening returns screening id of county with its tallies, or
// fault.ErrNotFound.
func (s *Store) GetScreening(ctx context.Context, county string, id int64) (Screening, error) {
	var sc Screening
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) (err error) {
		sc, err = s.getScreening(ctx, tx, county, id)
		return err
	})
	if err != nil {
		return Screening{}, fail(err, "get screening %d of county %s", id, county)
	}
	return sc, nil
}

// ScreeningPage selects one page of a county's screenings, newest first.
type ScreeningPage struct {
	DatasetID int64 // 0 for every dataset's
	BeforeID  int64 // only screenings older than this one; 0 for the first page
	Limit     int
}

// ListScreenings returns one page of the screenings of county, newest
// first, with their tallies.
func (s *Store) ListScreenings(ctx context.Context, county string, page ScreeningPage) ([]Screening, error) {
	var out []Screening
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+screeningColumns+` FROM screening s JOIN dataset d ON d.county = s.county AND d.id = s.dataset_id
			WHERE s.county = $1 AND ($2 = 0 OR s.dataset_id = $2) AND ($3 = 0 OR s.id < $3) ORDER BY s.id DESC LIMIT $4`,
			county, page.DatasetID, page.BeforeID, page.Limit)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectRows(rows, scanScreening); err != nil {
			return err
		}
		return s.attachTallies(ctx, tx, county, out)
	})
	if err != nil {
		return nil, fail(err, "list screenings of county %s", county)
	}
	return out, nil
}

const screeningColumns = `s.county, s.id, s.dataset_id, d.name, coalesce(d.content_hash, ''), s.as_of, s.policy_id, s.policy::text,
	coalesce((s.policy->>'policy_year')::int, 0), s.results_sha256, s.run_by, s.run_by_name, s.run_at, coalesce(s.idempotency_key, '')`

func scanScreening(row pgx.CollectableRow) (Screening, error) {
	var (
		sc     Screening
		asOf   pgtype.Date
		policy string
		sum    []byte
	)
	err := row.Scan(&sc.County, &sc.ID, &sc.DatasetID, &sc.DatasetName, &sc.DatasetHash, &asOf, &sc.PolicyID, &policy,
		&sc.PolicyYear, &sum, &sc.RunBy, &sc.RunByName, &sc.RunAt, &sc.IdempotencyKey)
	sc.AsOf = civilDate(asOf)
	sc.Policy = []byte(policy)
	copy(sc.ResultsSHA256[:], sum)
	return sc, err
}

var errNoScreening = fault.New(fault.ErrNotFound, "no such screening")

// getScreening reads screening id of county with its tallies.
func (s *Store) getScreening(ctx context.Context, q querier, county string, id int64) (Screening, error) {
	sc, err := s.screeningRow(ctx, q, county, id)
	if err != nil {
		return Screening{}, err
	}
	scs := []Screening{sc}
	if err := s.attachTallies(ctx, q, county, scs); err != nil {
		return Screening{}, err
	}
	return scs[0], nil
}

// screeningRow reads screening id of county without its tallies.
func (s *Store) screeningRow(ctx context.Context, q querier, county string, id int64) (Screening, error) {
	rows, err := q.Query(ctx, `SELECT `+screeningColumns+` FROM screening s JOIN dataset d ON d.county = s.county AND d.id = s.dataset_id
		WHERE s.county = $1 AND s.id = $2`, county, id)
	if err != nil {
		return Screening{}, err
	}
	scs, err := pgx.CollectRows(rows, scanScreening)
	if err != nil {
		return Screening{}, err
	}
	if len(scs) == 0 {
		return Screening{}, errNoScreening
	}
	return scs[0], nil
}

// attachTallies counts the results of each screening by decision, as
// screened and as reviewed.
func (s *Store) attachTallies(ctx context.Context, q querier, county string, scs []Screening) error {
	if len(scs) == 0 {
		return nil
	}
	ids := make([]int64, len(scs))
	at := make(map[int64]int, len(scs))
	for i, sc := range scs {
		ids[i] = sc.ID
		at[sc.ID] = i
	}
	for _, view := range []struct {
		decision, refund string
		tally            func(*Screening) *Tally
	}{
		{"screened_decision", "screened_refund_fen", func(sc *Screening) *Tally { return &sc.Screened }},
		{"decision", "refund_fen", func(sc *Screening) *Tally { return &sc.Reviewed }},
	} {
		rows, err := q.Query(ctx, `SELECT screening_id, `+view.decision+`, count(*), coalesce(sum(`+view.refund+`), 0)::bigint
			FROM screening_result WHERE county = $1 AND screening_id = ANY($2) GROUP BY 1, 2`, county, ids)
		if err != nil {
			return err
		}
		var (
			id       int64
			decision string
			n, fen   int64
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &decision, &n, &fen}, func() error {
			d, err := refund.ParseDecision(decision)
			if err != nil {
				return err
			}
			t := view.tally(&scs[at[id]])
			t.Units += n
			t.Count[d] += n
			t.Fen[d] += fen
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ResultFilter selects results of a screening. Results come in USCC order
// (bytewise, as results.csv sorts them).
type ResultFilter struct {
	// Reviewed filters Decisions and Reasons on the current outcome
	// rather than the screened one.
	Reviewed  bool
	Decisions []refund.Decision // any of them; none means all
	Reasons   refund.Reasons    // at least one of them; none means all
	// Query keeps units whose USCC starts with it or whose name contains it.
	Query     string
	AfterUSCC string // only units after this one (a page's last)
	Limit     int    // at most this many; 0 means all

	uscc string // only this unit
}

// ListResults returns the results of screening id of county that f
// selects, and how many match f on all pages (ignoring AfterUSCC and
// Limit). A screening not in county is fault.ErrNotFound.
func (s *Store) ListResults(ctx context.Context, county string, id int64, f ResultFilter) (rs []Result, matches int64, err error) {
	err = pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		if err := s.screeningExists(ctx, tx, county, id); err != nil {
			return err
		}
		where, args := f.where(county, id, false)
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM screening_result r WHERE `+where, args...).Scan(&matches); err != nil {
			return err
		}
		return s.eachResult(ctx, tx, county, id, f, func(r *Result) error {
			rs = append(rs, *r)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fail(err, "results of screening %d of county %s", id, county)
	}
	return rs, matches, nil
}

// EachResult calls fn with each result of screening id of county that f
// selects, in USCC order, from one snapshot; fn's error stops it and is
// returned. A screening not in county is fault.ErrNotFound.
func (s *Store) EachResult(ctx context.Context, county string, id int64, f ResultFilter, fn func(*Result) error) error {
	err := pg.WithTx(ctx, pg.Options(s.pool, snapshot), func(tx pgx.Tx) error {
		if err := s.screeningExists(ctx, tx, county, id); err != nil {
			return err
		}
		return s.eachResult(ctx, tx, county, id, f, fn)
	})
	if err != nil {
		return fail(err, "results of screening %d of county %s", id, county)
	}
	return nil
}

func (s *Store) screeningExists(ctx context.Context, q querier, county string, id int64) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM screening WHERE county = $1 AND id = $2`, county, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoScreening
	}
	return err
}

// where returns the condition on screening_result r that f selects, and its
// arguments; page adds AfterUSCC.
func (f ResultFilter) where(county string, id int64, page bool) (string, []any) {
	args := []any{county, id}
	conds := []string{"r.county = $1", "r.screening_id = $2"}
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	decision, reasons := "r.screened_decision", "r.screened_reasons"
	if f.Reviewed {
		decision, reasons = "r.decision", "r.reasons"
	}
	if len(f.Decisions) > 0 {
		names := make([]string, len(f.Decisions))
		for i, d := range f.Decisions {
			names[i] = d.String()
		}
		add(decision+" = ANY($?)", names)
	}
	if f.Reasons != 0 {
		var names []string
		for _, r := range f.Reasons.List() {
			names = append(names, r.String())
		}
		add("string_to_array("+reasons+", '|') && $?::text[]", names)
	}
	if f.Query != "" {
		add(`(r.uscc LIKE $? ESCAPE '\' OR strpos(r.name, `+fmt.Sprintf("$%d", len(args)+2)+`) > 0)`, likePrefix(strings.ToUpper(f.Query)))
		args = append(args, f.Query)
	}
	if f.uscc != "" {
		add("r.uscc = $?", f.uscc)
	}
	if page && f.AfterUSCC != "" {
		add(`r.uscc COLLATE "C" > $?`, f.AfterUSCC)
	}
	return strings.Join(conds, " AND "), args
}

// likePrefix is a LIKE pattern matching strings that start with s.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

const resultSelect = `r.uscc, r.name, r.unit_county, r.industry, r.status, r.headcount_start, r.headcount_end, r.mobile, r.months_paid, r.base_fen,
	r.screened_decision, r.screened_reasons, r.screened_refund_fen, r.screened_size, r.screened_payee_kind, r.screened_payee_account_no,
	r.decision, r.reasons, r.refund_fen, r.size, r.payee_kind, r.payee_bank, r.payee_bank_code, r.payee_account_no, r.payee_account_name,
	r.uscc_verified, r.corrected_uscc, r.reviewed, r.override,
	coalesce((SELECT bi.batch_id FROM batch_item bi WHERE bi.county = r.county AND bi.live
		AND bi.policy_year = (s.policy->>'policy_year')::int AND bi.uscc IN (r.uscc, r.corrected_uscc) LIMIT 1), '')`

func (s *Store) eachResult(ctx context.Context, q querier, county string, id int64, f ResultFilter, fn func(*Result) error) error {
	where, args := f.where(county, id, true)
	sql := `SELECT ` + resultSelect + ` FROM screening_result r JOIN screening s ON s.county = r.county AND s.id = r.screening_id
		WHERE ` + where + ` ORDER BY r.uscc COLLATE "C"`
	if f.Limit > 0 {
		sql += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	var sc resultScanner
	_, err = pgx.ForEachRow(rows, sc.dest(), func() error {
		r, err := sc.result()
		if err != nil {
			return fmt.Errorf("result %s: %w", sc.r.USCC, err)
		}
		return fn(&r)
	})
	return err
}

// resultScanner holds the scanned columns of one result.
type resultScanner struct {
	r                                      Result
	status                                 string
	sDecision, sReasons, decision, reasons string
	sSize, sKind, size, kind               pgtype.Text
	override                               string
}

func (s *resultScanner) dest() []any {
	r := &s.r
	return []any{&r.USCC, &r.Name, &r.UnitCounty, &r.Industry, &s.status, &r.HeadcountStart, &r.HeadcountEnd, &r.Mobile, &r.MonthsPaid, &r.BaseFen,
		&s.sDecision, &s.sReasons, &r.Screened.RefundFen, &s.sSize, &s.sKind, &r.Screened.Payee.AccountNo,
		&s.decision, &s.reasons, &r.Current.RefundFen, &s.size, &s.kind, &r.Current.Payee.Bank, &r.Current.Payee.BankCode,
		&r.Current.Payee.AccountNo, &r.Current.Payee.AccountName,
		&r.USCCVerified, &r.CorrectedUSCC, &r.Reviewed, &s.override, &r.BatchID}
}

func (s *resultScanner) result() (Result, error) {
	r := s.r
	var err error
	if r.Status = parseStatus(s.status); r.Status == 0 {
		return Result{}, fmt.Errorf("status %q", s.status)
	}
	if err = outcomeOf(&r.Screened, s.sDecision, s.sReasons, s.sSize, s.sKind); err != nil {
		return Result{}, err
	}
	if err = outcomeOf(&r.Current, s.decision, s.reasons, s.size, s.kind); err != nil {
		return Result{}, err
	}
	r.Screened.Payee.USCC, r.Current.Payee.USCC = r.USCC, r.USCC
	r.Override = Override(s.override)
	return r, nil
}

func outcomeOf(o *Outcome, decision, reasons string, size, kind pgtype.Text) error {
	var err error
	if o.Decision, err = refund.ParseDecision(decision); err != nil {
		return err
	}
	if o.Reasons, err = refund.ParseReasons(reasons); err != nil {
		return err
	}
	o.Size = refund.SizeUnknown
	if size.Valid {
		if o.Size = parseSize(size.String); o.Size == refund.SizeUnknown {
			return fmt.Errorf("size %q", size.String)
		}
	}
	o.Payee.Kind = 0
	if kind.Valid {
		if o.Payee.Kind = parseAccountKind(kind.String); o.Payee.Kind == 0 {
			return fmt.Errorf("account kind %q", kind.String)
		}
	}
	return nil
}
