// Package node is the county node: one process serving one or more
// counties (tenants) from its own PostgreSQL database. It serves the
// node's RPC services (Connect, gRPC and gRPC-Web on one port, h2c or TLS)
// with health and reflection, runs the SMS sender and the sync worker that
// pushes sealed batches to the city and pulls the city's decisions back.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/authn"
	"wengang/internal/pg"
	"wengang/internal/rpc"
	"wengang/node/service"
	"wengang/node/sms"
	"wengang/node/store"
	nodesync "wengang/node/sync"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/county"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// Config is everything a node needs; main fills it from flags.
type Config struct {
	DB       string   // PostgreSQL URL of the node's own database
	Counties []string // the counties (tenants) served
	TLS      *tls.Config
	Log      *slog.Logger
	Now      func() time.Time
	// Phones gives each county's agency phone for SMS texts.
	Phones map[string]string
	// Access is the access policy; every RPC then passes the access
	// interceptor (tokens from the node's database). Nil serves without
	// access control: for tests that put a principal in the context with
	// their own interceptor.
	Access *access.Enforcer
	// Interceptors run on every RPC after access control, inside the error
	// interceptor (which maps every error, theirs included, to a Connect
	// code).
	Interceptors []connect.Interceptor
	// SMS is the gateway of the SMS sender; nil runs no sender (messages
	// wait in the outbox).
	SMS sms.Gateway
	// City is the city's sync service; nil runs no sync worker (batches
	// wait in the outbox).
	City nodesync.CityClient
	// SyncInterval is how often the sync worker looks for work when not
	// woken; zero means its default.
	SyncInterval time.Duration
}

func (c *Config) validate() error {
	var errs []error
	if c.DB == "" {
		errs = append(errs, errors.New("node: a database URL is required (--db)"))
	}
	if len(c.Counties) == 0 {
		errs = append(errs, errors.New("node: at least one county is required (--counties)"))
	}
	reg := county.NewRegistry(county.Liaocheng())
	for _, code := range c.Counties {
		if n, err := reg.Normalize(code); err != nil || n != code {
			errs = append(errs, fmt.Errorf("node: county %q is not a county code", code))
		}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

// Node is a running county node.
type Node struct {
	cfg     Config
	pool    *pgxpool.Pool
	Store   *store.Store
	handler http.Handler
	workers []func(context.Context) error
}

// New opens the database, applies the migrations and builds the services.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pool, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if err := pg.Migrate(ctx, pool, store.Migrations); err != nil {
		pool.Close()
		return nil, err
	}
	cal, err := calendar.Embedded()
	if err != nil {
		pool.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, pool: pool, Store: store.New(pool)}
	deps := &service.Deps{
		Store: n.Store, Log: cfg.Log, Now: cfg.Now, Counties: slices.Clone(cfg.Counties),
		Calendar: cal, Params: service.DefaultParams,
	}
	notify := &service.NotificationService{Deps: deps, Phones: cfg.Phones}
	batches := &service.BatchService{Deps: deps}
	if cfg.SMS != nil {
		sender := &sms.Sender{Outbox: n.Store, Gateway: cfg.SMS, Log: cfg.Log, Now: cfg.Now}
		notify.Kick = sender.Kick
		n.workers = append(n.workers, sender.Run)
	}
	if cfg.City != nil {
		worker := &nodesync.Worker{Store: n.Store, City: cfg.City, Log: cfg.Log, Now: cfg.Now,
			Counties: slices.Clone(cfg.Counties), Interval: cfg.SyncInterval}
		batches.Kick = worker.Kick
		n.workers = append(n.workers, worker.Run)
	}
	metrics := rpc.NewMetrics()
	chain := []connect.Interceptor{metrics.Interceptor(), rpc.ErrorInterceptor(cfg.Log)}
	if cfg.Access != nil {
		// Tokens expire by the wall clock, not the business clock.
		chain = append(chain, authn.Interceptor(&authn.Tokens{DB: pool}, cfg.Access, cfg.Log))
	}
	opts := connect.WithInterceptors(append(chain, cfg.Interceptors...)...)
	mux := http.NewServeMux()
	// A chunk of an upload is at most 1 MiB (import.proto); bound every
	// message read so that no client makes the node buffer more.
	mux.Handle(wengangv1connect.NewImportServiceHandler(&service.ImportService{Deps: deps}, opts, connect.WithReadMaxBytes(2<<20)))
	mux.Handle(wengangv1connect.NewScreeningServiceHandler(&service.ScreeningService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewReviewServiceHandler(&service.ReviewService{Deps: deps}, opts))
	mux.Handle(wengangv1connect.NewNotificationServiceHandler(notify, opts))
	mux.Handle(wengangv1connect.NewBatchServiceHandler(batches, opts))
	mux.Handle(wengangv1connect.NewAuditServiceHandler(service.NewAuditService(deps), opts))
	mux.Handle("/metrics", metrics.Handler())
	rpc.Mount(mux,
		wengangv1connect.ImportServiceName, wengangv1connect.ScreeningServiceName, wengangv1connect.ReviewServiceName,
		wengangv1connect.NotificationServiceName, wengangv1connect.BatchServiceName, wengangv1connect.AuditServiceName)
	n.handler = mux
	return n, nil
}

// Serve serves RPCs on ln and runs the workers until ctx is done, then
// shuts down gracefully. It returns the first error of the server or a
// worker.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(n.workers)+1)
	for _, w := range n.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		}()
	}
	n.cfg.Log.Info("node serving", "addr", ln.Addr().String(), "counties", n.cfg.Counties, "tls", n.cfg.TLS != nil)
	srv := &rpc.Server{Handler: n.handler, TLS: n.cfg.TLS, Log: n.cfg.Log}
	if err := srv.Serve(ctx, ln); err != nil {
		errs <- err
	}
	cancel()
	wg.Wait()
	close(errs)
	return <-errs
}

// Close releases the database pool.
func (n *Node) Close() { n.pool.Close() }
