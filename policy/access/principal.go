package access

import "context"

// Kind says what sort of caller a principal is.
type Kind string

// Kinds of callers.
const (
	KindPerson  Kind = "person"         // a clerk, reviewer, administrator, approver or auditor, with a bearer token
	KindFinance Kind = "finance_system" // a finance system, with a bearer token
	KindNode    Kind = "node"           // a county node, with a client certificate
	KindSystem  Kind = "system"         // the process itself (workers, migrations)
	// KindAnonymous is a caller without credentials: the public, on the
	// portal.
	KindAnonymous Kind = "anonymous"
)

// DomainCity is the domain of city-wide roles; every other domain is a
// county (or agency) code.
const DomainCity = "city"

// Principal is the authenticated caller of one request.
type Principal struct {
	Kind     Kind
	Subject  string   // a token's id, or a certificate's common name
	Name     string   // a person's name, for the audit log and four-eyes checks
	Role     string   // such as county_clerk
	Domain   string   // "city" or a county code (people and finance systems)
	Counties []string // the counties a node's certificate names
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of ctx, if authenticated.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// System is the principal of the process's own work.
func System(what string) Principal {
	return Principal{Kind: KindSystem, Subject: what, Name: what, Role: "system"}
}

// Anonymous is the principal of a request without credentials; the policy
// lets it use the public portal only.
func Anonymous() Principal {
	return Principal{Kind: KindAnonymous, Subject: "anonymous", Name: "anonymous", Role: RoleAnonymous}
}
