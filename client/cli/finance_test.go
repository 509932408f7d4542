package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/iso20022"
	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/service"
	"wengang/server/store"
)

// finPrincipal makes every caller the finance system.
type finPrincipal struct{}

var finCaller = access.Principal{Kind: access.KindFinance, Subject: "token:9", Role: access.RoleFinance, Domain: access.DomainCity}

func (finPrincipal) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(access.WithPrincipal(ctx, finCaller), req)
	}
}
func (finPrincipal) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (finPrincipal) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(access.WithPrincipal(ctx, finCaller), conn)
	}
}

// finCity serves a city's FinanceService on loopback h2c with one county's
// released round of n instructions (amounts 100000+i fen) whose funding
// request is not yet confirmed. It returns the URL and the database.
func finCity(t *testing.T, n int) (string, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	now := time.Date(2022, 6, 1, 2, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO publicity_round (id, title, policy_year, start_date, end_date, workdays, state, contact_office, contact_phone,
			built_by, built_at, approved_by, approved_at, released_by, released_at)
		 SELECT 'R2022-0001', 't', 2022, '2022-05-10', '2022-05-16', 5, 'released', 'o', 'p', 'a', $1, 'b', $1, 'b', $1 WHERE $2::int > 0`,
		`INSERT INTO received_batch (county, id, content_hash, content, screening_id, dataset_hash, as_of, policy_id, policy_year,
			item_count, total_fen, sealed_by, pushed_by, received_at, received_count, received_fen, rejected_count, rejected_fen, conflict_count, conflict_fen)
		 VALUES ('371502', '371502-1', repeat('a', 64), '\x00', 's', 'd', '2022-04-28', 'liaocheng-2022', 2022, $2, 0, 'c', 'node', $1, $2, 0, 0, 0, 0, 0)`,
		`INSERT INTO received_item (county, batch_id, uscc, policy_year, name, size, months_paid, base_fen, refund_fen, recomputed_base_fen,
			recomputed_refund_fen, payee_kind, payee_bank, payee_bank_code, payee_account_no, payee_account_name, uscc_verified, item, state, round_id, updated_at)
		 SELECT '371502', '371502-1', 'U' || i, 2022, 'n', 'small', 13, 0, 100000 + i, 0, 100000 + i, 'corporate', 'b', '', 'a', 'n', true, '\x00',
			'released', 'R2022-0001', $1 FROM generate_series(0, $2::int - 1) AS i`,
		`INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at)
		 SELECT '371502', 'F2022-0001-371502-1', 'R2022-0001', $2, sum(100000 + i), $1 FROM generate_series(0, $2::int - 1) AS i`,
		`INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year, payee_name, account_no, bank, bank_code,
			account_kind, amount_fen, funding_request_id, released_at)
		 SELECT '371502', 'P2022-' || lpad(i::text, 8, '0'), 'WGP2022' || lpad(i::text, 8, '0'), 'R2022-0001', '371502-1', 'U' || i, 2022,
			'企业' || i, '6222' || lpad(i::text, 8, '0'), '中国农业银行', '103466000123', 'corporate', 100000 + i, 'F2022-0001-371502-1', $1
		 FROM generate_series(0, $2::int - 1) AS i ORDER BY i`,
	} {
		if _, err := pool.Exec(ctx, q, now, n); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	log := slog.New(slog.DiscardHandler)
	deps := &service.Deps{Store: store.New(pool), Log: log, Now: func() time.Time { return now }, Today: func() civil.Date { return civil.MustDate(2022, 6, 1) }}
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewFinanceServiceHandler(&service.FinanceService{Deps: deps}, connect.WithInterceptors(rpc.ErrorInterceptor(log), finPrincipal{})))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, pool
}

func finRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e}, FinanceCommands(), args)
	return code, o.String(), e.String()
}

func TestFinanceCommands(t *testing.T) {
	t.Parallel()
	url, _ := finCity(t, 3)
	dir := t.TempDir()
	city := []string{"--city", url, "--token", "t"}
	with := func(args ...string) []string { return append(args, city...) }
	// withArgs puts the flags before positional arguments.
	withArgs := func(cmd []string, pos ...string) []string { return append(append(cmd, city...), pos...) }

	out := filepath.Join(dir, "instructions.jsonl")
	cursor := filepath.Join(dir, "cursor")
	if code, o, e := finRun(t, with("instructions", "pull", "--out", out, "--cursor-file", cursor)...); code != 0 || !strings.Contains(o, "pulled 0") {
		t.Fatalf("pull before funding: %d %s %s", code, o, e)
	}
	if code, o, e := finRun(t, with("funding", "list", "--state", "requested")...); code != 0 || !strings.Contains(o, "F2022-0001-371502-1") || !strings.Contains(o, "3000.03") {
		t.Fatalf("funding list: %d %s %s", code, o, e)
	}
	if code, _, e := finRun(t, with("funding", "confirm", "--id", "F2022-0001-371502-1")...); code != 2 {
		t.Fatalf("confirm without reference: %d %s", code, e)
	}
	if code, o, e := finRun(t, with("funding", "confirm", "--id", "F2022-0001-371502-1", "--reference", "V-1", "--date", "2022-05-31")...); code != 0 || !strings.Contains(o, "2022-05-31") {
		t.Fatalf("confirm: %d %s %s", code, o, e)
	}
	if code, o, e := finRun(t, with("instructions", "pull", "--out", out, "--cursor-file", cursor, "--page-size", "2")...); code != 0 || !strings.Contains(o, "pulled 3") {
		t.Fatalf("pull: %d %s %s", code, o, e)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var first struct {
		InstructionID string `json:"instructionId"`
		AmountFen     string `json:"amountFen"`
	}
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.InstructionID != "P2022-00000000" || first.AmountFen != "100000" {
		t.Fatalf("JSON lines %q", lines)
	}
	// Resuming from the cursor file pulls nothing twice.
	if code, o, _ := finRun(t, with("instructions", "pull", "--out", out, "--cursor-file", cursor)...); code != 0 || !strings.Contains(o, "pulled 0") {
		t.Fatalf("resume: %d %s", code, o)
	}
	if code, o, e := finRun(t, withArgs([]string{"instructions", "ack"}, "P2022-00000000", "P2022-00000001")...); code != 0 || !strings.Contains(o, "acknowledged 2") {
		t.Fatalf("ack: %d %s %s", code, o, e)
	}

	xml := filepath.Join(dir, "pain001.xml")
	if code, o, e := finRun(t, with("pain001", "--funding", "F2022-0001-371502-1", "--out", xml)...); code != 0 || !strings.Contains(o, "pain.001") {
		t.Fatalf("pain001: %d %s %s", code, o, e)
	}
	if doc, _ := os.ReadFile(xml); !bytes.Contains(doc, []byte("<CtrlSum>3000.03</CtrlSum>")) {
		t.Fatalf("pain001 document:\n%s", doc)
	}

	results := filepath.Join(dir, "results.csv")
	os.WriteFile(results, []byte("instruction_id,outcome,bank_reference,date,reason\nP2022-00000000,paid,BK1,2022-06-02,\nP2022-00000001,returned,,2022-06-02,账户已销户\n"), 0o644)
	if code, o, e := finRun(t, with("payments", "report", "--file", results)...); code != 0 || !strings.Contains(o, "1 paid") || !strings.Contains(o, "1 returned") {
		t.Fatalf("payments report: %d %s %s", code, o, e)
	}
	badCSV := filepath.Join(dir, "bad.csv")
	os.WriteFile(badCSV, []byte("instruction_id,outcome,bank_reference,date,reason\nP2022-00000002,lost,,2022-06-02,\nP2022-00000002,paid,B,02/06/2022,\n"), 0o644)
	if code, _, e := finRun(t, with("payments", "report", "--file", badCSV)...); code != 1 || !strings.Contains(e, "bad.csv:2") || !strings.Contains(e, "bad.csv:3") {
		t.Fatalf("bad results: %d %s", code, e)
	}

	var status bytes.Buffer
	iso20022.WritePain002(&status, iso20022.Pain002{MsgID: "R1", CreatedAt: time.Date(2022, 6, 3, 9, 0, 0, 0, time.UTC), Transactions: []iso20022.Status{
		{EndToEndID: "WGP202200000002", Status: iso20022.StatusSettled, BankReference: "BK3"}}})
	p2 := filepath.Join(dir, "status.xml")
	os.WriteFile(p2, status.Bytes(), 0o644)
	if code, o, e := finRun(t, withArgs([]string{"pain002"}, p2)...); code != 0 || !strings.Contains(o, "1 paid (1000.02 yuan)") {
		t.Fatalf("pain002: %d %s %s", code, o, e)
	}
	bad002 := filepath.Join(dir, "bad.xml")
	os.WriteFile(bad002, bytes.ReplaceAll(status.Bytes(), []byte("WGP202200000002"), []byte("WG-nobody")), 0o644)
	if code, _, e := finRun(t, withArgs([]string{"pain002"}, bad002)...); code != 1 || !strings.Contains(e, fmt.Sprintf("%s:", bad002)) || !strings.Contains(e, "OrgnlEndToEndId") {
		t.Fatalf("bad pain002: %d %s", code, e)
	}

	code, o, e := finRun(t, with("reconcile")...)
	if code != 0 || !strings.Contains(o, "371502") || !strings.Contains(o, "balanced") || !strings.Contains(o, "3000.03") {
		t.Fatalf("reconcile: %d %s %s", code, o, e)
	}
	if code, _, _ := finRun(t, "reconcile"); code != 2 {
		t.Fatalf("reconcile without --city: %d", code)
	}
}
