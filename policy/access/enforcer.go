package access

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"wengang/internal/fault"
)

//go:embed model.conf
var modelConf string

//go:embed policy.csv
var policyCSV string

// Enforcer decides whether a principal may call a procedure in a domain:
// the Casbin enforcer over the embedded model and policy, and the table of
// Rules. It is safe for concurrent use; the policy never changes while the
// process runs.
type Enforcer struct {
	casbin *casbin.SyncedEnforcer
	rules  map[string]Rule
}

// New loads the embedded model (model.conf) and default policy
// (policy.csv). An error means the shipped policy is broken.
func New() (*Enforcer, error) {
	m, err := newModel()
	if err != nil {
		return nil, err
	}
	ce, err := casbin.NewSyncedEnforcer(m, adapter{policyCSV})
	if err != nil {
		return nil, fmt.Errorf("access: policy: %w", err)
	}
	return &Enforcer{casbin: ce, rules: Rules()}, nil
}

func newModel() (model.Model, error) {
	m, err := model.NewModelFromString(modelConf)
	if err != nil {
		return nil, fmt.Errorf("access: model: %w", err)
	}
	return m, nil
}

// Rule returns the rule of procedure, if it has one.
func (e *Enforcer) Rule(procedure string) (Rule, bool) {
	r, ok := e.rules[procedure]
	return r, ok
}

// Allow returns nil when p may call procedure in domain, else
// fault.ErrPermissionDenied saying who may not do what where. A procedure
// without a rule and an empty domain are denied; a principal whose role
// may not be held where it claims (ValidAssignment), or holds no domain,
// may do only what the public may.
func (e *Enforcer) Allow(p Principal, procedure, domain string) error {
	rule, ok := e.rules[procedure]
	if !ok {
		return fault.New(fault.ErrPermissionDenied, "%s is not a procedure the access policy knows; denied (未知接口，拒绝访问)", procedure)
	}
	if domain == "" {
		return fault.New(fault.ErrPermissionDenied, "%s: no domain to act in; denied", procedure)
	}
	role, homes := p.Role, p.homes()
	if len(homes) == 0 {
		// Without a domain to hold a role in (no credentials, or a role
		// that may not be held where it claims), a caller is the public.
		role, homes = RoleAnonymous, []string{""}
	}
	for _, home := range homes {
		ok, err := e.casbin.Enforce(role, home, domain, rule.Object, rule.Action)
		if err != nil {
			return fmt.Errorf("access: enforce %s: %w", procedure, err)
		}
		if ok {
			return nil
		}
	}
	return fault.New(fault.ErrPermissionDenied, "%s may not %s %s in %s (%s; 无权在 %s 执行此操作)",
		p, rule.Action, rule.Object, domain, procedure, domain)
}

