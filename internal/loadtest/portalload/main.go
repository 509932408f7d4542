// Command portalload serves the portal over a publicity round of many
// enterprises, for scripts/loadtest.sh: it makes a database of its own on
// the PostgreSQL server of --db, migrates it, builds one round of --n
// enterprises in publicity, and serves the portal at /portal/ and, as the
// baseline, a static page of the same bytes as the round's first page at
// /static-baseline.html, from the same process and listener. On SIGINT or
// SIGTERM it stops and drops its database.
//
// It prints "ready URL" on standard output once it serves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"wengang/internal/loadtest"
	"wengang/internal/pg"
	"wengang/internal/rpc"
	"wengang/policy/civil"
	"wengang/server/portal"
	"wengang/server/store"
)

// RoundID is the round it builds.
const RoundID = "R2022-0001"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "portalload:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("portalload", flag.ContinueOnError)
	admin := fs.String("db", os.Getenv("WENGANG_TEST_DATABASE_URL"), "URL of a PostgreSQL database whose user may create databases")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	n := fs.Int("n", 50000, "enterprises in the round")
	migrations := fs.String("migrations", "", "directory of the city's migrations to apply instead of the embedded ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *admin == "" {
		return errors.New("--db is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	name := "wengang_portalload_" + strconv.Itoa(os.Getpid())
	adm, err := pgx.Connect(ctx, *admin)
	if err != nil {
		return err
	}
	defer adm.Close(context.Background())
	if _, err := adm.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		if _, err := adm.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			log.Error("drop database", "name", name, "err", err)
		}
	}()
	u, err := url.Parse(*admin)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("--db %q: want a postgres:// URL", *admin)
	}
	u.Path = "/" + name // the database of its own, never the admin's
	db, err := pg.Open(ctx, u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	var m iofs.FS = store.Migrations
	if *migrations != "" {
		m = os.DirFS(*migrations)
	}
	if err := pg.Migrate(ctx, db, m); err != nil {
		return err
	}
	start := time.Now()
	counties := []string{"371502", "371503", "371521", "371522", "371524", "371525", "371526", "371581"}
	if err := loadtest.Seed(ctx, db, loadtest.Round{ID: RoundID, Start: 20220509, End: 20220513}, loadtest.Entries(*n, counties)); err != nil {
		return err
	}
	log.Warn("round built", "enterprises", *n, "took", time.Since(start).Round(time.Millisecond))

	now := time.Date(2022, 5, 10, 2, 0, 0, 0, time.UTC)
	h := portal.Handler(portal.Config{Store: store.New(db), Log: log,
		Today: func() civil.Date { return 20220510 }, Now: func() time.Time { return now }})
	// The baseline: the bytes of the list's first page, served as they are.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", portal.Prefix+"rounds/"+RoundID, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("first page: %d", rec.Code)
	}
	static := rec.Body.Bytes()
	mux := http.NewServeMux()
	mux.Handle(portal.Prefix, h)
	mux.HandleFunc("GET /static-baseline.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(static)))
		w.Write(static)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready http://%s %s %d\n", ln.Addr(), portal.Prefix+"rounds/"+RoundID, len(static))
	srv := &rpc.Server{Handler: mux, Log: log}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
