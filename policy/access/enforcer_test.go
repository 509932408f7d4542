package access

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"wengang/internal/fault"
	wengangv1 "wengang/proto/wengang/v1"
)

// methods returns every method of every wengang.v1 service, as registered
// by the generated code.
func methods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	_ = wengangv1.File_wengang_v1_import_proto // registers the package's files
	var ms []protoreflect.MethodDescriptor
	services := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("wengang.v1", func(fd protoreflect.FileDescriptor) bool {
		if fd.Package() != "wengang.v1" {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			services++
			for j := range sd.Methods().Len() {
				ms = append(ms, sd.Methods().Get(j))
			}
		}
		return true
	})
	if services != 12 {
		t.Fatalf("found %d wengang.v1 services, want the 12 of the contract", services)
	}
	return ms
}

func procedure(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

// short is "Service/Method".
func short(md protoreflect.MethodDescriptor) string {
	return string(md.Parent().Name()) + "/" + string(md.Name())
}

func newEnforcer(t *testing.T) *Enforcer {
	t.Helper()
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEveryProcedureHasARuleThatFitsItsRequest(t *testing.T) {
	rules := Rules()
	seen := map[string]bool{}
	for _, md := range methods(t) {
		p := procedure(md)
		seen[p] = true
		r, ok := rules[p]
		if !ok {
			t.Errorf("%s has no access rule: add it to Rules", p)
			continue
		}
		if r.Object == "" || r.Action == "" {
			t.Errorf("%s: rule without object or action: %+v", p, r)
		}
		if r.Source != FromCity {
			mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := field(mt.New(), r.Field, r.Source == FromCounties); err != nil {
				t.Errorf("%s: rule field %q: %v", p, r.Field, err)
			}
		}
	}
	for p := range rules {
		if !seen[p] {
			t.Errorf("rule for %s, which is no procedure of the contract", p)
		}
	}
}

func TestPolicyGrantsOnlyKnownObjectsActionsAndRoles(t *testing.T) {
	e := newEnforcer(t)
	pairs := map[string]bool{}
	for _, r := range Rules() {
		pairs[r.Object+"/"+r.Action] = true
	}
	roles := map[string]bool{"public": true}
	for _, r := range Roles() {
		roles[r.Name] = true
	}
	ps, err := e.casbin.GetPolicy()
	if err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for _, p := range ps {
		if !roles[p[0]] {
			t.Errorf("policy grants to unknown role %q", p[0])
		}
		if !pairs[p[1]+"/"+p[2]] {
			t.Errorf("policy grants %s %s, which no procedure uses", p[2], p[1])
		}
		granted[p[0]] = true
	}
	gs, err := e.casbin.GetGroupingPolicy()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if !roles[g[0]] || !roles[g[1]] {
			t.Errorf("policy groups unknown roles: %v", g)
		}
		granted[g[0]] = true
	}
	for r := range roles {
		if !granted[r] {
			t.Errorf("role %s is granted nothing", r)
		}
	}
}

func TestBrokenPolicyIsRefused(t *testing.T) {
	for _, text := range []string{"p, clerk, dataset", "x, a, b, c", "p, a, , c", "g, a"} {
		m, err := newModel()
		if err != nil {
			t.Fatal(err)
		}
		if err := (adapter{text}).LoadPolicy(m); err == nil {
			t.Errorf("%q: loaded, want an error", text)
		}
	}
}

// set builds a set of "Service/Method" names.
func set(groups ...[]string) map[string]bool {
	s := map[string]bool{}
	for _, g := range groups {
		for _, m := range g {
			s[m] = true
		}
	}
	return s
}

// The expectations of the matrix, written from the roles' descriptions
// (the brief and DESIGN.md), not from policy.csv.
var (
	clerkMethods = []string{
		"ImportService/Import", "ImportService/SealDataset", "ImportService/GetDataset", "ImportService/ListDatasets",
		"ScreeningService/RunScreening", "ScreeningService/GetScreening", "ScreeningService/ListScreenings",
		"ScreeningService/ListResults", "ScreeningService/ExportResults",
		"NotificationService/NotifyUnits", "NotificationService/ListNotifications",
		"NotificationService/RecordResponse", "NotificationService/ListResponses",
		"BatchService/SealBatch", "BatchService/GetBatch", "BatchService/ListBatches",
		"BatchService/ListUnitStatuses", "BatchService/CorrectAccount",
	}
	nodeReads = []string{
		"ImportService/GetDataset", "ImportService/ListDatasets",
		"ScreeningService/GetScreening", "ScreeningService/ListScreenings", "ScreeningService/ListResults", "ScreeningService/ExportResults",
		"ReviewService/ListReviews",
		"NotificationService/ListNotifications", "NotificationService/ListResponses",
		"BatchService/GetBatch", "BatchService/ListBatches", "BatchService/ListUnitStatuses",
	}
	reviewerWrites = []string{
		"ReviewService/ExcludeUnit", "ReviewService/ReinstateUnit", "ReviewService/ResolveHold",
		"NotificationService/ResolveObjection",
	}
	auditReads = []string{"AuditService/ListAuditEntries", "AuditService/VerifyAuditChain"}
	cityReads  = []string{
		"IntakeService/ListReceivedBatches", "IntakeService/GetReceivedBatch", "IntakeService/ListReceivedItems", "IntakeService/ListConflicts",
		"PublicityService/GetRound", "PublicityService/ListRounds", "PublicityService/ListRoundEntries", "PublicityService/ListObjections",
		"ProgressService/GetProgress",
		"FinanceService/PullInstructions", "FinanceService/ListInstructions", "FinanceService/ListFundingRequests", "FinanceService/GetReconciliation",
	}
	financeMethods = []string{
		"FinanceService/PullInstructions", "FinanceService/ListInstructions", "FinanceService/AckInstructions",
		"FinanceService/ReportResults", "FinanceService/ListFundingRequests", "FinanceService/ConfirmFunding",
		"FinanceService/GetReconciliation", "FinanceService/ExportPain001", "FinanceService/ImportPain002",
	}
	syncMethods = []string{
		"SyncService/PushBatch", "SyncService/PullDecisions", "SyncService/PushAccountCorrection", "SyncService/ReportScreening",
	}
)

// caller is one principal of the matrix with what it may do and where.
type caller struct {
	name    string
	p       Principal
	may     map[string]bool
	reachOf func(domain string) bool // the domains it acts in
}

const own, other = "371502", "371521"

func callers() []caller {
	person := func(role, domain string) Principal {
		return Principal{Kind: KindPerson, Subject: "token:1", Name: "张三", Role: role, Domain: domain}
	}
	ownOnly := func(d string) bool { return d == own }
	everywhere := func(string) bool { return true }
	nowhere := func(string) bool { return false }
	clerk := set(clerkMethods)
	reviewer := set(nodeReads, reviewerWrites)
	viewer := set(nodeReads, cityReads)
	return []caller{
		{"county_clerk of own", person(RoleCountyClerk, own), clerk, ownOnly},
		{"county_reviewer of own", person(RoleCountyReviewer, own), reviewer, ownOnly},
		{"county_admin of own", person(RoleCountyAdmin, own), set(clerkMethods, nodeReads, reviewerWrites, auditReads), ownOnly},
		{"city_viewer", person(RoleCityViewer, DomainCity), viewer, everywhere},
		{"city_approver", person(RoleCityApprover, DomainCity), set(nodeReads, cityReads, []string{"PublicityService/ApproveRound", "PublicityService/ReleaseRound"}), everywhere},
		{"city_admin", person(RoleCityAdmin, DomainCity), set(nodeReads, cityReads, auditReads, []string{
			"IntakeService/ResolveConflict", "PublicityService/CreateRound", "PublicityService/RecordObjection", "PublicityService/ResolveObjection",
		}), everywhere},
		{"finance", Principal{Kind: KindFinance, Subject: "token:2", Name: "财政", Role: RoleFinance, Domain: DomainCity}, set(financeMethods), everywhere},
		{"auditor of city", person(RoleAuditor, DomainCity), set(nodeReads, cityReads, auditReads), everywhere},
		{"auditor of own", person(RoleAuditor, own), set(nodeReads, cityReads, auditReads), ownOnly},
		{"node of own", Principal{Kind: KindNode, Subject: "node1", Name: "node1", Role: RoleNode, Counties: []string{own, "371526"}}, set(syncMethods), func(d string) bool { return d == own || d == "371526" }},
		{"anonymous", Anonymous(), set(), nowhere},
		// Misassigned principals hold nothing but what the public holds.
		{"county_clerk claiming city", person(RoleCountyClerk, DomainCity), set(), nowhere},
		{"city_admin claiming a county", person(RoleCityAdmin, own), set(), nowhere},
		{"node role by token", person(RoleNode, own), set(), nowhere},
		{"finance role as a person kind", person(RoleFinance, DomainCity), set(), nowhere},
		{"unknown role", person("superuser", DomainCity), set(), nowhere},
	}
}

// TestMatrix checks every procedure × every caller × {own county, other
// county, city}: only the cells the expectations allow succeed.
func TestMatrix(t *testing.T) {
	e := newEnforcer(t)
	ms := methods(t)
	for _, c := range callers() {
		t.Run(c.name, func(t *testing.T) {
			allowed := 0
			for _, md := range ms {
				for _, d := range []string{own, other, DomainCity} {
					want := strings.HasPrefix(short(md), "PortalService/") || (c.may[short(md)] && c.reachOf(d))
					err := e.Allow(c.p, procedure(md), d)
					switch {
					case want && err != nil:
						t.Errorf("%s in %s: denied (%v), want allowed", short(md), d, err)
					case !want && err == nil:
						t.Errorf("%s in %s: allowed, want denied", short(md), d)
					case !want && !errors.Is(err, fault.ErrPermissionDenied):
						t.Errorf("%s in %s: %v, want a permission-denied error", short(md), d, err)
					}
					if err == nil {
						allowed++
					}
				}
			}
			t.Logf("%d of %d cells allowed", allowed, 3*len(ms))
		})
	}
}

func TestClerkCanDoNothingInAnotherCounty(t *testing.T) {
	e := newEnforcer(t)
	clerk := Principal{Kind: KindPerson, Subject: "token:1", Role: RoleCountyClerk, Domain: own}
	for _, md := range methods(t) {
		if md.Parent().Name() == "PortalService" {
			continue
		}
		if err := e.Allow(clerk, procedure(md), other); err == nil {
			t.Errorf("clerk of %s may call %s in %s", own, short(md), other)
		}
	}
}

func TestUnknownProcedureAndEmptyDomainAreDenied(t *testing.T) {
	e := newEnforcer(t)
	admin := Principal{Kind: KindPerson, Subject: "token:1", Role: RoleCityAdmin, Domain: DomainCity}
	for _, tc := range []struct{ proc, domain string }{
		{"/wengang.v1.ImportService/DropEverything", own},
		{"/wengang.v1.ImportService/ListDatasets", ""},
	} {
		if err := e.Allow(admin, tc.proc, tc.domain); !errors.Is(err, fault.ErrPermissionDenied) {
			t.Errorf("%s in %q: %v, want permission denied", tc.proc, tc.domain, err)
		}
	}
}

// domainField is where the test expects each request to name its domain,
// from the brief: a top-level county, counties or domain field, else a
// county inside the first message field that has one, else none (city).
// The portal's county is a filter of public data.
func domainField(md protoreflect.MethodDescriptor) (path string, list bool) {
	in := md.Input()
	if short(md) == "PortalService/ListPublicity" {
		return "", false
	}
	for _, name := range []string{"county", "domain"} {
		if f := in.Fields().ByName(protoreflect.Name(name)); f != nil {
			return name, false
		}
	}
	if f := in.Fields().ByName("counties"); f != nil {
		return "counties", true
	}
	for i := range in.Fields().Len() {
		f := in.Fields().Get(i)
		if f.Message() != nil && !f.IsList() && f.Message().Fields().ByName("county") != nil {
			return string(f.Name()) + ".county", false
		}
	}
	return "", false
}

// request returns a request of md's input type whose domain field (if any)
// names ds.
func request(t *testing.T, md protoreflect.MethodDescriptor, ds ...string) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	root := mt.New()
	m := root
	path, list := domainField(md)
	if path == "" || len(ds) == 0 {
		return root.Interface()
	}
	names := strings.Split(path, ".")
	for _, n := range names[:len(names)-1] {
		m = m.Mutable(m.Descriptor().Fields().ByName(protoreflect.Name(n))).Message()
	}
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(names[len(names)-1]))
	if list {
		l := m.Mutable(fd).List()
		for _, d := range ds {
			l.Append(protoreflect.ValueOfString(d))
		}
	} else {
		m.Set(fd, protoreflect.ValueOfString(ds[0]))
	}
	return root.Interface()
}