// Authorize resolves the domains req names for procedure (Domains) and
// returns nil when p is allowed in every one of them; else the first
// refusal (fault.ErrPermissionDenied), a request that names no domain
// where it must (fault.ErrInvalid), or ctx's error once it is done.
func (e *Enforcer) Authorize(ctx context.Context, p Principal, procedure string, req proto.Message) error {
	domains, err := e.Domains(p, procedure, req)
	if err != nil {
		return err
	}
	for _, d := range domains {
		if err := e.Allow(p, procedure, d); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Domains returns the domains a request for procedure acts in, by its
// rule's Source: "city"; the county its Field names (required, never
// "city"); the counties its repeated Field names, or when it names none,
// the domains p holds its role in; the "city" or county its domain Field
// names (required). A procedure without a rule is fault.ErrPermissionDenied;
// a missing or malformed domain field is fault.ErrInvalid.
func (e *Enforcer) Domains(p Principal, procedure string, req proto.Message) ([]string, error) {
	rule, ok := e.rules[procedure]
	if !ok {
		return nil, fault.New(fault.ErrPermissionDenied, "%s is not a procedure the access policy knows; denied (未知接口，拒绝访问)", procedure)
	}
	if rule.Source == FromCity {
		return []string{DomainCity}, nil
	}
	if req == nil {
		return nil, fault.New(fault.ErrInvalid, "%s: no request", procedure)
	}
	v, ok, err := field(req.ProtoReflect(), rule.Field, rule.Source == FromCounties)
	if err != nil {
		return nil, fmt.Errorf("access: %s: %w", procedure, err)
	}
	switch rule.Source {
	case FromCounty, FromDomain:
		s := ""
		if ok {
			s = strings.TrimSpace(v.String())
		}
		if s == "" {
			return nil, fault.New(fault.ErrInvalid, "%s: required: the county this request is for (必须指定县区)", rule.Field)
		}
		if rule.Source == FromCounty && s == DomainCity {
			return nil, fault.New(fault.ErrInvalid, "%s: %q is not a county (不是县区代码)", rule.Field, s)
		}
		return []string{s}, nil
	case FromCounties:
		var ds []string
		if ok {
			list := v.List()
			for i := range list.Len() {
				s := strings.TrimSpace(list.Get(i).String())
				if s == "" || s == DomainCity {
					return nil, fault.New(fault.ErrInvalid, "%s[%d]: %q is not a county (不是县区代码)", rule.Field, i, s)
				}
				if !slices.Contains(ds, s) {
					ds = append(ds, s)
				}
			}
		}
		if len(ds) == 0 {
			ds = p.homes()
		}
		if len(ds) == 0 {
			return nil, fault.New(fault.ErrPermissionDenied, "%s names no county and %s holds no domain; denied", procedure, p)
		}
		return ds, nil
	}
	return nil, fmt.Errorf("access: %s: unknown domain source %d", procedure, rule.Source)
}

// field follows a dotted path of field names from m to a string field
// (repeated when list is set); ok is false when the field, or a message on
// the way, is unset. A path that does not lead to such a field of m's type
// is an error: the rule table does not fit the contract.
func field(m protoreflect.Message, path string, list bool) (v protoreflect.Value, ok bool, err error) {
	names := strings.Split(path, ".")
	md, present := m.Descriptor(), true
	for i, name := range names {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return v, false, fmt.Errorf("%s has no field %q", md.FullName(), name)
		}
		if i == len(names)-1 {
			if fd.Kind() != protoreflect.StringKind || fd.IsMap() || fd.IsList() != list {
				return v, false, fmt.Errorf("%s.%s is not a %sstring field", md.FullName(), name, map[bool]string{true: "repeated "}[list])
			}
			if !present || !m.Has(fd) {
				return v, false, nil
			}
			return m.Get(fd), true, nil
		}
		if fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return v, false, fmt.Errorf("%s.%s is not a message field", md.FullName(), name)
		}
		if present && m.Has(fd) {
			m = m.Get(fd).Message()
		} else {
			present = false
		}
		md = fd.Message()
	}
	return v, false, errors.New("empty field path")
}

// adapter is a read-only persist.Adapter over the embedded policy text that,
// unlike Casbin's string adapter, refuses a malformed line instead of
// skipping it. Blank lines and # comments are ignored.
type adapter struct{ text string }

var _ persist.Adapter = adapter{}

func (a adapter) LoadPolicy(m model.Model) error {
	sc := bufio.NewScanner(strings.NewReader(a.text))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
			if fields[i] == "" {
				return fmt.Errorf("policy.csv:%d: empty field", n)
			}
		}
		want := map[string]int{"p": 4, "g": 3}[fields[0]]
		if want == 0 || len(fields) != want {
			return fmt.Errorf("policy.csv:%d: want \"p, role, object, action\" or \"g, role, parent\"", n)
		}
		if err := persist.LoadPolicyArray(fields, m); err != nil {
			return fmt.Errorf("policy.csv:%d: %w", n, err)
		}
	}
	return sc.Err()
}

var errReadOnly = errors.New("access: the embedded policy is read-only")

func (adapter) SavePolicy(model.Model) error                              { return errReadOnly }
func (adapter) AddPolicy(string, string, []string) error                  { return errReadOnly }
func (adapter) RemovePolicy(string, string, []string) error               { return errReadOnly }
func (adapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }
