package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"wengang/client"
	"wengang/internal/authn"
	"wengang/internal/fault"
	"wengang/policy/access"
	wengangv1 "wengang/proto/wengang/v1"
)

// nodeServices are the services a county node serves.
var nodeServices = []protoreflect.ServiceDescriptor{
	wengangv1.File_wengang_v1_import_proto.Services().ByName("ImportService"),
	wengangv1.File_wengang_v1_screening_proto.Services().ByName("ScreeningService"),
	wengangv1.File_wengang_v1_review_proto.Services().ByName("ReviewService"),
	wengangv1.File_wengang_v1_notification_proto.Services().ByName("NotificationService"),
	wengangv1.File_wengang_v1_batch_proto.Services().ByName("BatchService"),
	wengangv1.File_wengang_v1_audit_proto.Services().ByName("AuditService"),
}

// setField sets the string (or repeated string) field at a dotted path of
// m, creating the messages on the way.
func setField(m protoreflect.Message, path, value string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(p))
		m = m.Mutable(fd).Message()
	}
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1]))
	if fd.IsList() {
		m.Mutable(fd).List().Append(protoreflect.ValueOfString(value))
		return
	}
	m.Set(fd, protoreflect.ValueOfString(value))
}

// call invokes a procedure of the node over the wire with a request whose
// domain field names domain, and returns the error's code (0 for success).
func call(ctx context.Context, hc *http.Client, base, token string, md protoreflect.MethodDescriptor, domain string) connect.Code {
	procedure := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
	req := dynamicpb.NewMessage(md.Input())
	if rule, ok := access.Rules()[procedure]; ok && rule.Field != "" {
		setField(req, rule.Field, domain)
	}
	opts := []connect.ClientOption{
		connect.WithGRPC(), connect.WithSchema(md), connect.WithInterceptors(client.Bearer(token)),
		connect.WithResponseInitializer(func(_ connect.Spec, msg any) error {
			*msg.(*dynamicpb.Message) = *dynamicpb.NewMessage(md.Output())
			return nil
		}),
	}
	c := connect.NewClient[dynamicpb.Message, dynamicpb.Message](hc, base+procedure, opts...)
	var err error
	switch {
	case md.IsStreamingClient():
		stream := c.CallClientStream(ctx)
		if err = stream.Send(req); err == nil {
			_, err = stream.CloseAndReceive()
		} else {
			_, err = stream.CloseAndReceive()
		}
	case md.IsStreamingServer():
		var stream *connect.ServerStreamForClient[dynamicpb.Message]
		if stream, err = c.CallServerStream(ctx, connect.NewRequest(req)); err == nil {
			for stream.Receive() {
			}
			err = stream.Err()
			stream.Close()
		}
	default:
		_, err = c.CallUnary(ctx, connect.NewRequest(req))
	}
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

// cityServices are the services of the city that people and finance
// systems call (SyncService is the nodes', by certificate).
var cityServices = []protoreflect.ServiceDescriptor{
	wengangv1.File_wengang_v1_intake_proto.Services().ByName("IntakeService"),
	wengangv1.File_wengang_v1_publicity_proto.Services().ByName("PublicityService"),
	wengangv1.File_wengang_v1_finance_proto.Services().ByName("FinanceService"),
	wengangv1.File_wengang_v1_portal_proto.Services().ByName("PortalService"),
	wengangv1.File_wengang_v1_progress_proto.Services().ByName("ProgressService"),
	wengangv1.File_wengang_v1_audit_proto.Services().ByName("AuditService"),
}

type caller struct{ role, domain string }

var callers = []caller{
	{access.RoleCountyClerk, "371502"}, {access.RoleCountyReviewer, "371502"}, {access.RoleCountyAdmin, "371502"},
	{access.RoleAuditor, "371502"}, {access.RoleAuditor, access.DomainCity},
	{access.RoleCityAdmin, access.DomainCity}, {access.RoleCityApprover, access.DomainCity},
	{access.RoleCityViewer, access.DomainCity}, {access.RoleFinance, access.DomainCity},
}

// matrix calls every RPC of services on the server at base for every
// caller (a token from token) naming its own county, another county and
// the city, and checks that exactly the cells the access policy allows get
// past access control: allowed cells may still fail for the empty request
// (not found, invalid argument), every other cell is refused.
func matrix(t *testing.T, w *world, services []protoreflect.ServiceDescriptor, base string, hc *http.Client, token func(role, domain string) string) {
	t.Helper()
	targets := []string{"371502", "371521", access.DomainCity}
	cells, allowed := 0, 0
	for _, c := range callers {
		tok := token(c.role, c.domain)
		p := access.Principal{Kind: access.KindPerson, Role: c.role, Domain: c.domain}
		if c.role == access.RoleFinance {
			p.Kind = access.KindFinance // a finance token is a system's
		}
		for _, sd := range services {
			for i := 0; i < sd.Methods().Len(); i++ {
				md := sd.Methods().Get(i)
				procedure := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
				for _, target := range targets {
					rule := access.Rules()[procedure]
					if rule.Field == "" && target != access.DomainCity {
						continue // the request names no domain: one cell
					}
					req := dynamicpb.NewMessage(md.Input())
					if rule.Field != "" {
						setField(req, rule.Field, target)
					}
					verdict := w.enforcer.Authorize(w.ctx, p, procedure, req)
					got := call(w.ctx, hc, base, tok, md, target)
					cells++
					switch {
					case verdict == nil:
						allowed++
						if got == connect.CodePermissionDenied || got == connect.CodeUnauthenticated {
							t.Errorf("%s of %s calling %s in %s: refused (%v), but the policy allows it", c.role, c.domain, procedure, target, got)
						}
					case errors.Is(verdict, fault.ErrInvalid):
						// "city" where a county must be named: refused as a bad request.
						if got != connect.CodeInvalidArgument {
							t.Errorf("%s of %s calling %s in %s: got %v, want invalid_argument", c.role, c.domain, procedure, target, got)
						}
					default:
						if got != connect.CodePermissionDenied {
							t.Errorf("%s of %s calling %s in %s: got %v, want permission_denied", c.role, c.domain, procedure, target, got)
						}
					}
				}
			}
		}
	}
	// The matrix is not trivially all-allow or all-deny.
	if allowed == 0 || allowed == cells {
		t.Fatalf("%d of %d cells allowed", allowed, cells)
	}
	t.Logf("%d cells, %d allowed", cells, allowed)
}

// Every RPC of the node × every role × own county, another county, the city.
func TestNodeAuthorizationMatrix(t *testing.T) {
	w := newWorld(t)
	hc, err := client.HTTPClient(w.nodeURL(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	matrix(t, w, nodeServices, w.nodeURL(), hc, func(role, domain string) string { return w.token(role, domain, role+"@"+domain) })

	// A clerk of 371502 may import there but not in 371521, on the same node.
	clerk := w.token(access.RoleCountyClerk, "371502", "张三")
	md := nodeServices[0].Methods().ByName("ListDatasets")
	if got := call(w.ctx, hc, w.nodeURL(), clerk, md, "371502"); got != 0 {
		t.Errorf("clerk lists own datasets: %v", got)
	}
	if got := call(w.ctx, hc, w.nodeURL(), clerk, md, "371521"); got != connect.CodePermissionDenied {
		t.Errorf("clerk lists another county's datasets: %v", got)
	}
	// No token, a forged token: unauthenticated.
	for _, tok := range []string{"", "wg_" + strings.Repeat("A", 52)} {
		if got := call(w.ctx, hc, w.nodeURL(), tok, md, "371502"); got != connect.CodeUnauthenticated {
			t.Errorf("token %q: %v, want unauthenticated", tok, got)
		}
	}
}

// Every RPC of the city × every role × own county, another county, the
// city, over TLS. The finance role can do nothing but finance's work.
func TestCityAuthorizationMatrix(t *testing.T) {
	w := newWorld(t)
	base := "https://" + w.cityAddr
	hc, err := client.HTTPClient(base, client.Options{CAFile: w.certs.CA})
	if err != nil {
		t.Fatal(err)
	}
	tokens := &authn.Tokens{DB: connectDB(t, w.cityDB)}
	matrix(t, w, cityServices, base, hc, func(role, domain string) string {
		_, secret, err := tokens.Create(w.ctx, role, domain, role+"@"+domain, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	})
	// Finance: every finance RPC gets past access control, nothing else does
	// but the public portal.
	fin := access.Principal{Kind: access.KindFinance, Role: access.RoleFinance, Domain: access.DomainCity}
	for procedure, rule := range access.Rules() {
		ok := w.enforcer.Allow(fin, procedure, access.DomainCity) == nil
		finance := strings.HasPrefix(procedure, "/wengang.v1.FinanceService/") || strings.HasPrefix(procedure, "/wengang.v1.PortalService/")
		if ok != finance {
			t.Errorf("finance may call %s: %v (object %s)", procedure, ok, rule.Object)
		}
	}
}

// The city's one port serves the portal, the dashboard's sign-in and the
// metrics beside the RPCs.
func TestCityPagesServed(t *testing.T) {
	w := newWorld(t)
	base := "https://" + w.cityAddr
	hc, err := client.HTTPClient(base, client.Options{CAFile: w.certs.CA})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/portal/":    "稳岗返还",
		"/dashboard/": "令牌",
		"/metrics":    "go_goroutines",
	} {
		res, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK && !(path == "/dashboard/" && res.StatusCode == http.StatusUnauthorized) || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body without %q:\n%.500s", path, res.StatusCode, want, body)
		}
	}
}
