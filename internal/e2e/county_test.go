// Package e2e runs the whole platform as its users do: real servers on
// loopback sockets, real PostgreSQL databases, the real access policy with
// tokens and client certificates, the generated clients and the wengang
// command line.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/client"
	"wengang/client/cli"
	"wengang/internal/authn"
	"wengang/internal/devcert"
	"wengang/internal/gen"
	"wengang/internal/pg"
	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/node"
	"wengang/node/sms"
	nodestore "wengang/node/store"
	nodesync "wengang/node/sync"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server"
	serverstore "wengang/server/store"
)

const asOf = "2022-04-28"

// quiet is the servers' log: tests read outcomes, not log lines.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is the node's clock: the wall clock plus an offset the test moves
// forward to let a worker's lease run out.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// smsBox is the SMS provider: outside the system, so a hand-written fake.
type smsBox struct {
	mu   sync.Mutex
	sent map[string]sms.Message
}

func (b *smsBox) Send(_ context.Context, m sms.Message) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sent == nil {
		b.sent = map[string]sms.Message{}
	}
	b.sent[m.ID] = m
	return "provider-" + m.ID, nil
}

func (b *smsBox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sent)
}

// pushGate holds the city's answer to the first PushBatch after it has
// been stored, until the caller goes away: the node dies with the batch
// stored at the city and no answer recorded.
type pushGate struct {
	armed  atomic.Bool
	stored chan string // the batch id, once the city committed it
}

func (g *pushGate) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		if err == nil && req.Spec().Procedure == wengangv1connect.SyncServicePushBatchProcedure && g.armed.CompareAndSwap(true, false) {
			g.stored <- req.Any().(*wengangv1.PushBatchRequest).GetBatch().GetBatchId()
			<-ctx.Done() // the node was killed mid-call
			return nil, ctx.Err()
		}
		return res, err
	}
}

func (g *pushGate) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (g *pushGate) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// world is a city and one node serving two counties.
type world struct {
	t        *testing.T
	ctx      context.Context
	enforcer *access.Enforcer
	certs    devcert.Files
	clock    *clock
	sms      *smsBox
	gate     *pushGate

	city     *server.Server
	cityAddr string
	cityDB   string

	nodeDB   string
	nodeAddr string
	stopNode func()
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	enforcer, err := access.New()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := devcert.Generate(t.TempDir(), devcert.Options{Nodes: []devcert.Node{{Name: "node-east", Counties: []string{"371502", "371521"}}}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, enforcer: enforcer, certs: certs, clock: &clock{}, sms: &smsBox{},
		gate: &pushGate{stored: make(chan string, 1)}}
	w.cityDB = pgtest.NewURL(t, serverstore.Migrations)
	w.nodeDB = pgtest.NewURL(t, nodestore.Migrations)

	tlsCfg, err := rpc.ServerTLS(certs.City, certs.CityKey, certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	w.city, err = server.New(ctx, server.Config{DB: w.cityDB, TLS: tlsCfg, Access: enforcer, Log: quiet, Interceptors: []connect.Interceptor{w.gate}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.cityAddr = ln.Addr().String()
	cityDone := make(chan error, 1)
	go func() { cityDone <- w.city.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-cityDone; err != nil {
			t.Errorf("city: %v", err)
		}
		w.city.Close()
	})
	w.startNode()
	t.Cleanup(func() { w.stopNode() })
	return w
}

// startNode starts the node process (again, after a kill) on the same
// address and database.
func (w *world) startNode() {
	t := w.t
	t.Helper()
	nodeTLS, err := rpc.ClientTLS(w.certs.CA, w.certs.Nodes["node-east"].Client, w.certs.Nodes["node-east"].ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	city, closer, err := nodesync.Dial("https://"+w.cityAddr, nodeTLS)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(w.ctx, node.Config{
		DB: w.nodeDB, Counties: []string{"371502", "371521"}, Access: w.enforcer, Now: w.clock.Now, Log: quiet,
		Phones: map[string]string{"371502": "0635-8211111", "371521": "0635-6211111"},
		SMS:    w.sms, City: city, SyncInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := w.nodeAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	w.nodeAddr = ln.Addr().String()
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx, ln) }()
	var once sync.Once
	w.stopNode = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node: %v", err)
			}
			n.Close()
			closer.Close()
		})
	}
}

