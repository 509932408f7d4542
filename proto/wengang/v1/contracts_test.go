package wengangv1_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	wengangv1 "wengang/proto/wengang/v1"
)

// These tests walk the descriptors of package wengang.v1, as the generated
// Go registers them, and fail when the contracts break one of the rules of
// DESIGN.md: no floating point, money as int64 fen, no account on the
// portal, zero enum values, idempotency, paging, canonical hashed messages.

const pkg protoreflect.FullName = "wengang.v1"

// files returns every file of the package; it fails the test when there
// are suspiciously few (the walk would prove nothing).
func files(t *testing.T) []protoreflect.FileDescriptor {
	t.Helper()
	_ = wengangv1.File_wengang_v1_types_proto // link the package in
	var fds []protoreflect.FileDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(fd protoreflect.FileDescriptor) bool {
		fds = append(fds, fd)
		return true
	})
	if len(fds) < 12 {
		t.Fatalf("found %d files of package %s, want at least 12", len(fds), pkg)
	}
	return fds
}

// messages returns every message of the package, nested ones included.
func messages(t *testing.T) []protoreflect.MessageDescriptor {
	t.Helper()
	var out []protoreflect.MessageDescriptor
	var add func(ms protoreflect.MessageDescriptors)
	add = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			out = append(out, m)
			add(m.Messages())
		}
	}
	for _, fd := range files(t) {
		add(fd.Messages())
	}
	return out
}

// fields returns every field of the package's messages, with its message.
func fields(t *testing.T) []protoreflect.FieldDescriptor {
	t.Helper()
	var out []protoreflect.FieldDescriptor
	for _, m := range messages(t) {
		fs := m.Fields()
		for i := range fs.Len() {
			out = append(out, fs.Get(i))
		}
	}
	for _, fd := range files(t) {
		xs := fd.Extensions()
		for i := range xs.Len() {
			out = append(out, xs.Get(i))
		}
	}
	return out
}

// enums returns every enum of the package, nested ones included.
func enums(t *testing.T) []protoreflect.EnumDescriptor {
	t.Helper()
	var out []protoreflect.EnumDescriptor
	for _, fd := range files(t) {
		es := fd.Enums()
		for i := range es.Len() {
			out = append(out, es.Get(i))
		}
	}
	for _, m := range messages(t) {
		es := m.Enums()
		for i := range es.Len() {
			out = append(out, es.Get(i))
		}
	}
	return out
}

// services returns every service of the package.
func services(t *testing.T) []protoreflect.ServiceDescriptor {
	t.Helper()
	var out []protoreflect.ServiceDescriptor
	for _, fd := range files(t) {
		ss := fd.Services()
		for i := range ss.Len() {
			out = append(out, ss.Get(i))
		}
	}
	return out
}

