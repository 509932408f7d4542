// Package citytest runs a real city server for tests: server.New on a
// database of its own from pgtest, serving h2c on a loopback port, with a
// small interceptor standing in for mutual TLS that makes every caller a
// county node for the counties the test names. Tests of the node's sync
// worker and end-to-end tests start one, stop it and start it again on the
// same port and database to play a city that goes down.
package citytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/pgtest"
	"wengang/policy/access"
	"wengang/server"
	"wengang/server/store"
)

// CountiesHeader, when a request carries it, names the counties (comma
// separated) of the node that calls, instead of the default; "none" makes
// the caller unauthenticated and "person" a person of the city rather than
// a node.
const CountiesHeader = "Wengang-Test-Counties"

// NodeInterceptor makes the caller of every request a county node whose
// certificate names counties (or those of CountiesHeader), as the access
// interceptor does for a verified client certificate.
func NodeInterceptor(counties ...string) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			cs := counties
			switch h := req.Header().Get(CountiesHeader); h {
			case "":
			case "none":
				return next(ctx, req)
			case "person":
				return next(access.WithPrincipal(ctx, access.Principal{Kind: access.KindPerson, Subject: "tok-1", Role: "city_admin", Domain: access.DomainCity}), req)
			default:
				cs = strings.Split(h, ",")
			}
			p := access.Principal{Kind: access.KindNode, Subject: "node-" + strings.Join(cs, "-"), Role: "node", Counties: cs}
			return next(access.WithPrincipal(ctx, p), req)
		}
	})
}

// City is a running city server.
type City struct {
	Addr   string // host:port it listens on
	URL    string // http://Addr
	DB     *pgxpool.Pool
	Server *server.Server
	Store  *store.Store

	mu     sync.Mutex
	stop   context.CancelFunc
	done   chan error
	closed bool
}

// Options configures Start.
type Options struct {
	// Counties the default caller's certificate names.
	Counties []string
	// Addr to listen on; "" takes a free loopback port. Pass a stopped
	// city's Addr to restart it where its clients expect it.
	Addr string
	// DB is the database to use; nil makes a new one. Pass a stopped city's
	// DB to restart it with its data.
	DB  *pgxpool.Pool
	Now func() time.Time
	// Log receives the server's log; default: warnings and errors in the
	// test's output.
	Log *slog.Logger
}

// Start starts a city server; it is stopped when t ends.
func Start(t testing.TB, o Options) *City {
	t.Helper()
	db := o.DB
	if db == nil {
		db = pgtest.NewDB(t, store.Migrations)
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a port just released may take a moment to be free again
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("citytest: listen on %s: %v", addr, err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{
		DB: URL(db), Now: o.Now, Log: log,
		Interceptors: []connect.Interceptor{NodeInterceptor(o.Counties...)},
	})
	if err != nil {
		ln.Close()
		t.Fatalf("citytest: %v", err)
	}
	sctx, stop := context.WithCancel(ctx)
	c := &City{Addr: ln.Addr().String(), DB: db, Server: srv, Store: srv.Store(), stop: stop, done: make(chan error, 1)}
	c.URL = "http://" + c.Addr
	go func() { c.done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("citytest: serve: %v", err)
		}
	})
	return c
}

// Stop shuts the server down, as a city going away would; its database
// stays for a restart. Stopping twice is harmless.
func (c *City) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.stop()
	err := <-c.done
	c.Server.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// URL returns a connection URL for the database pool is on.
func URL(pool *pgxpool.Pool) string {
	cc := pool.Config().ConnConfig
	u := &url.URL{
		Scheme:   "postgres",
		User:     url.User(cc.User),
		Host:     net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))),
		Path:     "/" + cc.Database,
		RawQuery: "sslmode=disable",
	}
	if cc.Password != "" {
		u.User = url.UserPassword(cc.User, cc.Password)
	}
	return u.String()
}