func TestDomainsComeFromTheRequest(t *testing.T) {
	e := newEnforcer(t)
	admin := Principal{Kind: KindPerson, Subject: "token:1", Role: RoleCityAdmin, Domain: DomainCity}
	node := Principal{Kind: KindNode, Subject: "node1", Role: RoleNode, Counties: []string{own, "371526"}}
	for _, md := range methods(t) {
		t.Run(short(md), func(t *testing.T) {
			path, list := domainField(md)
			switch {
			case path == "":
				got, err := e.Domains(admin, procedure(md), request(t, md))
				if err != nil || !slices.Equal(got, []string{DomainCity}) {
					t.Errorf("Domains = %v, %v; want [city]", got, err)
				}
			case list:
				got, err := e.Domains(admin, procedure(md), request(t, md, other, own, other))
				if err != nil || !slices.Equal(got, []string{other, own}) {
					t.Errorf("naming %s,%s,%s: Domains = %v, %v; want [%s %s]", other, own, other, got, err, other, own)
				}
				// Naming none means the caller's own domains.
				got, err = e.Domains(admin, procedure(md), request(t, md))
				if err != nil || !slices.Equal(got, []string{DomainCity}) {
					t.Errorf("city admin naming none: Domains = %v, %v; want [city]", got, err)
				}
				got, err = e.Domains(node, procedure(md), request(t, md))
				if err != nil || !slices.Equal(got, node.Counties) {
					t.Errorf("node naming none: Domains = %v, %v; want %v", got, err, node.Counties)
				}
				if _, err := e.Domains(Anonymous(), procedure(md), request(t, md)); !errors.Is(err, fault.ErrPermissionDenied) {
					t.Errorf("anonymous naming none: %v, want permission denied", err)
				}
				if _, err := e.Domains(admin, procedure(md), request(t, md, DomainCity)); !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("naming city as a county: %v, want invalid", err)
				}
			default:
				got, err := e.Domains(admin, procedure(md), request(t, md, other))
				if err != nil || !slices.Equal(got, []string{other}) {
					t.Errorf("naming %s in %s: Domains = %v, %v", other, path, got, err)
				}
				if _, err := e.Domains(admin, procedure(md), request(t, md)); !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("naming no county: %v, want invalid", err)
				}
				if path == "domain" {
					if got, err := e.Domains(admin, procedure(md), request(t, md, DomainCity)); err != nil || !slices.Equal(got, []string{DomainCity}) {
						t.Errorf("audit of city: Domains = %v, %v", got, err)
					}
				} else if _, err := e.Domains(admin, procedure(md), request(t, md, DomainCity)); !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("naming city as a county: %v, want invalid", err)
				}
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	e := newEnforcer(t)
	ctx := context.Background()
	clerk := Principal{Kind: KindPerson, Subject: "token:1", Role: RoleCountyClerk, Domain: own}
	node := Principal{Kind: KindNode, Subject: "node1", Role: RoleNode, Counties: []string{own}}
	cityViewer := Principal{Kind: KindPerson, Subject: "token:3", Role: RoleCityViewer, Domain: DomainCity}
	countyAuditor := Principal{Kind: KindPerson, Subject: "token:4", Role: RoleAuditor, Domain: own}
	push := func(county string) proto.Message {
		return &wengangv1.PushBatchRequest{Batch: &wengangv1.BatchContent{County: county}}
	}
	for _, tc := range []struct {
		name string
		p    Principal
		proc string
		req  proto.Message
		want error // nil, fault.ErrPermissionDenied or fault.ErrInvalid
	}{
		{"clerk imports into own county", clerk, "/wengang.v1.ImportService/Import",
			&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{County: own}}}, nil},
		{"clerk imports into other county", clerk, "/wengang.v1.ImportService/Import",
			&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{County: other}}}, fault.ErrPermissionDenied},
		{"import starting with a chunk", clerk, "/wengang.v1.ImportService/Import",
			&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Chunk{Chunk: []byte("uscc")}}, fault.ErrInvalid},
		{"clerk lists other county's datasets", clerk, "/wengang.v1.ImportService/ListDatasets", &wengangv1.ListDatasetsRequest{County: other}, fault.ErrPermissionDenied},
		{"node pushes its county's batch", node, "/wengang.v1.SyncService/PushBatch", push(own), nil},
		{"node pushes another county's batch", node, "/wengang.v1.SyncService/PushBatch", push(other), fault.ErrPermissionDenied},
		{"node pushes a batch without content", node, "/wengang.v1.SyncService/PushBatch", &wengangv1.PushBatchRequest{}, fault.ErrInvalid},
		{"node pulls its counties", node, "/wengang.v1.SyncService/PullDecisions", &wengangv1.PullDecisionsRequest{}, nil},
		{"node pulls another county too", node, "/wengang.v1.SyncService/PullDecisions", &wengangv1.PullDecisionsRequest{Counties: []string{own, other}}, fault.ErrPermissionDenied},
		{"node reports another county", node, "/wengang.v1.SyncService/ReportScreening",
			&wengangv1.ReportScreeningRequest{Report: &wengangv1.ScreeningReport{County: other}}, fault.ErrPermissionDenied},
		{"node corrects its county's account", node, "/wengang.v1.SyncService/PushAccountCorrection", &wengangv1.PushAccountCorrectionRequest{County: own}, nil},
		{"city viewer reads a county", cityViewer, "/wengang.v1.ScreeningService/ListResults", &wengangv1.ListResultsRequest{County: other}, nil},
		{"city viewer cannot screen", cityViewer, "/wengang.v1.ScreeningService/RunScreening", &wengangv1.RunScreeningRequest{County: other}, fault.ErrPermissionDenied},
		{"county auditor reads own audit log", countyAuditor, "/wengang.v1.AuditService/ListAuditEntries", &wengangv1.ListAuditEntriesRequest{Domain: own}, nil},
		{"county auditor cannot read the city's", countyAuditor, "/wengang.v1.AuditService/ListAuditEntries", &wengangv1.ListAuditEntriesRequest{Domain: DomainCity}, fault.ErrPermissionDenied},
		{"county auditor lists own county's rounds", countyAuditor, "/wengang.v1.PublicityService/ListRounds", &wengangv1.ListRoundsRequest{}, nil},
		{"county auditor lists every county's rounds", countyAuditor, "/wengang.v1.PublicityService/ListRounds", &wengangv1.ListRoundsRequest{Counties: []string{own, other}}, fault.ErrPermissionDenied},
		{"anonymous reads the portal", Anonymous(), "/wengang.v1.PortalService/ListPublicity", &wengangv1.ListPublicityRequest{County: other}, nil},
		{"anonymous lists datasets", Anonymous(), "/wengang.v1.ImportService/ListDatasets", &wengangv1.ListDatasetsRequest{County: own}, fault.ErrPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Authorize(ctx, tc.p, tc.proc, tc.req)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Authorize = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidAssignment(t *testing.T) {
	for _, tc := range []struct {
		role, domain string
		ok           bool
	}{
		{RoleCountyClerk, own, true},
		{RoleCountyReviewer, own, true},
		{RoleCountyAdmin, own, true},
		{RoleCityAdmin, DomainCity, true},
		{RoleCityApprover, DomainCity, true},
		{RoleCityViewer, DomainCity, true},
		{RoleFinance, DomainCity, true},
		{RoleAuditor, DomainCity, true},
		{RoleAuditor, own, true},
		{RoleCountyClerk, DomainCity, false},
		{RoleCityAdmin, own, false},
		{RoleFinance, own, false},
		{RoleNode, own, false},
		{RoleAnonymous, DomainCity, false},
		{"public", DomainCity, false},
		{"root", DomainCity, false},
		{RoleCountyClerk, "37150", false},
		{RoleCountyClerk, "37150x", false},
		{RoleAuditor, "", false},
	} {
		err := ValidAssignment(tc.role, tc.domain)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("ValidAssignment(%q, %q) = %v, want ok=%v", tc.role, tc.domain, err, tc.ok)
		}
	}
}

func TestRolesAreDistinct(t *testing.T) {
	var names []string
	for _, r := range Roles() {
		names = append(names, r.Name)
	}
	sorted := slices.Clone(names)
	sort.Strings(sorted)
	if len(slices.Compact(sorted)) != len(names) {
		t.Fatalf("a role is listed twice: %v", names)
	}
}

// BenchmarkAuthorize measures the check every request pays: resolving the
// domain from the request and asking Casbin.
func BenchmarkAuthorize(b *testing.B) {
	e, err := New()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	clerk := Principal{Kind: KindPerson, Subject: "token:1", Role: RoleCountyClerk, Domain: own}
	req := &wengangv1.ListResultsRequest{County: own, ScreeningId: "S-1"}
	for b.Loop() {
		if err := e.Authorize(ctx, clerk, "/wengang.v1.ScreeningService/ListResults", req); err != nil {
			b.Fatal(err)
		}
	}
}
