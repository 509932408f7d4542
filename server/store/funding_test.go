package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/server/store"
)

var fiActor = access.Principal{Kind: access.KindFinance, Subject: "token:9", Role: access.RoleFinance, Domain: access.DomainCity}

// fiSeed stores a released round with n released items and instructions
// of county (amount 100000+i fen) under funding request "F-"+county.
func fiSeed(t *testing.T, pool *pgxpool.Pool, county string, n int) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO publicity_round (id, title, policy_year, start_date, end_date, workdays, state, contact_office, contact_phone,
			built_by, built_at, approved_by, approved_at, released_by, released_at)
		 SELECT 'R2022-0001', 't', 2022, '2022-05-10', '2022-05-16', 5, 'released', 'o', 'p', 'a', $1, 'b', $1, 'b', $1
		 WHERE $2::int > 0 AND $3::text <> '' ON CONFLICT DO NOTHING`,
		`INSERT INTO received_batch (county, id, content_hash, content, screening_id, dataset_hash, as_of, policy_id, policy_year,
			item_count, total_fen, sealed_by, pushed_by, received_at, received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen)
		 VALUES ($3, $3 || '-1', repeat('a', 64), '\x00', 's', 'd', '2022-04-28', 'liaocheng-2022', 2022, $2, 0, 'c', 'node', $1, $2, 0, 0, 0, 0, 0)`,
		`INSERT INTO received_item (county, batch_id, uscc, policy_year, name, size, months_paid, base_fen, refund_fen, recomputed_base_fen,
			recomputed_refund_fen, payee_kind, payee_bank, payee_bank_code, payee_account_no, payee_account_name, uscc_verified, item, state, round_id, updated_at)
		 SELECT $3, $3 || '-1', $3 || '-' || i, 2022, 'n', 'small', 13, 0, 100000 + i, 0, 100000 + i, 'corporate', 'b', '', 'a', 'n', true, '\x00',
			'released', 'R2022-0001', $1 FROM generate_series(0, $2::int - 1) AS i`,
		`INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at)
		 SELECT $3, 'F-' || $3, 'R2022-0001', $2, sum(100000 + i), $1 FROM generate_series(0, $2::int - 1) AS i`,
		`INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year, payee_name, account_no, bank, bank_code,
			account_kind, amount_fen, funding_request_id, released_at)
		 SELECT $3, 'P-' || $3 || '-' || i, 'WG' || $3 || i, 'R2022-0001', $3 || '-1', $3 || '-' || i, 2022,
			'企业', '6222', '农行', '', 'corporate', 100000 + i, 'F-' || $3, $1
		 FROM generate_series(0, $2::int - 1) AS i ORDER BY i`,
	} {
		if _, err := pool.Exec(ctx, q, at, n, county); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
}

// TestFiConfirmFeedOrder confirms funding requests concurrently: the feed
// positions are gapless, and each request's instructions are consecutive
// in release order.
func TestFiConfirmFeedOrder(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	counties := []string{"371502", "371521", "371522", "371523"}
	for _, c := range counties {
		fiSeed(t, pool, c, 50)
	}
	var wg sync.WaitGroup
	for _, c := range counties {
		wg.Go(func() {
			if _, err := s.ConfirmFunding(context.Background(), fiActor, "F-"+c, "V", civil.MustDate(2022, 6, 1), at); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	is, err := s.PullInstructions(context.Background(), nil, 0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(is) != 200 {
		t.Fatalf("pulled %d", len(is))
	}
	for n, i := range is {
		if i.PullSeq != int64(n+1) {
			t.Fatalf("position %d is %d", n, i.PullSeq)
		}
		if n%50 != 0 && (i.County != is[n-1].County || i.Seq <= is[n-1].Seq) {
			t.Fatalf("instruction %d (%s) out of order after %s", n, i.ID, is[n-1].ID)
		}
	}
	if head, err := s.PullHead(context.Background()); err != nil || head != 200 {
		t.Fatalf("head %d, %v", head, err)
	}
}

// TestFiReissueOnce re-issues one returned payment from many goroutines:
// exactly one new instruction.
func TestFiReissueOnce(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	fiSeed(t, pool, "371502", 2)
	if _, err := s.ConfirmFunding(ctx, fiActor, "F-371502", "V", civil.MustDate(2022, 6, 1), at); err != nil {
		t.Fatal(err)
	}
	// A correction waiting before the return: kept pending.
	if _, err := pool.Exec(ctx, `INSERT INTO account_correction (county, id, batch_id, uscc, kind, bank, bank_code, account_no, account_name,
		reason, corrected_by, pushed_by, accepted_at) VALUES ('371502', 'C1', '371502-1', '371502-0', 'corporate', '建行', '', '99887766', '企业', 'r', 'c', 'n', $1)`, at); err != nil {
		t.Fatal(err)
	}
	c, err := s.Reissue(ctx, fiActor, "371502", "C1", at)
	if err != nil || c.Reissued || c.InstructionID != "" {
		t.Fatalf("before the return: %+v, %v", c, err)
	}
	// The return re-issues it; then many retries change nothing.
	is, changed, err := s.ReportResults(ctx, fiActor, []store.Result{{InstructionID: "P-371502-0", Reason: "销户", On: civil.MustDate(2022, 6, 2)}}, at.Add(time.Hour))
	if err != nil || !changed[0] || is[0].State != store.PaymentReissued {
		t.Fatalf("return: %+v %v %v", is, changed, err)
	}
	ids := make(chan string, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := s.Reissue(ctx, fiActor, "371502", "C1", at)
			if err != nil {
				t.Error(err)
			}
			ids <- c.InstructionID
		})
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		if id != is[0].ReissuedBy {
			t.Fatalf("re-issue %q, want %q", id, is[0].ReissuedBy)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payment_instruction WHERE reissue_of <> ''`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d re-issues (%v)", n, err)
	}
	ni, err := s.GetInstruction(ctx, is[0].ReissuedBy)
	if err != nil || ni.Payee.AccountNo != "99887766" || ni.AmountFen != 100000 || ni.EndToEndID == is[0].EndToEndID {
		t.Fatalf("re-issue %+v, %v", ni, err)
	}
	per, total, err := s.Reconcile(ctx, store.ReconcileFilter{})
	if err != nil || len(per) != 1 || !total.Balanced() || total.Released.Count != 3 || total.Reissued.AmountFen != 100000 {
		t.Fatalf("reconcile %+v %+v %v", per, total, err)
	}
}