func (w *world) nodeURL() string { return "http://" + w.nodeAddr }

// token creates a bearer token in the node's database.
func (w *world) token(role, domain, name string) string {
	w.t.Helper()
	pool := connectDB(w.t, w.nodeDB)
	_, secret, err := (&authn.Tokens{DB: pool}).Create(w.ctx, role, domain, name, time.Hour)
	if err != nil {
		w.t.Fatal(err)
	}
	return secret
}

func (w *world) client(token string) *client.Node {
	w.t.Helper()
	c, err := client.NewNode(w.nodeURL(), client.Options{Token: token})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// wengang runs the command line in-process.
func (w *world) wengang(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	env := cli.Env{Ctx: w.ctx, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	cmds := append(cli.Offline(), cli.NodeCommands()...)
	code := cli.Main(env, cmds, args)
	return code, stdout.String(), stderr.String()
}

func code(err error) connect.Code { return connect.CodeOf(err) }

// countyFiles generates one county's source files and returns the
// directory and the dataset.
func countyFiles(t *testing.T, county string, seed int64) (string, *refund.Dataset) {
	t.Helper()
	ds, err := gen.Generate(gen.Config{Counties: []string{county}, Units: 120, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), county)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, ds
}

func writeFiles(t *testing.T, dir string, ds *refund.Dataset) []string {
	t.Helper()
	if err := gen.Write(dir, ds, gen.Format{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, k := range []string{"units", "contributions", "accounts", "exclusions"} {
		files = append(files, filepath.Join(dir, k+".csv"))
	}
	return files
}

// moveUnit copies the unit with the given USCC (and its rows) from one
// dataset into another, as a unit of county: the same enterprise
// registered in two counties' data.
func moveUnit(from, to *refund.Dataset, uscc, county string) {
	for _, u := range from.Units {
		if u.USCC == uscc {
			u.County = county
			to.Units = append(to.Units, u)
		}
	}
	for _, c := range from.Contributions {
		if c.USCC == uscc {
			to.Contributions = append(to.Contributions, c)
		}
	}
	for _, a := range from.Accounts {
		if a.USCC == uscc {
			to.Accounts = append(to.Accounts, a)
		}
	}
}

func screenedResults(t *testing.T, ds *refund.Dataset) []refund.Result {
	t.Helper()
	rs, err := refund.Screen(ds, refund.DefaultParams(), civil.MustDate(2022, 4, 28))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestCountyNodeToCity(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	w := newWorld(t)
	ctx := w.ctx

	clerkA := w.token(access.RoleCountyClerk, "371502", "张三")
	reviewerA := w.token(access.RoleCountyReviewer, "371502", "李四")
	clerkB := w.token(access.RoleCountyClerk, "371521", "王五")
	reviewerB := w.token(access.RoleCountyReviewer, "371521", "赵六")

	// Source data: one enterprise registered in both counties' data (a
	// cross-county duplicate the city must catch).
	dirA, dsA := countyFiles(t, "371502", 101)
	dirB, dsB := countyFiles(t, "371521", 202)
	var dup string
	for _, r := range screenedResults(t, dsA) {
		if r.Decision == refund.Eligible {
			dup = r.USCC
			break
		}
	}
	moveUnit(dsA, dsB, dup, "371521")
	filesA := writeFiles(t, dirA, dsA)
	filesB := writeFiles(t, dirB, dsB)

	// Import, county by county, with the exact command line.
	for _, c := range []struct {
		county, token string
		files         []string
	}{{"371502", clerkA, filesA}, {"371521", clerkB, filesB}} {
		args := append([]string{"import", "--node", w.nodeURL(), "--token", c.token, "--county", c.county, "--dataset", "2022-04"}, c.files...)
		if code, out, errOut := w.wengang(args...); code != 0 {
			t.Fatalf("import %s: exit %d\n%s%s", c.county, code, out, errOut)
		}
	}
	// The same clerk can do nothing in the other county, on the same node.
	if code, _, errOut := w.wengang(append([]string{"import", "--node", w.nodeURL(), "--token", clerkA, "--county", "371521", "--dataset", "x"}, filesB[0])...); code != 1 || !strings.Contains(errOut, "permission_denied") {
		t.Fatalf("clerk of 371502 importing into 371521: exit %d: %s", code, errOut)
	}
	// A units file of another county is bad input naming every row.
	if code, _, errOut := w.wengang("import", "--node", w.nodeURL(), "--token", clerkA, "--county", "371502", "--dataset", "wrong", filesB[0]); code != 1 ||
		strings.Count(errOut, "\nunits.csv:") != len(dsB.Units) {
		t.Fatalf("units of 371521 imported into 371502: exit %d, %d county errors for %d units:\n%.2000s", code, strings.Count(errOut, "\nunits.csv:"), len(dsB.Units), errOut)
	}

	// Screen on the node: the results equal the offline screening of the
	// same files byte for byte.
	for _, c := range []struct{ county, token, dir string }{{"371502", clerkA, dirA}, {"371521", clerkB, dirB}} {
		onNode := filepath.Join(t.TempDir(), "node.csv")
		offline := filepath.Join(t.TempDir(), "offline.csv")
		if code, _, errOut := w.wengang("screen", "--node", w.nodeURL(), "--token", c.token, "--county", c.county, "--dataset", "2022-04", "--as-of", asOf, "--out", onNode); code != 0 {
			t.Fatalf("screen on node %s: exit %d: %s", c.county, code, errOut)
		}
		if code, _, errOut := w.wengang("screen", "--dir", c.dir, "--as-of", asOf, "--out", offline); code != 0 {
			t.Fatalf("screen offline %s: %s", c.county, errOut)
		}
		a, _ := os.ReadFile(onNode)
		b, _ := os.ReadFile(offline)
		if !bytes.Equal(a, b) || len(a) < 1000 {
			t.Fatalf("%s: node results (%d bytes) differ from offline results (%d bytes)", c.county, len(a), len(b))
		}
	}
	screeningOf := func(c *client.Node, county string) string {
		res, err := c.Screening.ListScreenings(ctx, connect.NewRequest(&wengangv1.ListScreeningsRequest{County: county}))
		if err != nil || len(res.Msg.GetScreenings()) != 1 {
			t.Fatalf("screenings of %s: %v", county, err)
		}
		return res.Msg.GetScreenings()[0].GetScreeningId()
	}
	cA, rA, cB, rB := w.client(clerkA), w.client(reviewerA), w.client(clerkB), w.client(reviewerB)
	sA, sB := screeningOf(cA, "371502"), screeningOf(cB, "371521")

	// Review: four eyes, written reasons, holds cleared by recording facts.
	eligible := func(c *client.Node, county, screening string, decision wengangv1.Decision) []*wengangv1.ScreeningResult {
		res, err := c.Screening.ListResults(ctx, connect.NewRequest(&wengangv1.ListResultsRequest{County: county, ScreeningId: screening,
			Decisions: []wengangv1.Decision{decision}, View: wengangv1.ResultView_RESULT_VIEW_REVIEWED, PageSize: 1000}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetResults()
	}
	elA := eligible(rA, "371502", sA, wengangv1.Decision_DECISION_ELIGIBLE)
	var excluded string
	for _, r := range elA {
		if r.GetUscc() != dup {
			excluded = r.GetUscc()
			break
		}
	}
	_, err := cA.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: "371502", ScreeningId: sA, Uscc: excluded, Reason: "经办自查", IdempotencyKey: client.NewKey()}))
	if code(err) != connect.CodePermissionDenied {
		t.Fatalf("a clerk reviewing: %v", err)
	}
	if _, err := rA.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: "371502", ScreeningId: sA, Uscc: excluded, IdempotencyKey: client.NewKey()})); code(err) != connect.CodeInvalidArgument {
		t.Fatalf("exclusion without a reason: %v", err)
	}
	if _, err := rA.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: "371502", ScreeningId: sA, Uscc: excluded, Reason: "企业已申请破产，暂缓发放", IdempotencyKey: client.NewKey()})); err != nil {
		t.Fatalf("reviewer excludes: %v", err)
	}
	var held *wengangv1.ScreeningResult
	for _, r := range eligible(rA, "371502", sA, wengangv1.Decision_DECISION_HOLD) {
		if len(r.GetReasons()) == 1 && r.GetReasons()[0] == wengangv1.Reason_REASON_ACCOUNT_MISSING {
			held = r
			break
		}
	}
	if held == nil {
		t.Fatal("no unit held for ACCOUNT_MISSING alone in the generated data")
	}
	res, err := rA.Review.ResolveHold(ctx, connect.NewRequest(&wengangv1.ResolveHoldRequest{County: "371502", ScreeningId: sA, Uscc: held.GetUscc(),
		Fact: &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_Account{Account: &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE,
			Bank: "中国工商银行聊城分行", AccountNo: "1610009999888877776", AccountName: held.GetName()}}},
		Reason: "企业提供对公账户", IdempotencyKey: client.NewKey()}))
	if err != nil || res.Msg.GetResult().GetDecision() != wengangv1.Decision_DECISION_ELIGIBLE || res.Msg.GetResult().GetRefundFen() != held.GetRefundFen() {
		t.Fatalf("resolve hold: %v %v", res, err)
	}

	// Notify: one SMS per unit to be paid, each sent once.
	n1, err := cA.Notification.NotifyUnits(ctx, connect.NewRequest(&wengangv1.NotifyUnitsRequest{County: "371502", ScreeningId: sA}))
	if err != nil || n1.Msg.GetQueuedCount() == 0 {
		t.Fatalf("notify: %v %v", n1, err)
	}
	again, err := cA.Notification.NotifyUnits(ctx, connect.NewRequest(&wengangv1.NotifyUnitsRequest{County: "371502", ScreeningId: sA}))
	if err != nil || again.Msg.GetQueuedCount() != 0 || again.Msg.GetAlreadyCount() != n1.Msg.GetQueuedCount() {
		t.Fatalf("notify again: %v %v", again, err)
	}
	eventually(t, "every SMS is sent", func() bool { return w.sms.count() == int(n1.Msg.GetQueuedCount()) })

	// An objection keeps its unit out of batches until a reviewer resolves it.
	var objector string
	for _, r := range eligible(rA, "371502", sA, wengangv1.Decision_DECISION_ELIGIBLE) {
		if r.GetUscc() != dup {
			objector = r.GetUscc()
			break
		}
	}
	if _, err := cA.Notification.RecordResponse(ctx, connect.NewRequest(&wengangv1.RecordResponseRequest{County: "371502", ScreeningId: sA, Uscc: objector,
		Kind: wengangv1.EnterpriseResponseKind_ENTERPRISE_RESPONSE_KIND_OBJECTED, Text: "金额与我单位核算不符", Channel: wengangv1.ResponseChannel_RESPONSE_CHANNEL_PHONE,
		IdempotencyKey: client.NewKey()})); err != nil {
		t.Fatal(err)
	}

	// Seal, and kill the node in the middle of the sync: the city stores the
	// batch, the node never hears back.
	w.gate.armed.Store(true)
	sealA, err := cA.Batch.SealBatch(ctx, connect.NewRequest(&wengangv1.SealBatchRequest{County: "371502", ScreeningId: sA, IdempotencyKey: client.NewKey()}))
	if err != nil || sealA.Msg.GetObjectedCount() != 1 || sealA.Msg.GetBatch().GetItemCount() == 0 {
		t.Fatalf("seal 371502: %v %v", sealA, err)
	}
	batchA := sealA.Msg.GetBatch().GetBatchId()
	select {
	case id := <-w.gate.stored:
		if id != batchA {
			t.Fatalf("the city stored %s, want %s", id, batchA)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not push the sealed batch")
	}
	w.stopNode()
	if st := batchState(t, cA, w, "371502", batchA); st == wengangv1.BatchState_BATCH_STATE_DELIVERED {
		t.Fatal("killed node recorded a delivery it never heard of")
	}
	// Restart; time passes beyond the dead worker's lease; it pushes again.
	w.clock.Advance(5 * time.Minute)
	w.startNode()
	cA, cB, rB = w.client(clerkA), w.client(clerkB), w.client(reviewerB)
	eventually(t, "the restarted node delivers the batch", func() bool {
		return batchState(t, cA, w, "371502", batchA) == wengangv1.BatchState_BATCH_STATE_DELIVERED
	})

	// County B: its batch holds the duplicate too.
	sealB, err := cB.Batch.SealBatch(ctx, connect.NewRequest(&wengangv1.SealBatchRequest{County: "371521", ScreeningId: sB, IdempotencyKey: client.NewKey()}))
	if err != nil {
		t.Fatal(err)
	}
	batchB := sealB.Msg.GetBatch().GetBatchId()
	eventually(t, "the node delivers 371521's batch", func() bool {
		return batchState(t, cB, w, "371521", batchB) == wengangv1.BatchState_BATCH_STATE_DELIVERED
	})

	// The city holds every batch exactly once, every item once, and no
	// decision twice (the replayed push added none).
	city := connectDB(t, w.cityDB)
	for _, b := range []*wengangv1.Batch{sealA.Msg.GetBatch(), sealB.Msg.GetBatch()} {
		var batches, items, decided, twice int
		if err := city.QueryRow(ctx, `SELECT (SELECT count(*) FROM received_batch WHERE id = $1),
			(SELECT count(*) FROM received_item WHERE batch_id = $1),
			(SELECT count(DISTINCT uscc) FROM decision WHERE batch_id = $1),
			(SELECT count(*) FROM (SELECT 1 FROM decision WHERE batch_id = $1 GROUP BY uscc, kind HAVING count(*) > 1) d)`,
			b.GetBatchId()).Scan(&batches, &items, &decided, &twice); err != nil {
			t.Fatal(err)
		}
		if batches != 1 || items != int(b.GetItemCount()) || decided != items || twice != 0 {
			t.Fatalf("batch %s at the city: %d stored, %d items (want %d), %d decided, %d decisions twice", b.GetBatchId(), batches, items, b.GetItemCount(), decided, twice)
		}
	}

	// The node sees the city's decisions per unit: received, and a conflict
	// for the enterprise both counties sent.
	statuses := func(c *client.Node, county string) map[string]*wengangv1.UnitStatus {
		out := map[string]*wengangv1.UnitStatus{}
		req := &wengangv1.ListUnitStatusesRequest{County: county, PageSize: 1000}
		res, err := c.Batch.ListUnitStatuses(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Msg.GetStatuses() {
			out[s.GetUscc()] = s
		}
		return out
	}
	eventually(t, "the node mirrors the city's decisions", func() bool {
		a, b := statuses(cA, "371502"), statuses(rB, "371521")
		return a[dup] != nil && a[dup].GetState() == wengangv1.ItemState_ITEM_STATE_CONFLICT &&
			b[dup] != nil && b[dup].GetState() == wengangv1.ItemState_ITEM_STATE_CONFLICT
	})
	received := 0
	for uscc, s := range statuses(cA, "371502") {
		switch {
		case uscc == dup:
		case s.GetState() == wengangv1.ItemState_ITEM_STATE_RECEIVED:
			received++
		default:
			t.Errorf("unit %s of 371502: state %v (%s)", uscc, s.GetState(), s.GetReason())
		}
		if uscc == objector || uscc == excluded {
			t.Errorf("unit %s was batched despite its objection or exclusion", uscc)
		}
	}
	if received != int(sealA.Msg.GetBatch().GetItemCount())-1 {
		t.Fatalf("%d units received, want %d", received, sealA.Msg.GetBatch().GetItemCount()-1)
	}

	// Every change is in the audit chain, and it verifies.
	ver, err := w.client(w.token(access.RoleCountyAdmin, "371502", "管理员")).Audit.VerifyAuditChain(ctx,
		connect.NewRequest(&wengangv1.VerifyAuditChainRequest{Domain: "371502"}))
	if err != nil || !ver.Msg.GetOk() || ver.Msg.GetCheckedCount() < 8 {
		t.Fatalf("audit chain: %v %v", ver, err)
	}
	_ = rB

	// The node's metrics count what it served.
	res2, err := http.Get(w.nodeURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res2.Body)
	res2.Body.Close()
	if !bytes.Contains(body, []byte(`wengang_rpc_calls_total{code="ok",procedure="/wengang.v1.BatchService/SealBatch"} 1`)) ||
		!bytes.Contains(body, []byte(`wengang_rpc_duration_seconds_bucket{procedure="/wengang.v1.BatchService/ListUnitStatuses"`)) {
		t.Fatalf("metrics lack the node's RPCs:\n%.3000s", body)
	}
}

func batchState(t *testing.T, c *client.Node, w *world, county, id string) wengangv1.BatchState {
	t.Helper()
	res, err := c.Batch.GetBatch(w.ctx, connect.NewRequest(&wengangv1.GetBatchRequest{County: county, BatchId: id}))
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) && ce.Code() == connect.CodeUnavailable {
			return 0
		}
		t.Fatalf("get batch %s: %v", id, err)
	}
	return res.Msg.GetBatch().GetState()
}

// connect opens a pool to a database of the world.
func connectDB(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
