package access

import (
	"fmt"

	"wengang/internal/fault"
)

// The roles of the policy. A person or finance system holds one role in one
// domain (its token's); a node holds RoleNode in each county its
// certificate names; a caller with no credentials is RoleAnonymous.
const (
	RoleCountyClerk    = "county_clerk"    // 县级经办, in a county
	RoleCountyReviewer = "county_reviewer" // 县级复核, in a county
	RoleCountyAdmin    = "county_admin"    // 县级管理员, in a county
	RoleCityAdmin      = "city_admin"      // 市级管理员, in "city"
	RoleCityApprover   = "city_approver"   // 市级审批, in "city"
	RoleCityViewer     = "city_viewer"     // 市级查看, in "city"
	RoleFinance        = "finance"         // 财政/社银直连, in "city"
	RoleAuditor        = "auditor"         // 审计, in "city" or a county
	RoleNode           = "node"            // a county node, by client certificate
	RoleAnonymous      = "anonymous"       // no credentials: the public portal only
)

// Placement says in which domains a role may be held.
type Placement int

// Placements.
const (
	InCounty       Placement = iota + 1 // a county code
	InCity                              // "city"
	InCityOrCounty                      // either
	ByCertificate                       // never by token: a node's certificate names its counties
	Unassigned                          // never held: callers without credentials
)

// Roles lists every role with where it may be held, in a stable order.
func Roles() []RoleInfo {
	return []RoleInfo{
		{RoleCountyClerk, InCounty},
		{RoleCountyReviewer, InCounty},
		{RoleCountyAdmin, InCounty},
		{RoleCityAdmin, InCity},
		{RoleCityApprover, InCity},
		{RoleCityViewer, InCity},
		{RoleFinance, InCity},
		{RoleAuditor, InCityOrCounty},
		{RoleNode, ByCertificate},
		{RoleAnonymous, Unassigned},
	}
}

// RoleInfo is a role and where it may be held.
type RoleInfo struct {
	Name      string
	Placement Placement
}

// ValidCounty reports whether code can be a county domain: six ASCII digits
// (a GB/T 2260 code, or an agency's configured code of the same form).
func ValidCounty(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// ValidAssignment returns nil when a bearer token may hold role in domain,
// else fault.ErrInvalid saying why: county roles in a county, city roles
// and finance in "city", the auditor in either; node and anonymous are
// never held by a token.
func ValidAssignment(role, domain string) error {
	for _, r := range Roles() {
		if r.Name != role {
			continue
		}
		city, county := domain == DomainCity, ValidCounty(domain)
		switch {
		case r.Placement == ByCertificate || r.Placement == Unassigned:
			return fault.New(fault.ErrInvalid, "role %s is not given by a token (该角色不能通过令牌授予)", role)
		case !city && !county:
			return fault.New(fault.ErrInvalid, "domain %q: want %q or a six-digit county code (域应为 city 或六位县区代码)", domain, DomainCity)
		case r.Placement == InCounty && !county:
			return fault.New(fault.ErrInvalid, "role %s is held in a county, not in %q (县级角色只能授予县区)", role, domain)
		case r.Placement == InCity && !city:
			return fault.New(fault.ErrInvalid, "role %s is held in %q, not in county %s (市级角色只能授予 city)", role, DomainCity, domain)
		}
		return nil
	}
	return fault.New(fault.ErrInvalid, "unknown role %q; roles: %s (未知角色)", role, tokenRoles())
}

func tokenRoles() string {
	s := ""
	for _, r := range Roles() {
		if r.Placement == ByCertificate || r.Placement == Unassigned {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += r.Name
	}
	return s
}

// homes returns the domains p holds its role in: a token's domain, or the
// counties a node's certificate names; none for an anonymous caller. A
// principal whose role may not be held where it claims has no home.
func (p Principal) homes() []string {
	switch p.Kind {
	case KindNode:
		if p.Role != RoleNode {
			return nil
		}
		var hs []string
		for _, c := range p.Counties {
			if ValidCounty(c) {
				hs = append(hs, c)
			}
		}
		return hs
	case KindPerson, KindFinance:
		if ValidAssignment(p.Role, p.Domain) != nil {
			return nil
		}
		if (p.Kind == KindFinance) != (p.Role == RoleFinance) {
			return nil
		}
		return []string{p.Domain}
	}
	return nil
}

// String names p for messages and logs: "county_clerk 张三 (token:7) of 371502".
func (p Principal) String() string {
	who := p.Role
	if p.Name != "" && p.Name != p.Subject {
		who += " " + p.Name
	}
	if p.Subject != "" {
		who += " (" + p.Subject + ")"
	}
	switch {
	case p.Kind == KindNode:
		return fmt.Sprintf("%s for counties %v", who, p.Counties)
	case p.Domain != "":
		return who + " of " + p.Domain
	}
	return who
}
