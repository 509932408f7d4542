// Package server is the city server (市级): one port serving the city's
// RPC services over Connect, gRPC and gRPC-Web (h2c for local development,
// TLS for real), with gRPC health and reflection, on its own PostgreSQL
// database, whose migrations it applies on start.
//
// So far it serves SyncService, the channel the county nodes push batches
// through and pull the city's decisions from.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/audit"
	"wengang/internal/auditrpc"
	"wengang/internal/authn"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/internal/rpc"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/dashboard"
	"wengang/server/portal"
	"wengang/server/service"
	"wengang/server/store"
)

// Config configures a city server.
type Config struct {
	Listen string      // address for ListenAndServe, such as ":8443"
	DB     string      // PostgreSQL URL of the city's database (required)
	TLS    *tls.Config // nil serves h2c (local development only)
	Log    *slog.Logger
	Now    func() time.Time // the clock; default time.Now
	// BusinessDate fixes "today" for drills and tests; zero means today in
	// Asia/Shanghai by Now.
	BusinessDate civil.Date
	// Today, when set, is the business date instead (a demo moving through
	// the days of the plan).
	Today func() civil.Date
	// Access is the access policy; every RPC then passes the access
	// interceptor (bearer tokens from the city's database, node client
	// certificates). Nil serves without access control: for tests that
	// put a principal in the context with their own interceptor.
	Access *access.Enforcer
	// Interceptors run on every RPC after access control, inside the error
	// interceptor (which maps every error, theirs included, to a Connect
	// code).
	Interceptors []connect.Interceptor
}

// validate checks c and fills its defaults.
func (c *Config) validate() error {
	if c.DB == "" {
		return errors.New("server: the database URL is required")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Server is a city server. Make one with New; Close it when done.
type Server struct {
	cfg     Config
	pool    *pgxpool.Pool
	store   *store.Store
	handler http.Handler
}

// New opens the city's database, applies its migrations and builds the
// handlers. It does not listen yet.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pool, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := pg.Migrate(ctx, pool, store.Migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	st := store.New(pool)
	cal, err := calendar.Embedded()
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	today := func() civil.Date { return civil.DateOf(cfg.Now()) }
	switch {
	case cfg.Today != nil:
		today = cfg.Today
	case cfg.BusinessDate != 0:
		today = func() civil.Date { return cfg.BusinessDate }
	}
	deps := &service.Deps{Store: st, Log: cfg.Log, Now: cfg.Now, Params: params, Calendar: cal, Today: today}
	metrics := rpc.NewMetrics()
	chain := []connect.Interceptor{metrics.Interceptor(), rpc.ErrorInterceptor(cfg.Log)}
	if cfg.Access != nil {
		// Tokens expire by the wall clock, not the business clock.
		chain = append(chain, authn.Interceptor(&authn.Tokens{DB: pool}, cfg.Access, cfg.Log))
	}
	opts := connect.WithInterceptors(slices.Concat(chain, cfg.Interceptors)...)

	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewSyncServiceHandler(&service.SyncService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewIntakeServiceHandler(&service.IntakeService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewPublicityServiceHandler(&service.PublicityService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewFinanceServiceHandler(&service.FinanceService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewPortalServiceHandler(&service.PortalService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewProgressServiceHandler(&service.ProgressService{Deps: deps}, opts))
	// The public portal: HTML pages, no login.
	mux.Handle(portal.Prefix, portal.Handler(portal.Config{Store: st, Today: today, Now: cfg.Now, Log: cfg.Log}))
	// The progress dashboard for city administrators: a page behind their
	// bearer tokens, so only where access control is on.
	if cfg.Access != nil {
		mux.Handle(dashboard.Prefix, dashboard.Handler(dashboard.Config{Deps: deps, Tokens: &authn.Tokens{DB: pool}, Enforcer: cfg.Access, Log: cfg.Log}))
	}
	mux.Handle(wengangv1connect.NewAuditServiceHandler(&auditrpc.Service{
		Keeps: func(domain string) error {
			if domain != store.AuditDomain {
				return fault.New(fault.ErrNotFound, "the city keeps the audit log of %q only; a county's is on its node", store.AuditDomain)
			}
			return nil
		},
		List: func(ctx context.Context, f audit.Filter) ([]audit.Entry, error) { return audit.List(ctx, pool, f) },
		Verify: func(ctx context.Context, domain string, from, to int64) (audit.Verification, error) {
			return audit.Verify(ctx, pool, domain, from, to)
		},
	}, opts))
	mux.Handle("/metrics", metrics.Handler())
	rpc.Mount(mux, wengangv1connect.SyncServiceName, wengangv1connect.IntakeServiceName, wengangv1connect.PublicityServiceName,
		wengangv1connect.FinanceServiceName, wengangv1connect.PortalServiceName, wengangv1connect.ProgressServiceName,
		wengangv1connect.AuditServiceName)
	return &Server{cfg: cfg, pool: pool, store: st, handler: mux}, nil
}

// params looks up the city's copy of policy parameters by id.
func params(id string) (refund.Params, error) { return refund.LoadParams(id) }

// Handler returns the server's HTTP handler (every service, health and
// reflection), for embedding or tests.
func (s *Server) Handler() http.Handler { return s.handler }

// Store returns the city's store.
func (s *Server) Store() *store.Store { return s.store }

// Serve serves on ln until ctx is done, then shuts down gracefully and
// returns nil (or the error that stopped it earlier).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &rpc.Server{Handler: s.handler, TLS: s.cfg.TLS, Log: s.cfg.Log}
	s.cfg.Log.LogAttrs(ctx, slog.LevelInfo, "city server listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", s.cfg.TLS != nil))
	return srv.Serve(ctx, ln)
}

// ListenAndServe listens on Config.Listen and serves as Serve does.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Close closes the database pool. Call it after Serve has returned.
func (s *Server) Close() { s.pool.Close() }
