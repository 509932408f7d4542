// Package synctest puts sealed batches into a county node's database for
// tests of the sync worker and the status mirror, as SealBatch leaves them:
// a sealed dataset, a screening with one result per item (the payee and
// size the mirror shows), the batch row with its content in the outbox, and
// its live items. It writes the rows with SQL so that the tests need
// nothing but the schema.
package synctest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	wengangv1 "wengang/proto/wengang/v1"
)

// Seal stores b as a sealed batch of its county, due for its first push
// now, and returns it as sealed (its screening id set to the screening made
// for it) with its content hash.
func Seal(t testing.TB, db *pgxpool.Pool, b *wengangv1.BatchContent) (*wengangv1.BatchContent, string) {
	t.Helper()
	return SealWithHash(t, db, b, "")
}

// SealWithHash is Seal recording hash as the batch's content hash instead
// of the content's own ("" for the content's own): a broken batch that the
// city must refuse.
func SealWithHash(t testing.TB, db *pgxpool.Pool, b *wengangv1.BatchContent, hash string) (*wengangv1.BatchContent, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b = proto.Clone(b).(*wengangv1.BatchContent)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var datasetID, screeningID int64
	if err := tx.QueryRow(ctx, `INSERT INTO dataset (county, name, state, content_hash, sealed_at) VALUES ($1, $2, 'sealed', $3, now()) RETURNING id`,
		b.County, "synctest "+b.BatchId, strings.Repeat("d", 64)).Scan(&datasetID); err != nil {
		t.Fatalf("synctest: dataset: %v", err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO screening (county, dataset_id, as_of, policy_id, policy, results_sha256, run_by, run_at)
		VALUES ($1, $2, $3, $4, '{}', $5, 'clerk', now()) RETURNING id`,
		b.County, datasetID, time.Date(int(b.AsOf.GetYear()), time.Month(b.AsOf.GetMonth()), int(b.AsOf.GetDay()), 0, 0, 0, 0, time.UTC),
		b.PolicyId, make([]byte, 32)).Scan(&screeningID); err != nil {
		t.Fatalf("synctest: screening: %v", err)
	}
	b.ScreeningId = strconv.FormatInt(screeningID, 10)
	for _, it := range b.Items {
		size := strings.ToLower(strings.TrimPrefix(it.SizeClass.String(), "SIZE_CLASS_"))
		var sizeArg any = size
		if it.SizeClass == wengangv1.SizeClass_SIZE_CLASS_UNSPECIFIED {
			sizeArg = nil
		}
		p := it.GetPayee()
		var kind any
		if p != nil {
			kind = strings.ToLower(strings.TrimPrefix(p.Kind.String(), "ACCOUNT_KIND_"))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO screening_result (county, screening_id, uscc, name, unit_county, industry, status,
				headcount_start, headcount_end, mobile, months_paid, base_fen,
				screened_decision, screened_reasons, screened_refund_fen, screened_size, screened_payee_kind, screened_payee_account_no,
				decision, reasons, refund_fen, size, payee_kind, payee_bank, payee_bank_code, payee_account_no, payee_account_name, uscc_verified)
			VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, '', $9, $10,
				'eligible', '', $11, $12, $13, $14, 'eligible', '', $11, $12, $13, $15, $16, $14, $17, $18)`,
			b.County, screeningID, it.Uscc, it.Name, it.County, it.Industry,
			it.HeadcountStart, it.HeadcountEnd, it.MonthsPaid, it.BaseFen,
			it.RefundFen, sizeArg, kind, p.GetAccountNo(), p.GetBank(), p.GetBankCode(), p.GetAccountName(), it.UsccVerified); err != nil {
			t.Fatalf("synctest: screening result %s: %v", it.Uscc, err)
		}
	}
	content, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if hash == "" {
		sum := sha256.Sum256(content)
		hash = hex.EncodeToString(sum[:])
	}
	if _, err := tx.Exec(ctx, `INSERT INTO batch (county, id, screening_id, policy_year, content, content_hash, item_count, total_fen, sealed_by, sealed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())`,
		b.County, b.BatchId, screeningID, b.PolicyYear, content, hash, b.ItemCount, b.TotalFen, b.SealedBy); err != nil {
		t.Fatalf("synctest: batch: %v", err)
	}
	for _, it := range b.Items {
		if _, err := tx.Exec(ctx, `INSERT INTO batch_item (county, batch_id, uscc, policy_year, name, refund_fen) VALUES ($1, $2, $3, $4, $5, $6)`,
			b.County, b.BatchId, it.Uscc, b.PolicyYear, it.Name, it.RefundFen); err != nil {
			t.Fatalf("synctest: batch item %s: %v", it.Uscc, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return b, hash
}
