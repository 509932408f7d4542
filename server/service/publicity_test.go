package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/pgtest"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/batchtest"
	"wengang/server/store"
)

// Two counties of the publicity tests.
const (
	puCountyA = "371502"
	puCountyB = "371521"
	puBatchA  = puCountyA + "-000001"
	puBatchB  = puCountyB + "-000001"
)

// puAsHeader names the test principal a request acts as (see puPrincipal).
const puAsHeader = "Pu-As"

// puPrincipal is the principal of a test caller: "node:<county>" is that
// county's node; "admin:<name>" a city administrator; "approver:<name>" a
// city approver.
func puPrincipal(as string) (access.Principal, bool) {
	kind, name, ok := strings.Cut(as, ":")
	if !ok {
		return access.Principal{}, false
	}
	switch kind {
	case "node":
		return access.Principal{Kind: access.KindNode, Subject: "node-" + name, Role: "node", Counties: []string{name}}, true
	case "admin":
		return access.Principal{Kind: access.KindPerson, Subject: "tok-" + name, Name: name, Role: "city_admin", Domain: access.DomainCity}, true
	case "approver":
		return access.Principal{Kind: access.KindPerson, Subject: "tok-" + name, Name: name, Role: "city_approver", Domain: access.DomainCity}, true
	}
	return access.Principal{}, false
}

// puCity is a city of the publicity tests on a loopback port.
type puCity struct {
	t     *testing.T
	url   string
	http  *http.Client
	db    *pgxpool.Pool
	store *store.Store
	cal   *calendar.Calendar
	today atomic.Int32
	tick  atomic.Int64
}

// puStart starts the city's sync, intake and publicity services over a
// fresh database, serving h2c on a loopback port.
func puStart(t *testing.T) *puCity {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	cal, err := calendar.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	c := &puCity{t: t, db: pool, store: store.New(pool), cal: cal}
	c.today.Store(int32(civil.MustDate(2022, 5, 6)))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := &Deps{Store: c.store, Log: log, Now: c.now, Params: refund.LoadParams, Calendar: cal,
		Today: func() civil.Date { return civil.Date(c.today.Load()) }}
	as := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if p, ok := puPrincipal(req.Header().Get(puAsHeader)); ok {
				ctx = access.WithPrincipal(ctx, p)
			}
			return next(ctx, req)
		}
	})
	opts := connect.WithInterceptors(rpc.ErrorInterceptor(log), as)
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewSyncServiceHandler(&SyncService{deps}, opts))
	mux.Handle(wengangv1connect.NewIntakeServiceHandler(&IntakeService{deps}, opts))
	mux.Handle(wengangv1connect.NewPublicityServiceHandler(&PublicityService{deps}, opts))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&rpc.Server{Handler: mux, Log: log, ShutdownTimeout: 5 * time.Second}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	c.url, c.http = "http://"+ln.Addr().String(), &http.Client{Transport: tr}
	return c
}

// puClients are the city's clients acting as one test principal.
type puClients struct {
	Sync      wengangv1connect.SyncServiceClient
	Intake    wengangv1connect.IntakeServiceClient
	Publicity wengangv1connect.PublicityServiceClient
}

func (c *puCity) as(who string) puClients {
	hdr := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set(puAsHeader, who)
			return next(ctx, req)
		}
	})
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithInterceptors(hdr)}
	return puClients{
		Sync:      wengangv1connect.NewSyncServiceClient(c.http, c.url, opts...),
		Intake:    wengangv1connect.NewIntakeServiceClient(c.http, c.url, opts...),
		Publicity: wengangv1connect.NewPublicityServiceClient(c.http, c.url, opts...),
	}
}

// now is the clock of the test city: ten in the morning of its business
// date in Shanghai, a little later at each call.
func (c *puCity) now() time.Time {
	d := civil.Date(c.today.Load())
	return time.Date(d.Year(), time.Month(d.Month()), d.Day(), 2, 0, 0, 0, time.UTC).Add(time.Duration(c.tick.Add(1)) * time.Millisecond)
}

