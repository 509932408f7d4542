package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"wengang/client"
	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/batchtest"
	"wengang/server/service"
	"wengang/server/store"
)

// puCityServer serves the city's sync, intake and publicity services on a
// loopback port over a fresh database; bearer tokens "admin", "approver"
// and "node-COUNTY" stand for a city administrator, a city approver and a
// county node. The business date is *today.
func puCityServer(t *testing.T, today *atomic.Int32) string {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	cal, err := calendar.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := &service.Deps{Store: store.New(pool), Log: log, Params: refund.LoadParams, Calendar: cal,
		Today: func() civil.Date { return civil.Date(today.Load()) },
		Now: func() time.Time {
			d := civil.Date(today.Load())
			return time.Date(d.Year(), time.Month(d.Month()), d.Day(), 2, 0, 0, 0, time.UTC)
		}}
	tokens := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			switch tok := strings.TrimPrefix(req.Header().Get("Authorization"), "Bearer "); {
			case tok == "admin":
				ctx = access.WithPrincipal(ctx, access.Principal{Kind: access.KindPerson, Subject: "tok-admin", Name: "张三", Role: "city_admin", Domain: access.DomainCity})
			case tok == "approver":
				ctx = access.WithPrincipal(ctx, access.Principal{Kind: access.KindPerson, Subject: "tok-approver", Name: "王五", Role: "city_approver", Domain: access.DomainCity})
			case strings.HasPrefix(tok, "node-"):
				ctx = access.WithPrincipal(ctx, access.Principal{Kind: access.KindNode, Subject: tok, Role: "node", Counties: []string{strings.TrimPrefix(tok, "node-")}})
			}
			return next(ctx, req)
		}
	})
	opts := connect.WithInterceptors(rpc.ErrorInterceptor(log), tokens)
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewSyncServiceHandler(&service.SyncService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewIntakeServiceHandler(&service.IntakeService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewPublicityServiceHandler(&service.PublicityService{Deps: deps}, opts))
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
	return "http://" + ln.Addr().String()
}

// puRunCity runs a city command in-process.
func puRunCity(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	code := Main(env, CityCommands(), args)
	return code, stdout.String(), stderr.String()
}

func TestCityCommands(t *testing.T) {
	t.Parallel()
	var today atomic.Int32
	today.Store(int32(civil.MustDate(2022, 5, 6)))
	url := puCityServer(t, &today)
	ctx := context.Background()
	for _, b := range []struct {
		county, id string
		ns         []int
	}{{"371502", "371502-000001", []int{1, 2, 3}}, {"371521", "371521-000001", []int{3, 4}}} {
		var codes []string
		for _, n := range b.ns {
			codes = append(codes, batchtest.USCC(n))
		}
		req, _ := batchtest.Push(batchtest.Batch(b.county, b.id, codes...))
		hc, err := client.HTTPClient(url, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sync := wengangv1connect.NewSyncServiceClient(hc, url, connect.WithGRPC(), connect.WithInterceptors(client.Bearer("node-"+b.county)))
		if _, err := sync.PushBatch(ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
	}
	must := func(want string, args ...string) string {
		t.Helper()
		code, out, errOut := puRunCity(t, append(args, "--city", url)...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("wengang %s: exit %d, stdout %q, stderr %q; want %q in stdout", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := puRunCity(t, append(args, "--city", url)...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("wengang %s: exit %d, stdout %q, stderr %q; want failure with %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}

	must("371521-000001", "intake", "list", "--token", "admin")
	out := must("open", "intake", "conflicts", "--token", "admin", "--open")
	conflict := regexp.MustCompile(`CF\d{4}-\d{6}`).FindString(out)
	fails("invalid_argument", "intake", "resolve", "--token", "admin", "--conflict", conflict, "--keep-county", "371521", "--keep-batch", "371521-000001")
	must("resolved", "intake", "resolve", "--token", "admin", "--conflict", conflict, "--keep-county", "371521", "--keep-batch", "371521-000001", "--reason", "参保地在临清市")
	must("rejected", "intake", "list", "--token", "admin", "--county", "371502", "--batch", "371502-000001")

	out = must("state draft", "round", "create", "--token", "admin", "--title", "2022年第一批稳岗返还公示", "--batches", "371502/371502-000001,371521/371521-000001",
		"--start", "2022-05-09", "--office", "市人社局失业保险科", "--phone", "0635-8888888")
	round := regexp.MustCompile(`R\d{4}-\d{4}`).FindString(out)
	if !strings.Contains(out, "entries 4") || !strings.Contains(out, "2022-05-13") {
		t.Errorf("created round: %s", out)
	}
	fails("permission_denied", "round", "approve", "--token", "admin", "--round", round)
	must("approved by 王五", "round", "approve", "--token", "approver", "--round", round)
	today.Store(int32(civil.MustDate(2022, 5, 10)))
	must("in_publicity", "round", "list", "--token", "admin")
	out = must("open", "objection-city", "record", "--token", "admin", "--round", round, "--uscc", batchtest.USCC(1), "--text", "该企业已停业", "--channel", "counter")
	objection := regexp.MustCompile(`O\d{4}-\d{6}`).FindString(out)
	must("upheld", "objection-city", "resolve", "--token", "admin", "--objection", objection, "--resolution", "upheld", "--reason", "企业已注销")
	must(objection, "objection-city", "list", "--token", "admin", "--round", round)
	today.Store(int32(civil.MustDate(2022, 5, 16)))
	out = must("released (已拨付): 3", "round", "release", "--token", "approver", "--round", round)
	if !strings.Contains(out, "371502") || !strings.Contains(out, "371521") || !strings.Contains(out, "requested") {
		t.Errorf("release: %s", out)
	}
	out = must("removed", "round", "show", "--token", "admin", "--round", round)
	if strings.Count(out, "released") < 3 {
		t.Errorf("show: %s", out)
	}
	fails("usage", "round", "create", "--token", "admin", "--start", "someday")
}
