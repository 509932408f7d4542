// Package demo runs the whole platform on one machine, the way its users
// drive it: a private PostgreSQL cluster, the city server and one county
// node per county, each a real server on loopback with its own database,
// generated source data, and the flow from import to paid driven through
// the public APIs only — with a cross-county duplicate, an objection during
// publicity and a returned payment re-issued to a corrected account.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"

	"wengang/client"
	"wengang/deploy/postgres"
	"wengang/internal/authn"
	"wengang/internal/devcert"
	"wengang/internal/gen"
	"wengang/internal/pg"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/node"
	"wengang/node/sms"
	nodesync "wengang/node/sync"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server"
)

// Options configure a demo run.
type Options struct {
	Counties  []string // default 371502, 371521, 371526
	Units     int      // per county; default 200
	Seed      int64
	ExportDir string // when set, each county's source files go to DIR/COUNTY/
	Serve     bool   // keep running until ctx is done after the flow
	WorkDir   string // for the cluster, certificates and logs; default a temp dir
	Log       *slog.Logger
	Out       io.Writer // progress lines for the person watching
}

// CountySummary is one county's figures.
type CountySummary struct {
	Units             int   `json:"units"`
	Eligible          int   `json:"eligible"`
	Hold              int   `json:"hold"`
	Ineligible        int   `json:"ineligible"`
	EligibleRefundFen int64 `json:"eligible_refund_fen"`
	ReleasedFen       int64 `json:"released_fen"`
	PaidFen           int64 `json:"paid_fen"`
	ReturnedFen       int64 `json:"returned_fen"`
	OutstandingFen    int64 `json:"-"`
}

// Summary is what a run ends with (--summary-json).
type Summary struct {
	AsOf     string                    `json:"as_of"`
	Counties map[string]*CountySummary `json:"counties"`
	Portal   string                    `json:"-"`
}

// The business calendar of the demo: the data date, the start of publicity,
// the day after it ends (release) and the day payments are made.
var (
	asOf         = civil.MustDate(2022, 4, 28)
	publicityDay = civil.MustDate(2022, 5, 5)
	releaseDay   = civil.MustDate(2022, 5, 11)
	paidDay      = civil.MustDate(2022, 5, 12)
)

// businessDate is the city's "today", moved forward by the demo as the
// days of the plan pass.
type businessDate struct{ d atomic.Int32 }

func (b *businessDate) get() civil.Date  { return civil.Date(b.d.Load()) }
func (b *businessDate) set(d civil.Date) { b.d.Store(int32(d)) }

func (o *Options) defaults() {
	if len(o.Counties) == 0 {
		o.Counties = []string{"371502", "371521", "371526"}
	}
	if o.Units <= 0 {
		o.Units = 200
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// run is one demo: its servers, databases and tokens.
type run struct {
	o        Options
	ctx      context.Context
	dir      string
	cluster  *postgres.Cluster
	certs    devcert.Files
	enforcer *access.Enforcer
	today    businessDate
	stops    []func()

	city     *server.Server
	cityURL  string
	nodeURLs map[string]string // by county
	nodeDBs  map[string]string
	tokens   map[string]string // by "role@domain"
	summary  *Summary
}

func (r *run) say(format string, args ...any) { fmt.Fprintf(r.o.Out, format+"\n", args...) }

// Run runs the demo and returns its summary.
func Run(ctx context.Context, o Options) (sum *Summary, err error) {
	o.defaults()
	r := &run{o: o, ctx: ctx, nodeURLs: map[string]string{}, nodeDBs: map[string]string{}, tokens: map[string]string{},
		summary: &Summary{AsOf: asOf.String(), Counties: map[string]*CountySummary{}}}
	r.today.set(asOf)
	defer func() {
		for i := len(r.stops) - 1; i >= 0; i-- {
			r.stops[i]()
		}
	}()
	if err := r.start(); err != nil {
		return nil, err
	}
	if err := r.counties(); err != nil {
		return nil, err
	}
	if err := r.cityFlow(); err != nil {
		return nil, err
	}
	r.summary.Portal = r.cityURL + "/portal/"
	if o.Serve {
		r.say("serving: portal %s (Ctrl-C to stop)", r.summary.Portal)
		<-ctx.Done()
	}
	return r.summary, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start brings up the cluster, the certificates, the city and the nodes.
func (r *run) start() error {
	var err error
	r.dir = r.o.WorkDir
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "wengang-demo-"); err != nil {
			return err
		}
		// As root, the cluster runs as the postgres user, who must be able
		// to reach its directory inside this one.
		if err := os.Chmod(r.dir, 0o755); err != nil {
			return err
		}
		r.stops = append(r.stops, func() { os.RemoveAll(r.dir) })
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	r.say("starting a private PostgreSQL cluster (私有数据库集群)…")
	pglog, err := os.Create(filepath.Join(r.dir, "cluster.log"))
	if err != nil {
		return err
	}
	defer pglog.Close()
	if r.cluster, err = postgres.Start(r.ctx, filepath.Join(r.dir, "pg"), port, true, pglog); err != nil {
		return fmt.Errorf("%w (see %s)", err, pglog.Name())
	}
	r.stops = append(r.stops, func() { r.cluster.Stop() })
	nodes := make([]devcert.Node, 0, len(r.o.Counties))
	for _, c := range r.o.Counties {
		nodes = append(nodes, devcert.Node{Name: "node-" + c, Counties: []string{c}})
	}
	if r.certs, err = devcert.Generate(filepath.Join(r.dir, "certs"), devcert.Options{Nodes: nodes}); err != nil {
		return err
	}
	if r.enforcer, err = access.New(); err != nil {
		return err
	}
	admin, err := pg.Open(r.ctx, r.cluster.URL)
	if err != nil {
		return err
	}
	defer admin.Close()
	for _, name := range append([]string{"city"}, r.o.Counties...) {
		if _, err := admin.Exec(r.ctx, "CREATE DATABASE "+pgx.Identifier{"wengang_" + name}.Sanitize()); err != nil {
			return fmt.Errorf("demo: create database for %s: %w", name, err)
		}
	}
	if err := r.startCity(); err != nil {
		return err
	}
	for _, c := range r.o.Counties {
		if err := r.startNode(c); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) serve(what string, serve func(context.Context, net.Listener) error) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
			r.o.Log.Error("server stopped", "server", what, "err", err)
		}
	}()
	r.stops = append(r.stops, func() { cancel(); wg.Wait() })
	return ln.Addr().String(), nil
}