func (c *puCity) setToday(y, m, d int) { c.today.Store(int32(civil.MustDate(y, m, d))) }

// puPush pushes a batch of county with one item per USCC number.
func (c *puCity) push(county, id string, ns ...int) {
	c.t.Helper()
	var codes []string
	for _, n := range ns {
		codes = append(codes, batchtest.USCC(n))
	}
	req, _ := batchtest.Push(batchtest.Batch(county, id, codes...))
	if _, err := c.as("node:"+county).Sync.PushBatch(context.Background(), connect.NewRequest(req)); err != nil {
		c.t.Fatalf("push %s of %s: %v", id, county, err)
	}
}

// puCode asserts err's Connect code.
func puCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if connect.CodeOf(err) != want || err == nil {
		t.Fatalf("%s: got %v, want code %v", what, err, want)
	}
}

// puFeed returns, per county and USCC, the kinds of decisions in the feed.
func (c *puCity) feed() map[string][]store.DecisionKind {
	c.t.Helper()
	ds, _, err := c.store.PullDecisions(context.Background(), []string{puCountyA, puCountyB}, nil, store.MaxPull)
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string][]store.DecisionKind{}
	for _, d := range ds {
		k := d.County + "/" + d.USCC
		out[k] = append(out[k], d.Kind)
	}
	return out
}

func (c *puCity) itemState(county, batch string, n int) store.ItemState {
	c.t.Helper()
	its, err := c.store.Items(context.Background(), county, batch)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, it := range its {
		if it.USCC == batchtest.USCC(n) {
			return it.State
		}
	}
	c.t.Fatalf("no item %d in %s/%s", n, county, batch)
	return ""
}

func puDate(y, m, d int) *wengangv1.Date { return protoconv.Date(civil.MustDate(y, m, d)) }

// puSetup pushes county A's batch A1 (enterprises 1-4) and county B's
// batch B1 (4-6): enterprise 4 is a cross-county conflict.
func puSetup(t *testing.T) *puCity {
	c := puStart(t)
	c.push(puCountyA, puBatchA, 1, 2, 3, 4)
	c.push(puCountyB, puBatchB, 4, 5, 6)
	return c
}

