package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"wengang/internal/loadtest"
	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/store"
)

// poCity serves the portal and progress services on a fresh database on a
// loopback port, on business date today.
type poCity struct {
	db       *pgxpool.Pool
	deps     *Deps
	portal   wengangv1connect.PortalServiceClient
	progress wengangv1connect.ProgressServiceClient
	entries  map[string][]loadtest.Entry
}

var poNow = time.Date(2022, 5, 10, 2, 0, 0, 0, time.UTC)

func poStart(t *testing.T, today civil.Date) *poCity {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	cal, err := calendar.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := &Deps{Store: store.New(pool), Log: log, Now: func() time.Time { return poNow }, Params: refund.LoadParams,
		Calendar: cal, Today: func() civil.Date { return today }}
	opts := connect.WithInterceptors(rpc.ErrorInterceptor(log))
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewPortalServiceHandler(&PortalService{deps}, opts))
	mux.Handle(wengangv1connect.NewProgressServiceHandler(&ProgressService{deps}, opts))
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
	hc, url := &http.Client{Transport: tr}, "http://"+ln.Addr().String()
	return &poCity{db: pool, deps: deps, entries: map[string][]loadtest.Entry{},
		portal:   wengangv1connect.NewPortalServiceClient(hc, url, connect.WithGRPC()),
		progress: wengangv1connect.NewProgressServiceClient(hc, url, connect.WithGRPC())}
}

// poSeedRounds creates a released round, one in publicity (120
// enterprises in two counties, the 8th removed, the 9th objected), a draft
// and one that starts later.
func (c *poCity) poSeedRounds(t *testing.T) {
	t.Helper()
	rounds := []loadtest.Round{
		{ID: "R2022-0001", Start: 20220420, End: 20220426, State: "released"},
		{ID: "R2022-0002", Start: 20220509, End: 20220513},
		{ID: "R2022-0003", Start: 20220501, End: 20220506, State: "draft"},
		{ID: "R2022-0004", Start: 20220601, End: 20220607},
	}
	for i, r := range rounds {
		var es []loadtest.Entry
		if r.ID == "R2022-0002" {
			es = loadtest.Entries(120, []string{"371502", "371521"})
			es[7].Removed = true
			es[8].State = "objected"
		} else {
			for j, e := range loadtest.Entries(3, []string{"371522"}) {
				e.USCC = loadtest.USCC("371522", 1000+i*10+j)
				es = append(es, e)
			}
		}
		if err := loadtest.Seed(context.Background(), c.db, r, es); err != nil {
			t.Fatal(err)
		}
		c.entries[r.ID] = es
	}
}

func poCode(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return 0
}

func TestPortalListPublicRounds(t *testing.T) {
	c := poStart(t, 20220510)
	c.poSeedRounds(t)
	ctx := context.Background()
	first, err := c.portal.ListPublicRounds(ctx, connect.NewRequest(&wengangv1.ListPublicRoundsRequest{PageSize: 1}))
	if err != nil {
		t.Fatal(err)
	}
	r := first.Msg.GetRounds()
	if len(r) != 1 || r[0].GetRoundId() != "R2022-0002" || r[0].GetState() != wengangv1.RoundState_ROUND_STATE_IN_PUBLICITY ||
		r[0].GetEntryCount() != 119 || r[0].GetObjectionContact().GetPhone() != "0635-8888888" || len(r[0].GetCounties()) != 2 ||
		r[0].GetCounties()[1].GetName() != "阳谷县" || first.Msg.GetNextPageToken() == "" {
		t.Fatalf("first page: %v", first.Msg)
	}
	second, err := c.portal.ListPublicRounds(ctx, connect.NewRequest(&wengangv1.ListPublicRoundsRequest{PageSize: 1, PageToken: first.Msg.GetNextPageToken()}))
	if err != nil {
		t.Fatal(err)
	}
	if r := second.Msg.GetRounds(); len(r) != 1 || r[0].GetRoundId() != "R2022-0001" || r[0].GetState() != wengangv1.RoundState_ROUND_STATE_RELEASED || second.Msg.GetNextPageToken() != "" {
		t.Fatalf("second page: %v", second.Msg)
	}
	if _, err := c.portal.ListPublicRounds(ctx, connect.NewRequest(&wengangv1.ListPublicRoundsRequest{PageToken: "junk"})); poCode(err) != connect.CodeInvalidArgument {
		t.Errorf("bad token: %v", err)
	}
}