func (r *run) startCity() error {
	tlsCfg, err := rpc.ServerTLS(r.certs.City, r.certs.CityKey, r.certs.CA)
	if err != nil {
		return err
	}
	db := r.cluster.Database("wengang_city")
	r.city, err = server.New(r.ctx, server.Config{DB: db, TLS: tlsCfg, Log: r.o.Log, Access: r.enforcer, Today: r.today.get})
	if err != nil {
		return err
	}
	r.stops = append(r.stops, r.city.Close)
	addr, err := r.serve("city", r.city.Serve)
	if err != nil {
		return err
	}
	r.cityURL = "https://" + addr
	for _, t := range []struct{ role, name string }{
		{access.RoleCityAdmin, "市级管理员 孙七"}, {access.RoleCityApprover, "市级审批 周八"}, {access.RoleFinance, "财政直连系统"},
	} {
		if err := r.token(db, t.role, access.DomainCity, t.name); err != nil {
			return err
		}
	}
	r.say("city server on %s (市级服务)", r.cityURL)
	return nil
}

func (r *run) startNode(county string) error {
	nf := r.certs.Nodes["node-"+county]
	ctls, err := rpc.ClientTLS(r.certs.CA, nf.Client, nf.ClientKey)
	if err != nil {
		return err
	}
	city, closer, err := nodesync.Dial(r.cityURL, ctls)
	if err != nil {
		return err
	}
	r.stops = append(r.stops, func() { closer.Close() })
	db := r.cluster.Database("wengang_" + county)
	gw := &sms.FileGateway{Path: filepath.Join(r.dir, "sms-"+county+".jsonl"), Log: r.o.Log}
	n, err := node.New(r.ctx, node.Config{DB: db, Counties: []string{county}, Log: r.o.Log, Access: r.enforcer,
		Phones: map[string]string{county: "0635-12333"}, SMS: gw, City: city, SyncInterval: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	r.stops = append(r.stops, n.Close)
	addr, err := r.serve("node "+county, n.Serve)
	if err != nil {
		return err
	}
	r.nodeURLs[county], r.nodeDBs[county] = "http://"+addr, db
	for _, t := range []struct{ role, name string }{{access.RoleCountyClerk, "经办 " + county}, {access.RoleCountyReviewer, "复核 " + county}} {
		if err := r.token(db, t.role, county, t.name); err != nil {
			return err
		}
	}
	r.say("county node %s on %s (县级节点)", county, r.nodeURLs[county])
	return nil
}

// token creates a bearer token as `wengang token create` does.
func (r *run) token(db, role, domain, name string) error {
	pool, err := pg.Open(r.ctx, db)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, secret, err := (&authn.Tokens{DB: pool}).Create(r.ctx, role, domain, name, 24*time.Hour)
	if err != nil {
		return err
	}
	r.tokens[role+"@"+domain] = secret
	return nil
}

func (r *run) node(county, role string) (*client.Node, error) {
	return client.NewNode(r.nodeURLs[county], client.Options{Token: r.tokens[role+"@"+county]})
}

// eventually polls cond until it holds or a minute passes.
func eventually(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: timed out waiting until %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// counties generates and exports each county's data (one enterprise in
// two counties' data: the cross-county duplicate), and drives each county
// from import to a batch delivered to the city.
func (r *run) counties() error {
	sets := map[string]*refund.Dataset{}
	for i, c := range r.o.Counties {
		ds, err := gen.Generate(gen.Config{Counties: []string{c}, Units: r.o.Units, Seed: r.o.Seed + int64(i)})
		if err != nil {
			return err
		}
		sets[c] = ds
	}
	if len(r.o.Counties) > 1 {
		duplicate(sets[r.o.Counties[0]], sets[r.o.Counties[1]], r.o.Counties[1])
	}
	exportDir := r.o.ExportDir
	if exportDir == "" {
		exportDir = filepath.Join(r.dir, "data")
	}
	for _, c := range r.o.Counties {
		dir := filepath.Join(exportDir, c)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := gen.Write(dir, sets[c], gen.Format{Seed: r.o.Seed}); err != nil {
			return err
		}
		if err := r.county(c, dir); err != nil {
			return fmt.Errorf("county %s: %w", c, err)
		}
	}
	return nil
}

// duplicate copies the first unit of from that the rules find eligible
// into to, as a unit of county: one enterprise, two counties' data.
func duplicate(from, to *refund.Dataset, county string) {
	rs, err := refund.Screen(from, refund.DefaultParams(), asOf)
	if err != nil {
		return
	}
	for _, res := range rs {
		if res.Decision != refund.Eligible {
			continue
		}
		for _, u := range from.Units {
			if u.USCC == res.USCC {
				u.County = county
				to.Units = append(to.Units, u)
			}
		}
		for _, c := range from.Contributions {
			if c.USCC == res.USCC {
				to.Contributions = append(to.Contributions, c)
			}
		}
		for _, a := range from.Accounts {
			if a.USCC == res.USCC {
				to.Accounts = append(to.Accounts, a)
			}
		}
		return
	}
}

func (r *run) county(county, dir string) error {
	ctx := r.ctx
	clerk, err := r.node(county, access.RoleCountyClerk)
	if err != nil {
		return err
	}
	for _, kind := range []string{"units", "contributions", "accounts", "exclusions"} {
		if _, err := clerk.Upload(ctx, county, "2022-04", filepath.Join(dir, kind+".csv"), client.NewKey()); err != nil {
			return fmt.Errorf("import %s: %w", kind, err)
		}
	}
	run, err := clerk.Screening.RunScreening(ctx, connect.NewRequest(&wengangv1.RunScreeningRequest{County: county,
		Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: "2022-04"}, AsOf: protoconv.Date(asOf), IdempotencyKey: client.NewKey()}))
	if err != nil {
		return fmt.Errorf("screen: %w", err)
	}
	s := run.Msg.GetScreening()
	t := s.GetScreened()
	r.summary.Counties[county] = &CountySummary{Units: int(t.GetUnitCount()), Eligible: int(t.GetEligible().GetCount()),
		Hold: int(t.GetHold().GetCount()), Ineligible: int(t.GetIneligible().GetCount()), EligibleRefundFen: t.GetEligible().GetAmountFen()}
	if _, err := clerk.Notification.NotifyUnits(ctx, connect.NewRequest(&wengangv1.NotifyUnitsRequest{County: county, ScreeningId: s.GetScreeningId()})); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	seal, err := clerk.Batch.SealBatch(ctx, connect.NewRequest(&wengangv1.SealBatchRequest{County: county, ScreeningId: s.GetScreeningId(), IdempotencyKey: client.NewKey()}))
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	id := seal.Msg.GetBatch().GetBatchId()
	err = eventually(ctx, "batch "+id+" is delivered", func() (bool, error) {
		b, err := clerk.Batch.GetBatch(ctx, connect.NewRequest(&wengangv1.GetBatchRequest{County: county, BatchId: id}))
		if err != nil {
			return false, err
		}
		if b.Msg.GetBatch().GetState() == wengangv1.BatchState_BATCH_STATE_REFUSED {
			return false, fmt.Errorf("the city refused batch %s: %s", id, b.Msg.GetBatch().GetLastPushError())
		}
		return b.Msg.GetBatch().GetState() == wengangv1.BatchState_BATCH_STATE_DELIVERED, nil
	})
	if err != nil {
		return err
	}
	r.say("%s: %d units screened, %d eligible; batch %s (%d units) delivered to the city", county,
		t.GetUnitCount(), t.GetEligible().GetCount(), id, seal.Msg.GetBatch().GetItemCount())
	return nil
}