func TestResolveConflict(t *testing.T) {
	t.Parallel()
	c := puSetup(t)
	ctx := context.Background()
	admin := c.as("admin:zhang")

	list, err := admin.Intake.ListConflicts(ctx, connect.NewRequest(&wengangv1.ListConflictsRequest{State: wengangv1.ConflictState_CONFLICT_STATE_OPEN}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.Conflicts) != 1 || len(list.Msg.Conflicts[0].Parties) != 2 || list.Msg.Conflicts[0].Uscc != batchtest.USCC(4) {
		t.Fatalf("conflicts: %v", list.Msg.Conflicts)
	}
	cf := list.Msg.Conflicts[0]
	if cf.Parties[0].County != puCountyA || cf.Parties[0].Name == "" || cf.Parties[0].RefundFen <= 0 {
		t.Errorf("first party: %v", cf.Parties[0])
	}

	resolve := func(who, county, batch, reason string) (*wengangv1.Conflict, error) {
		r, err := c.as(who).Intake.ResolveConflict(ctx, connect.NewRequest(&wengangv1.ResolveConflictRequest{
			ConflictId: cf.ConflictId, KeepCounty: county, KeepBatchId: batch, Reason: reason}))
		if err != nil {
			return nil, err
		}
		return r.Msg.Conflict, nil
	}
	_, err = resolve("admin:zhang", puCountyB, puBatchB, " ")
	puCode(t, "no reason", err, connect.CodeInvalidArgument)
	_, err = resolve("admin:zhang", puCountyB, puCountyB+"-000009", "营业执照注册地在东昌府区")
	puCode(t, "not a party", err, connect.CodeInvalidArgument)
	_, err = c.as("admin:zhang").Intake.ResolveConflict(ctx, connect.NewRequest(&wengangv1.ResolveConflictRequest{ConflictId: "CF2021-999999", KeepCounty: puCountyB, KeepBatchId: puBatchB, Reason: "x"}))
	puCode(t, "no such conflict", err, connect.CodeNotFound)
	if st := c.itemState(puCountyA, puBatchA, 4); st != store.ItemConflict {
		t.Fatalf("before resolution A's item is %s", st)
	}

	got, err := resolve("admin:zhang", puCountyB, puBatchB, "参保地在临清市")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != wengangv1.ConflictState_CONFLICT_STATE_RESOLVED || got.KeptCounty != puCountyB || got.ResolvedBy != "zhang" || got.Reason != "参保地在临清市" {
		t.Errorf("resolved: %v", got)
	}
	if a, b := c.itemState(puCountyA, puBatchA, 4), c.itemState(puCountyB, puBatchB, 4); a != store.ItemRejected || b != store.ItemReceived {
		t.Errorf("after resolution: A %s, B %s; want rejected, received", a, b)
	}
	again, err := resolve("admin:li", puCountyB, puBatchB, "another reason")
	if err != nil || again.ResolvedBy != "zhang" || !again.ResolvedAt.AsTime().Equal(got.ResolvedAt.AsTime()) {
		t.Errorf("resolving the same way again: %v, %v; want the first resolution", again, err)
	}
	_, err = resolve("admin:zhang", puCountyA, puBatchA, "改判")
	puCode(t, "the other way", err, connect.CodeFailedPrecondition)

	// Each county heard its side.
	feed := c.feed()
	if got, want := feed[puCountyA+"/"+batchtest.USCC(4)], []store.DecisionKind{store.KindReceived, store.KindConflict, store.KindRejected}; !slices.Equal(got, want) {
		t.Errorf("county A's feed on the enterprise: %v, want %v", got, want)
	}
	if got, want := feed[puCountyB+"/"+batchtest.USCC(4)], []store.DecisionKind{store.KindConflict, store.KindReceived}; !slices.Equal(got, want) {
		t.Errorf("county B's feed on the enterprise: %v, want %v", got, want)
	}
	items, err := admin.Intake.ListReceivedItems(ctx, connect.NewRequest(&wengangv1.ListReceivedItemsRequest{
		Counties: []string{puCountyA}, States: []wengangv1.ItemState{wengangv1.ItemState_ITEM_STATE_REJECTED}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(items.Msg.Items) != 1 || items.Msg.Items[0].Rejections[0].Code != wengangv1.RejectionCode_REJECTION_CODE_DUPLICATE ||
		!strings.Contains(items.Msg.Items[0].Rejections[0].Detail, "参保地在临清市") || items.Msg.Items[0].Item.Contributions != nil {
		t.Errorf("rejected items of A: %v", items.Msg.Items)
	}
	var n int
	if err := c.queryRow(`SELECT count(*) FROM audit_log WHERE action = 'conflict.resolve' AND actor_subject = 'zhang (tok-zhang)'`, &n); err != nil || n != 1 {
		t.Errorf("audit entries of the resolution: %d, %v", n, err)
	}
}

// queryRow reads one row of the city's database: the tests look at the
// audit log and the instructions with plain SQL.
func (c *puCity) queryRow(sql string, dest ...any) error {
	return c.db.QueryRow(context.Background(), sql).Scan(dest...)
}

// puRound builds the round of batches A1 and B1 (after keeping B's
// enterprise 4) starting on Monday 2022-05-09 as admin zhang.
func puRound(t *testing.T, c *puCity) *wengangv1.Round {
	t.Helper()
	ctx := context.Background()
	list, err := c.as("admin:zhang").Intake.ListConflicts(ctx, connect.NewRequest(&wengangv1.ListConflictsRequest{}))
	if err != nil || len(list.Msg.Conflicts) != 1 {
		t.Fatalf("conflicts: %v, %v", list, err)
	}
	if _, err := c.as("admin:zhang").Intake.ResolveConflict(ctx, connect.NewRequest(&wengangv1.ResolveConflictRequest{
		ConflictId: list.Msg.Conflicts[0].ConflictId, KeepCounty: puCountyB, KeepBatchId: puBatchB, Reason: "参保地在临清市"})); err != nil {
		t.Fatal(err)
	}
	r, err := c.as("admin:zhang").Publicity.CreateRound(ctx, connect.NewRequest(puCreate("k1", "2022年第一批", puDate(2022, 5, 9))))
	if err != nil {
		t.Fatal(err)
	}
	return r.Msg.Round
}

func puCreate(key, title string, start *wengangv1.Date) *wengangv1.CreateRoundRequest {
	return &wengangv1.CreateRoundRequest{
		Title: title, StartDate: start, IdempotencyKey: key,
		Batches:          []*wengangv1.BatchRef{{County: puCountyA, BatchId: puBatchA}, {County: puCountyB, BatchId: puBatchB}},
		ObjectionContact: &wengangv1.ObjectionContact{Office: "市人社局失业保险科", Phone: "0635-8888888"},
	}
}

func TestCreateRound(t *testing.T) {
	t.Parallel()
	c := puSetup(t)
	ctx := context.Background()
	admin := c.as("admin:zhang").Publicity

	_, err := admin.CreateRound(ctx, connect.NewRequest(puCreate("k0", "早", puDate(2022, 5, 5))))
	puCode(t, "a start before the business date", err, connect.CodeFailedPrecondition)
	bad := puCreate("k0", "x", puDate(2022, 5, 9))
	bad.Batches = append(bad.Batches, &wengangv1.BatchRef{County: puCountyA, BatchId: "nope"})
	_, err = admin.CreateRound(ctx, connect.NewRequest(bad))
	puCode(t, "an unknown batch", err, connect.CodeNotFound)
	_, err = admin.CreateRound(ctx, connect.NewRequest(puCreate("", "x", puDate(2022, 5, 9))))
	puCode(t, "no key", err, connect.CodeInvalidArgument)

	// Enterprise 4 is in conflict: it stays out of the round.
	r, err := admin.CreateRound(ctx, connect.NewRequest(puCreate("k1", "2022年第一批", puDate(2022, 5, 9))))
	if err != nil {
		t.Fatal(err)
	}
	round := r.Msg.Round
	wantEnd, _ := c.cal.NthWorkday(civil.MustDate(2022, 5, 9), refund.DefaultParams().PublicityWorkdays)
	if end, _ := protoconv.ToDate(round.EndDate); end != wantEnd || round.Workdays != 5 || round.State != wengangv1.RoundState_ROUND_STATE_DRAFT {
		t.Errorf("round: end %v workdays %d state %v; want end %s, 5, draft", round.EndDate, round.Workdays, round.State, wantEnd)
	}
	if round.EntryCount != 5 || !slices.Equal(round.Counties, []string{puCountyA, puCountyB}) || round.BuiltBy != "zhang" {
		t.Errorf("round: %d entries, counties %v, built by %s; want 5 (the conflict stays out), both, zhang", round.EntryCount, round.Counties, round.BuiltBy)
	}
	if st := c.itemState(puCountyA, puBatchA, 4); st != store.ItemConflict {
		t.Errorf("the conflict's item is %s", st)
	}
	if st := c.itemState(puCountyA, puBatchA, 1); st != store.ItemInRound {
		t.Errorf("an entry's item is %s", st)
	}
	again, err := admin.CreateRound(ctx, connect.NewRequest(puCreate("k1", "2022年第一批", puDate(2022, 5, 9))))
	if err != nil || again.Msg.Round.RoundId != round.RoundId {
		t.Errorf("repeat: %v, %v; want round %s", again, err, round.RoundId)
	}
	_, err = admin.CreateRound(ctx, connect.NewRequest(puCreate("k1", "另一批", puDate(2022, 5, 9))))
	puCode(t, "the key for another request", err, connect.CodeAlreadyExists)
	_, err = admin.CreateRound(ctx, connect.NewRequest(puCreate("k2", "二批", puDate(2022, 5, 9))))
	puCode(t, "batches already in a round", err, connect.CodeFailedPrecondition)
}

func TestRoundLifecycle(t *testing.T) {
	t.Parallel()
	c := puSetup(t)
	ctx := context.Background()
	round := puRound(t, c)
	id := round.RoundId
	approver := c.as("approver:wang").Publicity
	get := func() *wengangv1.Round {
		r, err := approver.GetRound(ctx, connect.NewRequest(&wengangv1.GetRoundRequest{RoundId: id}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg.Round
	}
	object := func(key string, n int, who string) (*wengangv1.Objection, error) {
		r, err := c.as(who).Publicity.RecordObjection(ctx, connect.NewRequest(&wengangv1.RecordObjectionRequest{
			RoundId: id, Uscc: batchtest.USCC(n), ContactName: "李四", ContactPhone: "13800000000", Text: "该企业已停业",
			Channel: wengangv1.ResponseChannel_RESPONSE_CHANNEL_PHONE, IdempotencyKey: key}))
		if err != nil {
			return nil, err
		}
		return r.Msg.Objection, nil
	}
	resolve := func(oid string, st wengangv1.ObjectionState, reason string) (*wengangv1.Objection, error) {
		r, err := c.as("admin:zhao").Publicity.ResolveObjection(ctx, connect.NewRequest(&wengangv1.PublicityServiceResolveObjectionRequest{
			ObjectionId: oid, Resolution: st, Reason: reason}))
		if err != nil {
			return nil, err
		}
		return r.Msg.Objection, nil
	}
	release := func(who string) (*wengangv1.ReleaseRoundResponse, error) {
		r, err := c.as(who).Publicity.ReleaseRound(ctx, connect.NewRequest(&wengangv1.ReleaseRoundRequest{RoundId: id}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}

	// Four eyes: the builder may not approve, by name or by token.
	_, err := c.as("admin:zhang").Publicity.ApproveRound(ctx, connect.NewRequest(&wengangv1.ApproveRoundRequest{RoundId: id}))
	puCode(t, "approval by the builder", err, connect.CodePermissionDenied)
	_, err = c.as("approver:zhang").Publicity.ApproveRound(ctx, connect.NewRequest(&wengangv1.ApproveRoundRequest{RoundId: id}))
	puCode(t, "approval by the builder with another role", err, connect.CodePermissionDenied)
	_, err = object("early", 1, "admin:zhao")
	puCode(t, "an objection to a draft", err, connect.CodeFailedPrecondition)

	a, err := approver.ApproveRound(ctx, connect.NewRequest(&wengangv1.ApproveRoundRequest{RoundId: id, Comment: "同意公示"}))
	if err != nil {
		t.Fatal(err)
	}
	if a.Msg.Round.State != wengangv1.RoundState_ROUND_STATE_APPROVED || a.Msg.Round.ApprovedBy != "wang" {
		t.Errorf("approved round: %v by %s", a.Msg.Round.State, a.Msg.Round.ApprovedBy)
	}
	if _, err := approver.ApproveRound(ctx, connect.NewRequest(&wengangv1.ApproveRoundRequest{RoundId: id})); err != nil {
		t.Errorf("approving again: %v", err)
	}
	if st := c.itemState(puCountyB, puBatchB, 4); st != store.ItemInPublicity {
		t.Errorf("kept conflict item after approval: %s", st)
	}

	// Objections are taken from the start date through the end date.
	_, err = object("early", 1, "admin:zhao")
	puCode(t, "an objection before the start date", err, connect.CodeFailedPrecondition)
	c.setToday(2022, 5, 10)
	if st := get().State; st != wengangv1.RoundState_ROUND_STATE_IN_PUBLICITY {
		t.Errorf("state on 05-10: %v", st)
	}
	o1, err := object("o1", 1, "admin:zhao")
	if err != nil {
		t.Fatal(err)
	}
	if o1.State != wengangv1.ObjectionState_OBJECTION_STATE_OPEN || o1.County != puCountyA || o1.RecordedBy != "zhao" || o1.Name == "" {
		t.Errorf("objection: %v", o1)
	}
	if again, err := object("o1", 1, "admin:zhao"); err != nil || again.ObjectionId != o1.ObjectionId {
		t.Errorf("repeat of o1: %v, %v", again, err)
	}
	o2, err := object("o2", 2, "admin:zhao")
	if err != nil {
		t.Fatal(err)
	}
	// The portal's form goes through the same store method.
	o5, err := c.store.RecordObjection(ctx, store.NewObjection{RoundID: id, USCC: batchtest.USCC(5), Text: "公示名单有误", Channel: "portal",
		RecordedBy: "portal", ReceivedAt: c.now(), Today: civil.MustDate(2022, 5, 10)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = object("o9", 4, "admin:zhao")
	if err != nil {
		t.Fatalf("an objection to B's kept item: %v", err)
	}
	_, err = object("o10", 99, "admin:zhao")
	puCode(t, "an enterprise not in the round", err, connect.CodeNotFound)
	for n, want := range map[int]store.ItemState{1: store.ItemObjected, 2: store.ItemObjected, 3: store.ItemInPublicity} {
		if st := c.itemState(puCountyA, puBatchA, n); st != want {
			t.Errorf("item %d: %s, want %s (an objection freezes its enterprise only)", n, st, want)
		}
	}
	if n := get().OpenObjectionCount; n != 4 {
		t.Errorf("open objections: %d", n)
	}

	// Upheld removes, dismissed lets go; the other way is refused.
	_, err = resolve(o1.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "")
	puCode(t, "no reason", err, connect.CodeInvalidArgument)
	if _, err := resolve(o1.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_UPHELD, "企业已注销"); err != nil {
		t.Fatal(err)
	}
	_, err = resolve(o1.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "改判")
	puCode(t, "resolving the other way", err, connect.CodeFailedPrecondition)
	if _, err := resolve(o2.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "经核实无误"); err != nil {
		t.Fatal(err)
	}
	list, err := approver.ListObjections(ctx, connect.NewRequest(&wengangv1.ListObjectionsRequest{RoundId: id, State: wengangv1.ObjectionState_OBJECTION_STATE_OPEN}))
	if err != nil || len(list.Msg.Objections) != 2 {
		t.Fatalf("open objections: %v, %v", list, err)
	}
	// Dismiss the objection to enterprise 4 of B; 5 stays open over the release.
	for _, o := range list.Msg.Objections {
		if o.Uscc == batchtest.USCC(4) {
			if _, err := resolve(o.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "无依据"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if a1, a2 := c.itemState(puCountyA, puBatchA, 1), c.itemState(puCountyA, puBatchA, 2); a1 != store.ItemRemoved || a2 != store.ItemInPublicity {
		t.Errorf("after resolutions: 1 %s, 2 %s; want removed, in_publicity", a1, a2)
	}

	// Release only after the end date, never by the builder.
	c.setToday(2022, 5, 13)
	_, err = release("approver:wang")
	puCode(t, "release on the end date", err, connect.CodeFailedPrecondition)
	_, err = object("late", 3, "admin:zhao")
	if err != nil {
		t.Fatalf("an objection on the end date: %v", err)
	}
	_, err = c.as("admin:zhao").Publicity.RecordObjection(ctx, connect.NewRequest(&wengangv1.RecordObjectionRequest{
		RoundId: id, Uscc: batchtest.USCC(3), Text: "x", IdempotencyKey: "future",
		ReceivedAt: timestamppb.New(time.Date(2022, 5, 14, 2, 0, 0, 0, time.UTC))}))
	puCode(t, "an objection received after the end date", err, connect.CodeFailedPrecondition)
	list, _ = approver.ListObjections(ctx, connect.NewRequest(&wengangv1.ListObjectionsRequest{RoundId: id, State: wengangv1.ObjectionState_OBJECTION_STATE_OPEN}))
	for _, o := range list.Msg.Objections {
		if o.Uscc == batchtest.USCC(3) {
			if _, err := resolve(o.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "无依据"); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.setToday(2022, 5, 16)
	if st := get().State; st != wengangv1.RoundState_ROUND_STATE_ENDED {
		t.Errorf("state on 05-16: %v", st)
	}
	_, err = object("after", 3, "admin:zhao")
	puCode(t, "an objection after the end date", err, connect.CodeFailedPrecondition)
	_, err = release("admin:zhang")
	puCode(t, "release by the builder", err, connect.CodePermissionDenied)

	amount := batchtest.Item(puCountyA, batchtest.USCC(2)).GetRefundFen()
	rel, err := release("approver:wang")
	if err != nil {
		t.Fatal(err)
	}
	// A: 2 and 3 (1 removed); B: 4 and 6 (5 waits on its objection).
	if rel.Released.Count != 4 || rel.Released.AmountFen != 4*amount || rel.Waiting.Count != 1 || rel.Waiting.AmountFen != amount {
		t.Errorf("released %v, waiting %v; want 4 and 1 of %d fen each", rel.Released, rel.Waiting, amount)
	}
	if rel.Round.State != wengangv1.RoundState_ROUND_STATE_RELEASED || rel.Round.ReleasedBy != "wang" {
		t.Errorf("released round: %v by %s", rel.Round.State, rel.Round.ReleasedBy)
	}
	perCounty := map[string]*wengangv1.FundingRequest{}
	for _, f := range rel.FundingRequests {
		perCounty[f.County] = f
	}
	if len(rel.FundingRequests) != 2 || perCounty[puCountyA].InstructionCount != 2 || perCounty[puCountyA].TotalFen != 2*amount ||
		perCounty[puCountyB].InstructionCount != 2 || perCounty[puCountyB].TotalFen != 2*amount ||
		perCounty[puCountyA].State != wengangv1.FundingState_FUNDING_STATE_REQUESTED {
		t.Errorf("funding requests: %v", rel.FundingRequests)
	}

	// Retried, and twice at once: nothing new.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	outs := make([]*wengangv1.ReleaseRoundResponse, 3)
	for i := range 3 {
		wg.Go(func() { outs[i], errs[i] = release("approver:wang") })
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil || outs[i].Released.Count != 4 || len(outs[i].FundingRequests) != 2 {
			t.Errorf("repeat %d: %v, %v", i, outs[i], errs[i])
		}
	}
	var instructions, fundings, e2eLong int
	if err := c.queryRow(`SELECT count(*), count(DISTINCT funding_request_id), count(*) FILTER (WHERE length(end_to_end_id) > 35) FROM payment_instruction`,
		&instructions, &fundings, &e2eLong); err != nil || instructions != 4 || fundings != 2 || e2eLong != 0 {
		t.Errorf("instructions %d in %d funding requests (%d end-to-end ids too long), %v", instructions, fundings, e2eLong, err)
	}
	var payee, purpose, kind string
	if err := c.queryRow(`SELECT payee_name, purpose, account_kind FROM payment_instruction WHERE uscc = '`+batchtest.USCC(2)+`'`, &payee, &purpose, &kind); err != nil ||
		payee != "聊城市测试服务有限公司" || purpose != "失业保险稳岗返还" || kind != "corporate" {
		t.Errorf("instruction of 2: %s, %s, %s, %v", payee, purpose, kind, err)
	}

	// An objection dismissed after the release lets its enterprise go on the next release.
	for _, o := range list.Msg.Objections {
		if o.Uscc == batchtest.USCC(5) {
			if _, err := resolve(o.ObjectionId, wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, "经核实无误"); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = o5
	rel, err = release("approver:wang")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Released.Count != 5 || rel.Waiting.Count != 0 || len(rel.FundingRequests) != 3 {
		t.Errorf("after the late dismissal: released %v, waiting %v, %d funding requests", rel.Released, rel.Waiting, len(rel.FundingRequests))
	}
	// Pages of two entries.
	var all []*wengangv1.RoundEntry
	page := &wengangv1.ListRoundEntriesRequest{RoundId: id, PageSize: 2}
	for {
		entries, err := approver.ListRoundEntries(ctx, connect.NewRequest(page))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries.Msg.Entries) > 2 {
			t.Fatalf("a page of %d entries", len(entries.Msg.Entries))
		}
		all = append(all, entries.Msg.Entries...)
		if page.PageToken = entries.Msg.NextPageToken; page.PageToken == "" {
			break
		}
	}
	states := map[string]wengangv1.ItemState{}
	for _, e := range all {
		states[e.County+"/"+e.Uscc] = e.State
		if e.State == wengangv1.ItemState_ITEM_STATE_RELEASED && (e.InstructionId == "" || e.Payee.GetAccountNo() == "") {
			t.Errorf("released entry without instruction or account: %v", e)
		}
	}
	if len(states) != 6 || states[puCountyA+"/"+batchtest.USCC(1)] != wengangv1.ItemState_ITEM_STATE_REMOVED {
		t.Errorf("entries: %v", states)
	}

	ended, err := approver.ListRounds(ctx, connect.NewRequest(&wengangv1.ListRoundsRequest{States: []wengangv1.RoundState{wengangv1.RoundState_ROUND_STATE_RELEASED}}))
	if err != nil || len(ended.Msg.Rounds) != 1 || ended.Msg.Rounds[0].EntryCount != 5 {
		t.Errorf("released rounds: %v, %v", ended, err)
	}
	drafts, err := approver.ListRounds(ctx, connect.NewRequest(&wengangv1.ListRoundsRequest{States: []wengangv1.RoundState{wengangv1.RoundState_ROUND_STATE_DRAFT}}))
	if err != nil || len(drafts.Msg.Rounds) != 0 {
		t.Errorf("draft rounds: %v, %v", drafts, err)
	}

	// The feed tells each county what happened to its enterprises.
	feed := c.feed()
	want := map[string][]store.DecisionKind{
		puCountyA + "/" + batchtest.USCC(1): {store.KindReceived, store.KindInPublicity, store.KindObjected, store.KindRemoved},
		puCountyA + "/" + batchtest.USCC(2): {store.KindReceived, store.KindInPublicity, store.KindObjected, store.KindObjectionDismissed, store.KindReleased},
		puCountyA + "/" + batchtest.USCC(4): {store.KindReceived, store.KindConflict, store.KindRejected},
		puCountyB + "/" + batchtest.USCC(4): {store.KindConflict, store.KindReceived, store.KindInPublicity, store.KindObjected, store.KindObjectionDismissed, store.KindReleased},
		puCountyB + "/" + batchtest.USCC(5): {store.KindReceived, store.KindInPublicity, store.KindObjected, store.KindObjectionDismissed, store.KindReleased},
		puCountyB + "/" + batchtest.USCC(6): {store.KindReceived, store.KindInPublicity, store.KindReleased},
	}
	for k, w := range want {
		if !slices.Equal(feed[k], w) {
			t.Errorf("feed of %s: %v, want %v", k, feed[k], w)
		}
	}
	var audits int
	if err := c.queryRow(`SELECT count(*) FROM audit_log WHERE action IN ('round.create', 'round.approve', 'round.release', 'objection.record',
		'objection.upheld', 'objection.dismissed', 'funding.request', 'instruction.release')`, &audits); err != nil || audits < 20 {
		t.Errorf("audit entries: %d, %v", audits, err)
	}
	var portalActor string
	if err := c.queryRow(`SELECT actor_subject FROM audit_log WHERE action = 'objection.record' AND object_id = '`+o5.ID+`'`, &portalActor); err != nil || portalActor != "portal" {
		t.Errorf("the portal objection's audit actor: %q, %v", portalActor, err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
