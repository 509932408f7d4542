package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/service"
	"wengang/server/store"
)

// poCity serves the city's ProgressService on a fresh database on a
// loopback port (h2c) and returns its URL; requests without the bearer
// token "tok" are refused.
func poCity(t *testing.T) (string, *store.Store) {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	cal, err := calendar.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New(pool)
	deps := &service.Deps{Store: st, Log: log, Now: time.Now, Params: refund.LoadParams, Calendar: cal,
		Today: func() civil.Date { return 20220601 }}
	auth := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if req.Header().Get("Authorization") != "Bearer tok" {
				return nil, connect.NewError(connect.CodeUnauthenticated, nil)
			}
			return next(ctx, req)
		}
	})
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewProgressServiceHandler(&service.ProgressService{Deps: deps}, connect.WithInterceptors(rpc.ErrorInterceptor(log), auth)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&rpc.Server{Handler: mux, Log: log, ShutdownTimeout: 5 * time.Second}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if _, err := pool.Exec(context.Background(), `INSERT INTO screening_report (county, screening_id, revision, dataset_hash, as_of, policy_id,
			screened_units, screened_eligible_count, screened_eligible_fen, screened_hold_count, screened_hold_fen, screened_ineligible_count,
			reviewed_units, reviewed_eligible_count, reviewed_eligible_fen, reviewed_hold_count, reviewed_hold_fen, reviewed_ineligible_count,
			reported_by, reported_at)
		VALUES ('371502', 'S-1', 1, 'h', '2022-03-31', 'liaocheng-2022', 1234, 0, 0, 0, 0, 0, 1234, 321, 4567800, 0, 0, 0, 'node', now())`); err != nil {
		t.Fatal(err)
	}
	return "http://" + ln.Addr().String(), st
}

func TestProgressCommand(t *testing.T) {
	url, _ := poCity(t)
	runProgress := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
		code := Main(env, ProgressCommands(), append([]string{"progress"}, args...))
		return code, stdout.String(), stderr.String()
	}
	t.Run("table", func(t *testing.T) {
		code, out, errOut := runProgress("--city", url, "--token", "tok")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{"截至 2022-06-01", "县级首笔支付时限 2022-05-31", "全部支付时限 2022-06-30", "符合条件",
			"371502", "东昌府区", "1234", "321", "45678.00", "371581", "临清市", "合计", "已逾期", "进行中"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if n := strings.Count(out, "\n"); n != 2+1+11+1 {
			t.Errorf("%d lines, want the dates, a blank, the header, 11 counties and the total:\n%s", n, out)
		}
	})
	t.Run("one county", func(t *testing.T) {
		code, out, _ := runProgress("--city", url, "--token", "tok", "--counties", "371502")
		if code != 0 || strings.Contains(out, "临清市") || !strings.Contains(out, "东昌府区") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		code, _, errOut := runProgress("--city", url, "--token", "wrong")
		if code != 1 || !strings.Contains(errOut, "unauthenticated") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if code, _, _ := runProgress("--token", "tok"); code != 2 {
			t.Errorf("no --city: exit %d, want 2", code)
		}
	})
}
