package authn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"wengang/client"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"wengang/internal/devcert"
	"wengang/internal/pgtest"
	"wengang/internal/rpc"
	"wengang/policy/access"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// server is a city-or-node server on loopback: HTTPS with HTTP/2, the
// development CA's certificate, client certificates verified when given,
// and handlers that record what reached them.
type server struct {
	url   string
	certs devcert.Files
	calls sync.Map // procedure → *atomic.Int64

	mu        sync.Mutex
	principal access.Principal // as the last handler saw it
	imported  []byte           // chunks the last Import received
	header    *wengangv1.ImportHeader
}

func (s *server) called(procedure string) int64 {
	v, _ := s.calls.LoadOrStore(procedure, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (s *server) record(ctx context.Context, procedure string) {
	v, _ := s.calls.LoadOrStore(procedure, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	p, _ := access.PrincipalFrom(ctx)
	s.mu.Lock()
	s.principal = p
	s.mu.Unlock()
}

func schema(procedure string) connect.HandlerOption {
	// "/wengang.v1.Service/Method" names "wengang.v1.Service.Method".
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(procedure, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		panic(err)
	}
	return connect.WithSchema(d.(protoreflect.MethodDescriptor))
}

func unary[Req, Res any](s *server, mux *http.ServeMux, procedure string, opts connect.HandlerOption) {
	mux.Handle(procedure, connect.NewUnaryHandler(procedure, func(ctx context.Context, _ *connect.Request[Req]) (*connect.Response[Res], error) {
		s.record(ctx, procedure)
		return connect.NewResponse(new(Res)), nil
	}, opts, schema(procedure)))
}

func newServer(t *testing.T, tokens Lookuper) *server {
	t.Helper()
	s := &server{}
	dir := filepath.Join(t.TempDir(), "certs")
	files, err := devcert.Generate(dir, devcert.Options{Nodes: []devcert.Node{
		{Name: "node1", Counties: []string{"371502"}},
		{Name: "node2", Counties: []string{"371521", "371526"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.certs = files
	enforcer, err := access.New()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := connect.WithInterceptors(rpc.ErrorInterceptor(log), Interceptor(tokens, enforcer, log))

	mux := http.NewServeMux()
	unary[wengangv1.ListDatasetsRequest, wengangv1.ListDatasetsResponse](s, mux, wengangv1connect.ImportServiceListDatasetsProcedure, opts)
	unary[wengangv1.PushBatchRequest, wengangv1.PushBatchResponse](s, mux, wengangv1connect.SyncServicePushBatchProcedure, opts)
	unary[wengangv1.PullDecisionsRequest, wengangv1.PullDecisionsResponse](s, mux, wengangv1connect.SyncServicePullDecisionsProcedure, opts)
	unary[wengangv1.ListPublicityRequest, wengangv1.ListPublicityResponse](s, mux, wengangv1connect.PortalServiceListPublicityProcedure, opts)
	unary[wengangv1.CreateRoundRequest, wengangv1.CreateRoundResponse](s, mux, wengangv1connect.PublicityServiceCreateRoundProcedure, opts)
	imp := wengangv1connect.ImportServiceImportProcedure
	mux.Handle(imp, connect.NewClientStreamHandler(imp, func(ctx context.Context, st *connect.ClientStream[wengangv1.ImportRequest]) (*connect.Response[wengangv1.ImportResponse], error) {
		s.record(ctx, imp)
		var header *wengangv1.ImportHeader
		var data []byte
		for st.Receive() {
			if h := st.Msg().GetHeader(); h != nil {
				header = h
			}
			data = append(data, st.Msg().GetChunk()...)
		}
		if err := st.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.header, s.imported = header, data
		s.mu.Unlock()
		return connect.NewResponse(&wengangv1.ImportResponse{}), nil
	}, opts, schema(imp)))
	exp := wengangv1connect.ScreeningServiceExportResultsProcedure
	mux.Handle(exp, connect.NewServerStreamHandler(exp, func(ctx context.Context, req *connect.Request[wengangv1.ExportResultsRequest], st *connect.ServerStream[wengangv1.ExportResultsResponse]) error {
		s.record(ctx, exp)
		return st.Send(&wengangv1.ExportResultsResponse{Chunk: []byte(req.Msg.GetCounty())})
	}, opts, schema(exp)))

	var notH2 atomic.Int64
	ts := httptest.NewUnstartedServer(rpc.WithTLSState(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			notH2.Add(1)
		}
		mux.ServeHTTP(w, r)
	})))
	ts.EnableHTTP2 = true
	cfg, err := rpc.ServerTLS(files.City, files.CityKey, files.CA)
	if err != nil {
		t.Fatal(err)
	}
	ts.TLS = cfg
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		if n := notH2.Load(); n > 0 {
			t.Errorf("%d requests were not HTTP/2", n)
		}
	})
	s.url = ts.URL
	return s
}

// client returns an HTTP/2 client trusting the development CA and, when
// certFile is set, presenting that client certificate.
func (s *server) client(t *testing.T, certFile, keyFile string) *http.Client {
	t.Helper()
	cfg, err := rpc.ClientTLS(s.certs.CA, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
}

func bearerOpt(token string) connect.ClientOption {
	if token == "" {
		return connect.WithInterceptors()
	}
	return connect.WithInterceptors(client.Bearer(token))
}

func code(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

func TestInterceptor(t *testing.T) {
	db := pgtest.NewDB(t, migrations)
	ctx := context.Background()
	tokens := &Tokens{DB: db}
	s := newServer(t, tokens)

	mint := func(ts *Tokens, role, domain string, ttl time.Duration) (Token, string) {
		t.Helper()
		tk, secret, err := ts.Create(ctx, role, domain, role+"@"+domain, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tk, secret
	}
	clerkTok, clerk := mint(tokens, access.RoleCountyClerk, "371502", time.Hour)
	_, cityAdmin := mint(tokens, access.RoleCityAdmin, access.DomainCity, time.Hour)
	_, expired := mint(&Tokens{DB: db, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}, access.RoleCountyClerk, "371502", time.Hour)
	revokedTok, revoked := mint(tokens, access.RoleCountyClerk, "371502", time.Hour)
	if _, err := tokens.Revoke(ctx, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	forged := TokenPrefix + "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"

	plain := s.client(t, "", "")
	node1 := s.client(t, s.certs.Nodes["node1"].Client, s.certs.Nodes["node1"].ClientKey)
	node2 := s.client(t, s.certs.Nodes["node2"].Client, s.certs.Nodes["node2"].ClientKey)

	listDatasets := func(hc *http.Client, token, county string) error {
		c := wengangv1connect.NewImportServiceClient(hc, s.url, bearerOpt(token))
		_, err := c.ListDatasets(ctx, connect.NewRequest(&wengangv1.ListDatasetsRequest{County: county}))
		return err
	}
	pushBatch := func(hc *http.Client, token, county string, opts ...connect.ClientOption) error {
		c := wengangv1connect.NewSyncServiceClient(hc, s.url, append(opts, bearerOpt(token))...)
		_, err := c.PushBatch(ctx, connect.NewRequest(&wengangv1.PushBatchRequest{Batch: &wengangv1.BatchContent{BatchId: county + "-000001", County: county}}))
		return err
	}
	pullDecisions := func(hc *http.Client, counties ...string) error {
		c := wengangv1connect.NewSyncServiceClient(hc, s.url, connect.WithGRPC())
		_, err := c.PullDecisions(ctx, connect.NewRequest(&wengangv1.PullDecisionsRequest{Counties: counties}))
		return err
	}
	listPublicity := func(hc *http.Client, token string) error {
		c := wengangv1connect.NewPortalServiceClient(hc, s.url, bearerOpt(token), connect.WithGRPCWeb())
		_, err := c.ListPublicity(ctx, connect.NewRequest(&wengangv1.ListPublicityRequest{County: "371502"}))
		return err
	}
	createRound := func(hc *http.Client, token string) error {
		c := wengangv1connect.NewPublicityServiceClient(hc, s.url, bearerOpt(token))
		_, err := c.CreateRound(ctx, connect.NewRequest(&wengangv1.CreateRoundRequest{Title: "第一批"}))
		return err
	}

	for _, tc := range []struct {
		name      string
		call      func() error
		procedure string
		want      connect.Code // 0: success
	}{
		{"clerk in own county", func() error { return listDatasets(plain, clerk, "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, 0},
		{"clerk in another county", func() error { return listDatasets(plain, clerk, "371521") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodePermissionDenied},
		{"clerk naming no county", func() error { return listDatasets(plain, clerk, "") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodeInvalidArgument},
		{"clerk pushing a batch", func() error { return pushBatch(plain, clerk, "371502") }, wengangv1connect.SyncServicePushBatchProcedure, connect.CodePermissionDenied},
		{"clerk creating a round", func() error { return createRound(plain, clerk) }, wengangv1connect.PublicityServiceCreateRoundProcedure, connect.CodePermissionDenied},
		{"city admin reading a county", func() error { return listDatasets(plain, cityAdmin, "371521") }, wengangv1connect.ImportServiceListDatasetsProcedure, 0},
		{"city admin creating a round", func() error { return createRound(plain, cityAdmin) }, wengangv1connect.PublicityServiceCreateRoundProcedure, 0},
		{"no token", func() error { return listDatasets(plain, "", "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodeUnauthenticated},
		{"forged token", func() error { return listDatasets(plain, forged, "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodeUnauthenticated},
		{"malformed token", func() error { return listDatasets(plain, "hunter2", "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodeUnauthenticated},
		{"expired token", func() error { return listDatasets(plain, expired, "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodeUnauthenticated},
		{"revoked token", func() error { return listDatasets(plain, revoked, "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodeUnauthenticated},
		{"anonymous portal", func() error { return listPublicity(plain, "") }, wengangv1connect.PortalServiceListPublicityProcedure, 0},
		{"clerk on the portal", func() error { return listPublicity(plain, clerk) }, wengangv1connect.PortalServiceListPublicityProcedure, 0},
		{"anonymous round", func() error { return createRound(plain, "") }, wengangv1connect.PublicityServiceCreateRoundProcedure, connect.CodeUnauthenticated},
		{"anonymous push", func() error { return pushBatch(plain, "", "371502") }, wengangv1connect.SyncServicePushBatchProcedure, connect.CodeUnauthenticated},
		{"node pushes its county", func() error { return pushBatch(node1, "", "371502") }, wengangv1connect.SyncServicePushBatchProcedure, 0},
		{"node pushes its county over gRPC", func() error { return pushBatch(node2, "", "371526", connect.WithGRPC()) }, wengangv1connect.SyncServicePushBatchProcedure, 0},
		{"node pushes another county", func() error { return pushBatch(node1, "", "371521") }, wengangv1connect.SyncServicePushBatchProcedure, connect.CodePermissionDenied},
		{"node pulls its counties", func() error { return pullDecisions(node2) }, wengangv1connect.SyncServicePullDecisionsProcedure, 0},
		{"node pulls another county too", func() error { return pullDecisions(node2, "371521", "371502") }, wengangv1connect.SyncServicePullDecisionsProcedure, connect.CodePermissionDenied},
		{"node lists datasets", func() error { return listDatasets(node1, "", "371502") }, wengangv1connect.ImportServiceListDatasetsProcedure, connect.CodePermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.called(tc.procedure)
			err := tc.call()
			if got := code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
			ran := s.called(tc.procedure) - before
			if tc.want == 0 && ran != 1 || tc.want != 0 && ran != 0 {
				t.Fatalf("handler ran %d times", ran)
			}
		})
	}

	t.Run("handler sees the principal", func(t *testing.T) {
		if err := listDatasets(plain, clerk, "371502"); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		p := s.principal
		s.mu.Unlock()
		if p.Subject != clerkTok.Subject() || p.Role != access.RoleCountyClerk || p.Domain != "371502" || p.Kind != access.KindPerson {
			t.Fatalf("principal = %+v", p)
		}
		if err := pushBatch(node2, "", "371521"); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		p = s.principal
		s.mu.Unlock()
		if p.Kind != access.KindNode || p.Subject != "node2" || p.Role != access.RoleNode || len(p.Counties) != 2 {
			t.Fatalf("node principal = %+v", p)
		}
	})

	t.Run("a certificate from another CA is refused", func(t *testing.T) {
		other, err := devcert.Generate(filepath.Join(t.TempDir(), "other"), devcert.Options{Nodes: []devcert.Node{{Name: "node1", Counties: []string{"371502"}}}})
		if err != nil {
			t.Fatal(err)
		}
		hc := s.client(t, other.Nodes["node1"].Client, other.Nodes["node1"].ClientKey)
		before := s.called(wengangv1connect.SyncServicePushBatchProcedure)
		if err := pushBatch(hc, "", "371502"); err == nil {
			t.Fatal("a certificate of another CA pushed a batch")
		}
		if s.called(wengangv1connect.SyncServicePushBatchProcedure) != before {
			t.Fatal("handler ran")
		}
	})

	importFile := func(token, county string, chunks ...string) error {
		c := wengangv1connect.NewImportServiceClient(plain, s.url, bearerOpt(token))
		st := c.Import(ctx)
		if err := st.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{
			County: county, Dataset: "2022-04", Kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, FileName: "units.csv"}}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for _, ch := range chunks {
			if err := st.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Chunk{Chunk: []byte(ch)}}); err != nil {
				break // the server answered; CloseAndReceive has it
			}
		}
		_, err := st.CloseAndReceive()
		return err
	}

	t.Run("import into another county is refused before the handler", func(t *testing.T) {
		before := s.called(wengangv1connect.ImportServiceImportProcedure)
		err := importFile(clerk, "371521", "uscc,name\n", "91440300708461136T,甲\n")
		if code(err) != connect.CodePermissionDenied {
			t.Fatalf("Import = %v, want permission denied", err)
		}
		if s.called(wengangv1connect.ImportServiceImportProcedure) != before {
			t.Fatal("the Import handler ran")
		}
	})

	t.Run("import into own county reaches the handler whole", func(t *testing.T) {
		before := s.called(wengangv1connect.ImportServiceImportProcedure)
		if err := importFile(clerk, "371502", "uscc,name\n", "91440300708461136T,甲\n"); err != nil {
			t.Fatal(err)
		}
		if s.called(wengangv1connect.ImportServiceImportProcedure) != before+1 {
			t.Fatal("the Import handler did not run")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.header.GetCounty() != "371502" || s.header.GetFileName() != "units.csv" {
			t.Errorf("handler's header = %v", s.header)
		}
		if want := "uscc,name\n91440300708461136T,甲\n"; !bytes.Equal(s.imported, []byte(want)) {
			t.Errorf("handler's bytes = %q, want %q", s.imported, want)
		}
	})

	t.Run("import without credentials", func(t *testing.T) {
		if err := importFile("", "371502", "x"); code(err) != connect.CodeUnauthenticated {
			t.Fatalf("Import = %v, want unauthenticated", err)
		}
	})

	t.Run("server stream", func(t *testing.T) {
		c := wengangv1connect.NewScreeningServiceClient(plain, s.url, bearerOpt(clerk))
		export := func(county string) (string, error) {
			st, err := c.ExportResults(ctx, connect.NewRequest(&wengangv1.ExportResultsRequest{County: county, ScreeningId: "S-1"}))
			if err != nil {
				return "", err
			}
			defer st.Close()
			var got []byte
			for st.Receive() {
				got = append(got, st.Msg().GetChunk()...)
			}
			return string(got), st.Err()
		}
		if got, err := export("371502"); err != nil || got != "371502" {
			t.Fatalf("export own county = %q, %v", got, err)
		}
		before := s.called(wengangv1connect.ScreeningServiceExportResultsProcedure)
		if _, err := export("371521"); code(err) != connect.CodePermissionDenied {
			t.Fatalf("export another county = %v, want permission denied", err)
		}
		if s.called(wengangv1connect.ScreeningServiceExportResultsProcedure) != before {
			t.Fatal("the export handler ran")
		}
	})

	t.Run("two Authorization headers", func(t *testing.T) {
		c := wengangv1connect.NewImportServiceClient(plain, s.url)
		req := connect.NewRequest(&wengangv1.ListDatasetsRequest{County: "371502"})
		req.Header().Add("Authorization", "Bearer "+clerk)
		req.Header().Add("Authorization", "Bearer "+cityAdmin)
		if _, err := c.ListDatasets(ctx, req); code(err) != connect.CodeUnauthenticated {
			t.Fatalf("ListDatasets = %v, want unauthenticated", err)
		}
	})
}

// TestInterceptorWithoutTLS serves h2c, as a node does in development: no
// certificate can be presented there, and bearer tokens still work.
func TestInterceptorWithoutTLS(t *testing.T) {
	db := pgtest.NewDB(t, migrations)
	ctx := context.Background()
	tokens := &Tokens{DB: db}
	_, clerk, err := tokens.Create(ctx, access.RoleCountyClerk, "371502", "张三", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	enforcer, err := access.New()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &server{}
	mux := http.NewServeMux()
	unary[wengangv1.ListDatasetsRequest, wengangv1.ListDatasetsResponse](s, mux, wengangv1connect.ImportServiceListDatasetsProcedure,
		connect.WithInterceptors(rpc.ErrorInterceptor(log), Interceptor(tokens, enforcer, log)))
	ts := httptest.NewUnstartedServer(rpc.WithTLSState(mux))
	ts.EnableHTTP2 = true
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	defer ts.Close()

	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	for _, tc := range []struct {
		token, county string
		want          connect.Code
	}{
		{clerk, "371502", 0},
		{clerk, "371521", connect.CodePermissionDenied},
		{"", "371502", connect.CodeUnauthenticated},
	} {
		c := wengangv1connect.NewImportServiceClient(hc, ts.URL, bearerOpt(tc.token))
		_, err := c.ListDatasets(ctx, connect.NewRequest(&wengangv1.ListDatasetsRequest{County: tc.county}))
		if code(err) != tc.want {
			t.Errorf("token %v, county %s: %v, want %v", tc.token != "", tc.county, err, tc.want)
		}
	}
}