func TestPortalListPublicity(t *testing.T) {
	c := poStart(t, 20220510)
	c.poSeedRounds(t)
	ctx := context.Background()
	es := c.entries["R2022-0002"]
	for _, tc := range []struct {
		name    string
		req     *wengangv1.ListPublicityRequest
		code    connect.Code
		matched int64
		first   string
	}{
		{name: "all", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002"}, matched: 119},
		{name: "county", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", County: "371521"}, matched: 59},
		{name: "USCC prefix full-width", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", Query: "９１３７１５０２"}, matched: 60},
		{name: "name", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", Query: "第42分公司"}, matched: 1, first: es[41].USCC},
		{name: "removed is gone", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", Query: es[7].USCC}, matched: 0},
		{name: "objected stays", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", Query: es[8].USCC}, matched: 1, first: es[8].USCC},
		{name: "query too long", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", Query: strings.Repeat("长", 65)}, code: connect.CodeInvalidArgument},
		{name: "bad token", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", PageToken: "x"}, code: connect.CodeInvalidArgument},
		{name: "draft", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0003"}, code: connect.CodeNotFound},
		{name: "not started", req: &wengangv1.ListPublicityRequest{RoundId: "R2022-0004"}, code: connect.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.portal.ListPublicity(ctx, connect.NewRequest(tc.req))
			if tc.code != 0 {
				if poCode(err) != tc.code {
					t.Fatalf("err %v, want %v", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Msg.GetMatchCount() != tc.matched {
				t.Errorf("matched %d, want %d", resp.Msg.GetMatchCount(), tc.matched)
			}
			if tc.first != "" && (len(resp.Msg.GetEntries()) == 0 || resp.Msg.GetEntries()[0].GetUscc() != tc.first) {
				t.Errorf("entries %v, want %s first", resp.Msg.GetEntries(), tc.first)
			}
		})
	}
	t.Run("pages cover the list once, a token is for its own list only", func(t *testing.T) {
		req := &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", PageSize: 50}
		seen := map[string]bool{}
		pages := 0
		for {
			resp, err := c.portal.ListPublicity(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range resp.Msg.GetEntries() {
				if seen[e.GetUscc()] {
					t.Fatalf("%s twice", e.GetUscc())
				}
				seen[e.GetUscc()] = true
			}
			if resp.Msg.GetNextPageToken() == "" {
				break
			}
			if pages == 1 {
				other := &wengangv1.ListPublicityRequest{RoundId: "R2022-0002", County: "371502", PageToken: resp.Msg.GetNextPageToken()}
				if _, err := c.portal.ListPublicity(ctx, connect.NewRequest(other)); poCode(err) != connect.CodeInvalidArgument {
					t.Errorf("token of another list: %v", err)
				}
			}
			req.PageToken = resp.Msg.GetNextPageToken()
		}
		if pages != 3 || len(seen) != 119 {
			t.Errorf("%d pages, %d entries; want 3 and 119", pages, len(seen))
		}
	})
}

// TestPortalNoAccount walks every response of the portal service for a
// round whose items carry account numbers and finds none of them.
func TestPortalNoAccount(t *testing.T) {
	c := poStart(t, 20220510)
	c.poSeedRounds(t)
	ctx := context.Background()
	var msgs []proto.Message
	rounds, err := c.portal.ListPublicRounds(ctx, connect.NewRequest(&wengangv1.ListPublicRoundsRequest{PageSize: 100}))
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, rounds.Msg)
	for _, id := range []string{"R2022-0001", "R2022-0002"} {
		resp, err := c.portal.ListPublicity(ctx, connect.NewRequest(&wengangv1.ListPublicityRequest{RoundId: id, PageSize: 500}))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, resp.Msg)
	}
	for _, m := range msgs {
		js := protojson.Format(m)
		for _, es := range c.entries {
			for _, e := range es {
				if a := loadtest.AccountNo(e.USCC); strings.Contains(js, a) {
					t.Fatalf("a response shows account %s", a)
				}
			}
		}
		if strings.Contains(js, "6222") || strings.Contains(js, "银行") {
			t.Fatalf("a response shows something of an account:\n%s", js)
		}
	}
}

func TestPortalSubmitObjection(t *testing.T) {
	c := poStart(t, 20220510)
	c.poSeedRounds(t)
	ctx := context.Background()
	target := c.entries["R2022-0002"][10]
	good := func() *wengangv1.SubmitObjectionRequest {
		return &wengangv1.SubmitObjectionRequest{RoundId: "R2022-0002", Uscc: target.USCC, ContactName: "李四",
			ContactPhone: "13800000000", Text: "该单位未在本地经营。", IdempotencyKey: "k1"}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*wengangv1.SubmitObjectionRequest)
		code   connect.Code
		fields []string
	}{
		{name: "no contact, no text, no key", edit: func(r *wengangv1.SubmitObjectionRequest) {
			r.ContactName, r.ContactPhone, r.Text, r.IdempotencyKey = "", "", "", ""
		}, code: connect.CodeInvalidArgument, fields: []string{"contact_name", "text", "idempotency_key"}},
		{name: "text too long", edit: func(r *wengangv1.SubmitObjectionRequest) { r.Text = strings.Repeat("异", 2001) },
			code: connect.CodeInvalidArgument, fields: []string{"text"}},
		{name: "not in the round", edit: func(r *wengangv1.SubmitObjectionRequest) {
			r.Uscc = c.entries["R2022-0001"][0].USCC
			r.IdempotencyKey = "k2"
		},
			code: connect.CodeNotFound},
		{name: "round not in publicity", edit: func(r *wengangv1.SubmitObjectionRequest) {
			r.RoundId, r.Uscc, r.IdempotencyKey = "R2022-0001", c.entries["R2022-0001"][0].USCC, "k3"
		}, code: connect.CodeFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good()
			tc.edit(req)
			_, err := c.portal.SubmitObjection(ctx, connect.NewRequest(req))
			if poCode(err) != tc.code {
				t.Fatalf("err %v, want %v", err, tc.code)
			}
			var got []string
			for _, d := range err.(*connect.Error).Details() {
				if v, _ := d.Value(); v != nil {
					if fv, ok := v.(*wengangv1.FieldViolations); ok {
						for _, f := range fv.GetViolations() {
							got = append(got, f.GetField())
						}
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
		})
	}
	first, err := c.portal.SubmitObjection(ctx, connect.NewRequest(good()))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.portal.SubmitObjection(ctx, connect.NewRequest(good()))
	if err != nil || again.Msg.GetObjectionId() != first.Msg.GetObjectionId() {
		t.Fatalf("double submit: %v, %v; want receipt %s", again, err, first.Msg.GetObjectionId())
	}
	other := good()
	other.Text = "另一条异议"
	if _, err := c.portal.SubmitObjection(ctx, connect.NewRequest(other)); poCode(err) != connect.CodeAlreadyExists {
		t.Errorf("key reused for another objection: %v", err)
	}
	resp, err := c.portal.ListPublicity(ctx, connect.NewRequest(&wengangv1.ListPublicityRequest{RoundId: "R2022-0002", Query: target.USCC}))
	if err != nil || resp.Msg.GetMatchCount() != 1 {
		t.Errorf("the objected enterprise left the list: %v %v", resp, err)
	}
}
