// Package loadtest builds publicity rounds straight into a city database,
// for the portal's tests and its load test: a round of any size, with
// received batches and items under it as the schema requires, in one
// transaction with CopyFrom. Every item carries a payee account number, so
// that tests can assert that none of them ever reaches the public.
//
// It writes rows as intake and round building would leave them; it does
// not run their checks, write the decisions feed or the audit log. Use it
// for read-side tests and measurements only.
package loadtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/policy/civil"
	"wengang/policy/uscc"
)

// Round is a publicity round to create.
type Round struct {
	ID         string
	Title      string // default: "2022年第N批…" from the ID
	PolicyYear int    // default 2022
	Start, End civil.Date
	State      string // draft, approved (default) or released
	Office     string // default 市人社局失业保险科
	Phone      string // default 0635-8888888
	Address    string
}

// Entry is one enterprise of a round: its received item and round entry.
type Entry struct {
	County    string
	USCC      string
	Name      string
	AmountFen int64
	AccountNo string // the payee account on the item; default derived from the USCC
	Removed   bool   // an upheld objection took it out
	State     string // the item's state; default in_publicity (removed when Removed)
}

// Seed creates round r with entries in db, with one received batch per
// county ("B-" + round id + "-" + county).
func Seed(ctx context.Context, db *pgxpool.Pool, r Round, entries []Entry) error {
	if r.PolicyYear == 0 {
		r.PolicyYear = 2022
	}
	if r.State == "" {
		r.State = "approved"
	}
	if r.Title == "" {
		r.Title = "普惠性服务业失业保险稳岗返还公示（" + r.ID + "）"
	}
	if r.Office == "" {
		r.Office = "市人社局失业保险科"
	}
	if r.Phone == "" {
		r.Phone = "0635-8888888"
	}
	at := time.Date(2022, 5, 1, 0, 0, 0, 0, time.UTC)
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var approvedAt, releasedAt *time.Time
	if r.State != "draft" {
		approvedAt = &at
	}
	if r.State == "released" {
		releasedAt = &at
	}
	if _, err := tx.Exec(ctx, `INSERT INTO publicity_round (id, title, policy_year, start_date, end_date, workdays, state,
			contact_office, contact_phone, contact_address, built_by, built_at, approved_by, approved_at, released_at)
		VALUES ($1, $2, $3, $4::date, $5::date, 5, $6, $7, $8, $9, 'loadtest', $10, 'loadtest', $11, $12)`,
		r.ID, r.Title, r.PolicyYear, r.Start.String(), r.End.String(), r.State, r.Office, r.Phone, r.Address, at, approvedAt, releasedAt); err != nil {
		return fmt.Errorf("loadtest: round %s: %w", r.ID, err)
	}
	type batch struct {
		n   int64
		fen int64
	}
	batches := map[string]*batch{}
	var order []string
	for _, e := range entries {
		b := batches[e.County]
		if b == nil {
			b = &batch{}
			batches[e.County] = b
			order = append(order, e.County)
		}
		b.n++
		b.fen += e.AmountFen
	}
	for _, c := range order {
		b := batches[c]
		sum := sha256.Sum256([]byte(r.ID + c))
		if _, err := tx.Exec(ctx, `INSERT INTO received_batch (county, id, content_hash, content, screening_id, dataset_hash, as_of,
				policy_id, policy_year, item_count, total_fen, sealed_by, pushed_by, received_at,
				received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen)
			VALUES ($1, $2, $3, '\x00', 'S-1', 'h', '2022-03-31', 'liaocheng-2022', $4, $5, $6, 'loadtest', 'loadtest', $7, $5, $6, 0, 0, 0, 0)`,
			c, batchID(r.ID, c), hex.EncodeToString(sum[:]), r.PolicyYear, b.n, b.fen, at); err != nil {
			return fmt.Errorf("loadtest: batch of %s: %w", c, err)
		}
	}
	items := make([][]any, 0, len(entries))
	rentries := make([][]any, 0, len(entries))
	for _, e := range entries {
		acct := e.AccountNo
		if acct == "" {
			acct = AccountNo(e.USCC)
		}
		state := e.State
		if state == "" {
			state = "in_publicity"
			if e.Removed {
				state = "removed"
			}
		}
		bid := batchID(r.ID, e.County)
		items = append(items, []any{e.County, bid, e.USCC, r.PolicyYear, e.Name, "small", int32(12), e.AmountFen * 2, e.AmountFen,
			e.AmountFen * 2, e.AmountFen, "corporate", "中国工商银行聊城分行", "102475000011", acct, e.Name, true, []byte{0},
			state, r.ID, at})
		rentries = append(rentries, []any{e.County, r.ID, bid, e.USCC, r.PolicyYear, e.Name, e.AmountFen, e.Removed})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"received_item"}, []string{"county", "batch_id", "uscc", "policy_year", "name",
		"size", "months_paid", "base_fen", "refund_fen", "recomputed_base_fen", "recomputed_refund_fen", "payee_kind", "payee_bank",
		"payee_bank_code", "payee_account_no", "payee_account_name", "uscc_verified", "item", "state", "round_id", "updated_at"},
		pgx.CopyFromRows(items)); err != nil {
		return fmt.Errorf("loadtest: items: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"round_entry"}, []string{"county", "round_id", "batch_id", "uscc", "policy_year",
		"name", "amount_fen", "removed"}, pgx.CopyFromRows(rentries)); err != nil {
		return fmt.Errorf("loadtest: round entries: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = db.Exec(ctx, `ANALYZE round_entry`)
	return err
}

func batchID(round, county string) string { return "B-" + round + "-" + county }

// AccountNo is the account number Seed gives an entry without one: 19
// digits derived from its USCC, distinctive enough to search a page for.
func AccountNo(code string) string {
	sum := sha256.Sum256([]byte(code))
	var b strings.Builder
	b.WriteString("6222")
	for _, c := range sum[:15] {
		b.WriteByte('0' + c%10)
	}
	return b.String()
}

// USCC returns a valid unified social credit code of a company registered
// in county, numbered n.
func USCC(county string, n int) string {
	first := fmt.Sprintf("91%s%09d", county, n)
	c, err := uscc.CheckChar(first)
	if err != nil {
		panic(err) // digits only: cannot happen
	}
	return first + string(c)
}

// Entries returns n entries spread over counties, with Chinese names, in a
// deterministic order and with amounts from 500.00 to 50,000.00 yuan.
func Entries(n int, counties []string) []Entry {
	words := []string{"鲁西", "水城", "东昌", "运河", "光岳", "古楼", "凤凰", "徒骇", "阿胶", "江北"}
	trades := []string{"商贸", "餐饮", "物流", "家政", "文化传媒", "信息技术", "酒店管理", "汽车服务", "旅行社", "健康咨询"}
	es := make([]Entry, n)
	for i := range es {
		c := counties[i%len(counties)]
		es[i] = Entry{
			County:    c,
			USCC:      USCC(c, i+1),
			Name:      fmt.Sprintf("聊城%s%s有限公司第%d分公司", words[i%len(words)], trades[(i/len(words))%len(trades)], i+1),
			AmountFen: 50000 + int64(i*7919)%4950000,
		}
	}
	return es
}
