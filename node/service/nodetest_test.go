package service

// Test support of the import, screening, review and audit tests (prefix
// nc): a node's four services on a real PostgreSQL database, served over
// h2c on loopback by rpc.Server, called through the generated Connect
// clients (gRPC protocol, as the CLI calls them) in the name of a chosen
// principal.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/node/store"
	"wengang/policy/access"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

const (
	ncCounty      = "371502"
	ncOtherCounty = "371521"
)

// ncNode is a running node of the tests.
type ncNode struct {
	t     testing.TB
	url   string
	pool  *pgxpool.Pool
	store *store.Store
	deps  *Deps
	http  *http.Client
}

// ncPrincipalHeader carries the test's principal: subject, name and role
// separated by '|'.
const ncPrincipalHeader = "X-Wengang-Test-Principal"

// ncStart starts a node serving counties (default: ncCounty and
// ncOtherCounty) on a fresh database; it stops when t ends.
func ncStart(t testing.TB, counties ...string) *ncNode {
	t.Helper()
	if len(counties) == 0 {
		counties = []string{ncCounty, ncOtherCounty}
	}
	pool := pgtest.NewDB(t, store.Migrations)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	deps := &Deps{Store: store.New(pool), Log: log, Now: time.Now, Counties: counties, Params: DefaultParams}
	opts := connect.WithInterceptors(ncPrincipalInterceptor{}, rpc.ErrorInterceptor(log))
	mux := http.NewServeMux()
	mux.Handle(wengangv1connect.NewImportServiceHandler(&ImportService{deps}, opts, connect.WithReadMaxBytes(2<<20)))
	mux.Handle(wengangv1connect.NewScreeningServiceHandler(&ScreeningService{deps}, opts))
	mux.Handle(wengangv1connect.NewReviewServiceHandler(&ReviewService{deps}, opts))
	mux.Handle(wengangv1connect.NewAuditServiceHandler(NewAuditService(deps), opts))

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
	return &ncNode{t: t, url: "http://" + ln.Addr().String(), pool: pool, store: deps.Store, deps: deps, http: &http.Client{Transport: tr}}
}

// ncClients are the node's clients in the name of one principal.
type ncClients struct {
	Import    wengangv1connect.ImportServiceClient
	Screening wengangv1connect.ScreeningServiceClient
	Review    wengangv1connect.ReviewServiceClient
	Audit     wengangv1connect.AuditServiceClient
}

// as returns clients acting as the person subject (named name) with role.
func (n *ncNode) as(subject, name, role string) ncClients {
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithInterceptors(ncPrincipalClient(subject + "|" + name + "|" + role))}
	return ncClients{
		Import:    wengangv1connect.NewImportServiceClient(n.http, n.url, opts...),
		Screening: wengangv1connect.NewScreeningServiceClient(n.http, n.url, opts...),
		Review:    wengangv1connect.NewReviewServiceClient(n.http, n.url, opts...),
		Audit:     wengangv1connect.NewAuditServiceClient(n.http, n.url, opts...),
	}
}

// clerk and reviewer are the two people of the tests.
func (n *ncNode) clerk() ncClients    { return n.as("tok-clerk", "王经办", "county_clerk") }
func (n *ncNode) reviewer() ncClients { return n.as("tok-reviewer", "李复核", "county_reviewer") }

// ncPrincipalInterceptor stands in for the access interceptor: it puts the
// principal the test header names into the context.
type ncPrincipalInterceptor struct{}

func ncPrincipalOf(h http.Header) access.Principal {
	parts := strings.SplitN(h.Get(ncPrincipalHeader), "|", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return access.Principal{Kind: access.KindPerson, Subject: parts[0], Name: parts[1], Role: parts[2], Domain: ncCounty}
}

func (ncPrincipalInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		return next(access.WithPrincipal(ctx, ncPrincipalOf(req.Header())), req)
	}
}

func (ncPrincipalInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (ncPrincipalInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(access.WithPrincipal(ctx, ncPrincipalOf(conn.RequestHeader())), conn)
	}
}

// ncPrincipalClient sets the test header on every request.
type ncPrincipalClient string

func (p ncPrincipalClient) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set(ncPrincipalHeader, string(p))
		return next(ctx, req)
	}
}

func (p ncPrincipalClient) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set(ncPrincipalHeader, string(p))
		return conn
	}
}

func (p ncPrincipalClient) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// ncUpload is one file to import.
type ncUpload struct {
	county, dataset, fileName string
	kind                      wengangv1.SourceFileKind
	data                      []byte
	key                       string
	chunk                     int // chunk size; 0 means 64 KiB
}

// ncImport streams u through the Import RPC and returns the answer.
func ncImport(ctx context.Context, c ncClients, u ncUpload) (*wengangv1.ImportResponse, error) {
	if u.county == "" {
		u.county = ncCounty
	}
	if u.chunk == 0 {
		u.chunk = 64 << 10
	}
	sum := sha256.Sum256(u.data)
	stream := c.Import.Import(ctx)
	err := stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{
		County: u.county, Dataset: u.dataset, Kind: u.kind, FileName: u.fileName, IdempotencyKey: u.key,
		Sha256: hex.EncodeToString(sum[:]),
	}}})
	for data := u.data; err == nil && len(data) > 0; {
		k := min(u.chunk, len(data))
		err = stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Chunk{Chunk: data[:k]}})
		data = data[k:]
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// ncKinds maps the file names of a directory of source files to kinds.
var ncKinds = map[string]wengangv1.SourceFileKind{
	"units":         wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS,
	"contributions": wengangv1.SourceFileKind_SOURCE_FILE_KIND_CONTRIBUTIONS,
	"accounts":      wengangv1.SourceFileKind_SOURCE_FILE_KIND_ACCOUNTS,
	"exclusions":    wengangv1.SourceFileKind_SOURCE_FILE_KIND_EXCLUSIONS,
}

// ncImportDir imports the four files of dir (.csv or .xlsx) into dataset
// of county, failing t on any error.
func ncImportDir(t testing.TB, c ncClients, county, dir, dataset string) []*wengangv1.ImportResponse {
	t.Helper()
	var out []*wengangv1.ImportResponse
	for _, base := range []string{"units", "contributions", "accounts", "exclusions"} {
		path := filepath.Join(dir, base+".csv")
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(dir, base+".xlsx")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := ncImport(context.Background(), c, ncUpload{county: county, dataset: dataset, fileName: filepath.Base(path), kind: ncKinds[base], data: data})
		if err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
		out = append(out, res)
	}
	return out
}

// ncExport returns a screening's exported file.
func ncExport(t testing.TB, c ncClients, req *wengangv1.ExportResultsRequest) []byte {
	t.Helper()
	stream, err := c.Screening.ExportResults(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var buf bytes.Buffer
	for stream.Receive() {
		buf.Write(stream.Msg().GetChunk())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

// ncCode returns the Connect code of err (0 for nil).
func ncCode(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

// ncWantCode fails t unless err has code want.
func ncWantCode(t testing.TB, err error, want connect.Code) {
	t.Helper()
	if got := ncCode(err); got != want {
		t.Fatalf("got %v (%v), want code %v", got, err, want)
	}
}