// reachable returns every message reachable from roots through message
// fields (map entries and their values included), roots included.
func reachable(roots ...protoreflect.MessageDescriptor) []protoreflect.MessageDescriptor {
	seen := map[protoreflect.FullName]bool{}
	var out []protoreflect.MessageDescriptor
	var walk func(m protoreflect.MessageDescriptor)
	walk = func(m protoreflect.MessageDescriptor) {
		if seen[m.FullName()] {
			return
		}
		seen[m.FullName()] = true
		out = append(out, m)
		fs := m.Fields()
		for i := range fs.Len() {
			if sub := fs.Get(i).Message(); sub != nil {
				walk(sub)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

func service(t *testing.T, name protoreflect.Name) protoreflect.ServiceDescriptor {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(pkg.Append(name))
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		t.Fatalf("%s is a %T, not a service", name, d)
	}
	return sd
}

func message(t *testing.T, name protoreflect.Name) protoreflect.MessageDescriptor {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(pkg.Append(name))
	if err != nil {
		t.Fatalf("message %s: %v", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		t.Fatalf("%s is a %T, not a message", name, d)
	}
	return md
}

func TestEveryFileHasTheGoPackage(t *testing.T) {
	t.Parallel()
	const want = "wengang/proto/wengang/v1;wengangv1"
	for _, fd := range files(t) {
		opts, _ := fd.Options().(*descriptorpb.FileOptions)
		if got := opts.GetGoPackage(); got != want {
			t.Errorf("%s: go_package %q, want %q", fd.Path(), got, want)
		}
	}
}

func TestNoFloatingPoint(t *testing.T) {
	t.Parallel()
	floaty := map[protoreflect.FullName]bool{
		"google.protobuf.FloatValue":  true,
		"google.protobuf.DoubleValue": true,
		"google.protobuf.Value":       true, // a JSON number is a double
		"google.protobuf.Struct":      true,
		"google.protobuf.ListValue":   true,
	}
	n := 0
	for _, f := range fields(t) {
		n++
		switch f.Kind() {
		case protoreflect.FloatKind, protoreflect.DoubleKind:
			t.Errorf("%s is %s: money, rates and counts are integers", f.FullName(), f.Kind())
		}
		for _, m := range reachable(fieldMessages(f)...) {
			if floaty[m.FullName()] {
				t.Errorf("%s reaches %s, which carries floating point", f.FullName(), m.FullName())
			}
		}
	}
	if n < 200 {
		t.Fatalf("walked %d fields, want the whole package", n)
	}
}

// fieldMessages returns the message type of f, if it has one.
func fieldMessages(f protoreflect.FieldDescriptor) []protoreflect.MessageDescriptor {
	if m := f.Message(); m != nil {
		return []protoreflect.MessageDescriptor{m}
	}
	return nil
}

// moneyWords are the words that make a numeric field an amount of money.
var moneyWords = []string{"amount", "total", "refund", "base", "fen"}

func mentionsMoney(name protoreflect.Name) bool {
	for _, w := range strings.Split(string(name), "_") {
		if slices.Contains(moneyWords, w) {
			return true
		}
	}
	return false
}

func isNumeric(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.StringKind,
		protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

func TestMoneyIsInt64Fen(t *testing.T) {
	t.Parallel()
	fen := 0
	for _, f := range fields(t) {
		name := f.Name()
		isFen := strings.HasSuffix(string(name), "_fen")
		if isFen {
			fen++
			if f.Kind() != protoreflect.Int64Kind {
				t.Errorf("%s is %s; a *_fen field is int64", f.FullName(), f.Kind())
			}
		}
		// Any number whose name speaks of money (an amount, a total, a
		// refund, a base) must be int64 fen, whatever its integer kind.
		if isNumeric(f.Kind()) && mentionsMoney(name) && !isFen {
			t.Errorf("%s (%s) names money but is not a *_fen field", f.FullName(), f.Kind())
		}
	}
	if fen < 20 {
		t.Fatalf("found %d *_fen fields, want the whole package's", fen)
	}
}

func TestMentionsMoney(t *testing.T) {
	t.Parallel()
	for name, want := range map[protoreflect.Name]bool{
		"total_fen": true, "refund_fen": true, "amount": true, "base": true, "total_count": true,
		"database_id": false, "months_paid": false, "item_count": false, "rate_bp": false,
	} {
		if got := mentionsMoney(name); got != want {
			t.Errorf("mentionsMoney(%q) = %v, want %v", name, got, want)
		}
	}
}

// accountFields returns the fields reachable from the responses of svc
// whose names (or whose message types' names) speak of an account.
func accountFields(t *testing.T, svc protoreflect.ServiceDescriptor) []string {
	t.Helper()
	var roots []protoreflect.MessageDescriptor
	ms := svc.Methods()
	for i := range ms.Len() {
		roots = append(roots, ms.Get(i).Output())
	}
	var bad []string
	for _, m := range reachable(roots...) {
		if strings.Contains(strings.ToLower(string(m.Name())), "account") {
			bad = append(bad, string(m.FullName()))
		}
		fs := m.Fields()
		for i := range fs.Len() {
			if strings.Contains(strings.ToLower(string(fs.Get(i).Name())), "account") {
				bad = append(bad, string(fs.Get(i).FullName()))
			}
		}
	}
	return bad
}

func TestPortalNeverShowsAnAccount(t *testing.T) {
	t.Parallel()
	portal := service(t, "PortalService")
	if portal.Methods().Len() < 3 {
		t.Fatalf("PortalService has %d methods, want at least 3", portal.Methods().Len())
	}
	if bad := accountFields(t, portal); len(bad) > 0 {
		t.Errorf("PortalService responses reach account data: %s", strings.Join(bad, ", "))
	}
	// The walk must see the list itself…
	var names []protoreflect.FullName
	for _, m := range reachable(message(t, "ListPublicityResponse")) {
		names = append(names, m.FullName())
	}
	if !slices.Contains(names, pkg.Append("PublicityEntry")) {
		t.Errorf("the walk from ListPublicityResponse missed PublicityEntry: %v", names)
	}
	// …and find accounts where they are: the county's results do carry them.
	if bad := accountFields(t, service(t, "ScreeningService")); !slices.Contains(bad, "wengang.v1.Account.account_no") {
		t.Errorf("the walk does not find Account.account_no under ScreeningService: %v", bad)
	}
}

// upperSnake turns "ItemState" into "ITEM_STATE".
func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func TestEveryEnumHasAZeroUnspecified(t *testing.T) {
	t.Parallel()
	es := enums(t)
	if len(es) < 20 {
		t.Fatalf("found %d enums, want the whole package's", len(es))
	}
	for _, e := range es {
		want := protoreflect.Name(upperSnake(string(e.Name())) + "_UNSPECIFIED")
		zero := e.Values().ByNumber(0)
		switch {
		case zero == nil:
			t.Errorf("%s has no zero value", e.FullName())
		case zero.Name() != want:
			t.Errorf("%s's zero value is %s, want %s", e.FullName(), zero.Name(), want)
		case e.Values().Get(0).Number() != 0:
			t.Errorf("%s's first value is not its zero", e.FullName())
		}
		prefix := upperSnake(string(e.Name())) + "_"
		vs := e.Values()
		for i := range vs.Len() {
			if !strings.HasPrefix(string(vs.Get(i).Name()), prefix) {
				t.Errorf("%s: value %s lacks the prefix %s", e.FullName(), vs.Get(i).Name(), prefix)
			}
		}
	}
}

// The Reason enum has one value per code of DOMAIN.md, no more, no less.
func TestReasonCodesAreDomainCodes(t *testing.T) {
	t.Parallel()
	want := []string{
		"NOT_SERVICE_INDUSTRY", "NOT_SME", "DEREGISTERED", "INSUFFICIENT_MONTHS", "ARREARS",
		"LAYOFF_RATE_EXCEEDED", "CREDIT_BLACKLIST", "ZOMBIE", "INDUSTRY_POLICY", "ENVIRONMENT",
		"NO_CONTRIBUTIONS", "USCC_CHECKSUM", "SIZE_MISSING", "ACCOUNT_MISSING",
	}
	var got []string
	vs := wengangv1.Reason(0).Descriptor().Values()
	for i := range vs.Len() {
		if vs.Get(i).Number() != 0 {
			got = append(got, strings.TrimPrefix(string(vs.Get(i).Name()), "REASON_"))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Reason codes %v, want %v", got, want)
	}
}

// readPrefixes start the names of RPCs that change nothing.
var readPrefixes = []string{"Get", "List", "Pull", "Verify", "Export"}

// naturallyIdempotent are the writes that need no idempotency key: a
// repeat of the same request leaves the same state and returns the same
// answer (each RPC's comment says why).
var naturallyIdempotent = []protoreflect.FullName{
	"wengang.v1.ImportService.SealDataset",            // sealing a sealed dataset returns it
	"wengang.v1.NotificationService.NotifyUnits",      // a unit is notified once per screening
	"wengang.v1.NotificationService.ResolveObjection", // resolving the same way returns it
	"wengang.v1.SyncService.PushBatch",                // keyed by batch id + content hash
	"wengang.v1.SyncService.PushAccountCorrection",    // keyed by correction_id
	"wengang.v1.SyncService.ReportScreening",          // keyed by screening id + revision
	"wengang.v1.IntakeService.ResolveConflict",        // resolving the same way returns it
	"wengang.v1.PublicityService.ApproveRound",        // approving an approved round returns it
	"wengang.v1.PublicityService.ResolveObjection",    // resolving the same way returns it
	"wengang.v1.PublicityService.ReleaseRound",        // once per enterprise and policy year
	"wengang.v1.FinanceService.AckInstructions",       // acknowledging twice changes nothing
	"wengang.v1.FinanceService.ReportResults",         // the same result twice changes nothing
	"wengang.v1.FinanceService.ConfirmFunding",        // confirming a confirmed request returns it
	"wengang.v1.FinanceService.ImportPain002",         // applies results like ReportResults
}

// hasField reports whether m, or a message field of m (such as an upload's
// header), has a field of that name.
func hasField(m protoreflect.MessageDescriptor, name protoreflect.Name) bool {
	if m.Fields().ByName(name) != nil {
		return true
	}
	fs := m.Fields()
	for i := range fs.Len() {
		if sub := fs.Get(i).Message(); sub != nil && sub.Fields().ByName(name) != nil {
			return true
		}
	}
	return false
}

func TestEveryWriteIsIdempotent(t *testing.T) {
	t.Parallel()
	writes := 0
	known := map[protoreflect.FullName]bool{}
	for _, svc := range services(t) {
		ms := svc.Methods()
		for i := range ms.Len() {
			m := ms.Get(i)
			known[m.FullName()] = true
			if slices.ContainsFunc(readPrefixes, func(p string) bool { return strings.HasPrefix(string(m.Name()), p) }) {
				continue
			}
			writes++
			keyed := hasField(m.Input(), "idempotency_key")
			natural := slices.Contains(naturallyIdempotent, m.FullName())
			switch {
			case !keyed && !natural:
				t.Errorf("%s changes state but takes no idempotency_key and is not known to be naturally idempotent", m.FullName())
			case keyed && natural:
				t.Errorf("%s takes an idempotency_key; drop it from naturallyIdempotent", m.FullName())
			}
		}
	}
	for _, name := range naturallyIdempotent {
		if !known[name] {
			t.Errorf("naturallyIdempotent names %s, which is not an RPC", name)
		}
	}
	if writes < 25 {
		t.Fatalf("found %d writes, want the whole package's", writes)
	}
}

func TestPagedListsArePaged(t *testing.T) {
	t.Parallel()
	paged := 0
	for _, svc := range services(t) {
		ms := svc.Methods()
		for i := range ms.Len() {
			m := ms.Get(i)
			in, out := m.Input().Fields(), m.Output().Fields()
			if !strings.HasPrefix(string(m.Name()), "List") {
				if in.ByName("page_token") != nil {
					t.Errorf("%s takes a page_token but is not a List RPC", m.FullName())
				}
				continue
			}
			paged++
			if f := in.ByName("page_size"); f == nil || f.Kind() != protoreflect.Int32Kind {
				t.Errorf("%s: request lacks int32 page_size", m.FullName())
			}
			if f := in.ByName("page_token"); f == nil || f.Kind() != protoreflect.StringKind {
				t.Errorf("%s: request lacks string page_token", m.FullName())
			}
			if f := out.ByName("next_page_token"); f == nil || f.Kind() != protoreflect.StringKind {
				t.Errorf("%s: response lacks string next_page_token", m.FullName())
			}
		}
	}
	if paged < 15 {
		t.Fatalf("found %d List RPCs, want the whole package's", paged)
	}
}

// The county node's services serve several counties from one process:
// every request names its county.
func TestCountyRequestsNameTheirCounty(t *testing.T) {
	t.Parallel()
	for _, name := range []protoreflect.Name{"ImportService", "ScreeningService", "ReviewService", "NotificationService", "BatchService"} {
		ms := service(t, name).Methods()
		for i := range ms.Len() {
			m := ms.Get(i)
			if !hasField(m.Input(), "county") {
				t.Errorf("%s: request does not name its county", m.FullName())
			}
		}
	}
}

// Hashed messages (a batch's content, an audit entry) must encode
// canonically: no map field anywhere under them, since map order is not
// fixed by the encoding.
func TestHashedMessagesHaveNoMaps(t *testing.T) {
	t.Parallel()
	for _, root := range []protoreflect.Name{"BatchContent", "AuditEntry"} {
		for _, m := range reachable(message(t, root)) {
			fs := m.Fields()
			for i := range fs.Len() {
				if fs.Get(i).IsMap() {
					t.Errorf("%s reaches map field %s", root, fs.Get(i).FullName())
				}
			}
		}
	}
}

// Every instant is a Timestamp and every business date a Date: a field
// named *_at is a google.protobuf.Timestamp, a field named *_on or *_date a
// wengang.v1.Date.
func TestDatesAndInstants(t *testing.T) {
	t.Parallel()
	for _, f := range fields(t) {
		name := string(f.Name())
		var want protoreflect.FullName
		switch {
		case strings.HasSuffix(name, "_at") || name == "at":
			want = "google.protobuf.Timestamp"
		case strings.HasSuffix(name, "_on") || strings.HasSuffix(name, "_date"):
			want = "wengang.v1.Date"
		default:
			continue
		}
		if f.Message() == nil || f.Message().FullName() != want {
			t.Errorf("%s is %s, want %s", f.FullName(), f.Kind(), want)
		}
	}
}
