// Package refund is the job-stabilization refund policy (稳岗返还) as code:
// who is eligible, who is held for a person to act, and how much each unit
// gets, to the fen, exactly as the Liaocheng 2022 plan and DOMAIN.md say.
//
// The package imports no database and no transport. Its input is a
// [Dataset] (the four source files of one or more counties), an as-of date
// D and [Params]; its output is one [Result] per unit.
package refund

import (
	"fmt"
	"slices"
	"strings"

	"wengang/policy/civil"
	"wengang/policy/industry"
	"wengang/policy/uscc"
)

// Decision is the outcome of screening one unit.
type Decision uint8

// Decisions.
const (
	Eligible   Decision = iota + 1 // to be paid
	Hold                           // a person must act before payment
	Ineligible                     // refused; the reasons say why
)

var decisionNames = [...]string{"", "eligible", "hold", "ineligible"}

// String returns "eligible", "hold" or "ineligible".
func (d Decision) String() string {
	if d >= Eligible && d <= Ineligible {
		return decisionNames[d]
	}
	return fmt.Sprintf("Decision(%d)", uint8(d))
}

// ParseDecision is the inverse of Decision.String.
func ParseDecision(s string) (Decision, error) {
	for d := Eligible; d <= Ineligible; d++ {
		if decisionNames[d] == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("refund: unknown decision %q", s)
}

// Reason is one code of DOMAIN.md that applies to a unit. The constants are
// in the byte order of their names, so a set iterates sorted.
type Reason uint8

// Reasons, sorted by name.
const (
	AccountMissing     Reason = iota // hold: no account can be paid
	Arrears                          // a month of the policy year is unpaid at D
	CreditBlacklist                  // on the 严重违法失信 list at D
	Deregistered                     // 注销 or 吊销
	Environment                      // listed as contrary to environmental policy at D
	IndustryPolicy                   // listed as contrary to industrial-structure policy at D
	InsufficientMonths               // fewer fully paid months than required
	LayoffRateExceeded               // layoff rate above the limit
	NotServiceIndustry               // industry not tertiary
	NotSME                           // large enterprise
	NoContributions                  // base is zero
	SizeMissing                      // hold: size class unknown
	USCCChecksum                     // hold: check character wrong
	Zombie                           // on the zombie-enterprise clearing list at D
	numReasons
)

var reasonNames = [numReasons]string{
	"ACCOUNT_MISSING", "ARREARS", "CREDIT_BLACKLIST", "DEREGISTERED", "ENVIRONMENT",
	"INDUSTRY_POLICY", "INSUFFICIENT_MONTHS", "LAYOFF_RATE_EXCEEDED", "NOT_SERVICE_INDUSTRY",
	"NOT_SME", "NO_CONTRIBUTIONS", "SIZE_MISSING", "USCC_CHECKSUM", "ZOMBIE",
}

// String returns the code, such as "NOT_SME".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// ParseReason is the inverse of Reason.String.
func ParseReason(s string) (Reason, error) {
	for r := Reason(0); r < numReasons; r++ {
		if reasonNames[r] == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("refund: unknown reason %q", s)
}

// AllReasons returns every reason in sorted order.
func AllReasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Hold reports whether r holds a unit rather than refusing it.
func (r Reason) Hold() bool {
	return r == USCCChecksum || r == SizeMissing || r == AccountMissing
}

// Reasons is a set of reasons.
type Reasons uint32

// Has reports whether r is in s.
func (s Reasons) Has(r Reason) bool { return s&(1<<r) != 0 }

// With returns s with r added.
func (s Reasons) With(r Reason) Reasons { return s | 1<<r }

// Refusals returns the reasons of s that refuse.
func (s Reasons) Refusals() Reasons {
	return s &^ (1<<USCCChecksum | 1<<SizeMissing | 1<<AccountMissing)
}

// List returns the reasons of s in sorted order.
func (s Reasons) List() []Reason {
	var rs []Reason
	for r := Reason(0); r < numReasons; r++ {
		if s.Has(r) {
			rs = append(rs, r)
		}
	}
	return rs
}

// String joins the sorted codes with '|', as results.csv writes them.
func (s Reasons) String() string {
	var b strings.Builder
	for r := Reason(0); r < numReasons; r++ {
		if s.Has(r) {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(reasonNames[r])
		}
	}
	return b.String()
}

// ParseReasons is the inverse of Reasons.String.
func ParseReasons(s string) (Reasons, error) {
	var set Reasons
	if s == "" {
		return 0, nil
	}
	for _, part := range strings.Split(s, "|") {
		r, err := ParseReason(part)
		if err != nil {
			return 0, err
		}
		set = set.With(r)
	}
	return set, nil
}

// Result is the screening of one unit.
type Result struct {
	USCC           string
	Name           string
	County         string
	Decision       Decision
	Reasons        Reasons
	HeadcountStart int32
	HeadcountEnd   int32
	MonthsPaid     int32 // fully paid months up to the months cut-off, by D
	BaseFen        int64 // Σ employer+employee of policy-year months paid by D
	RefundFen      int64 // 0 when ineligible
	// Payee is the account chosen by the account rules (Kind is zero when
	// none can be paid). It is chosen for every unit; ACCOUNT_MISSING is
	// only judged when no refusal applies.
	Payee Account
}

// Layoff reports whether a unit with n0 insured staff at the start of the
// year and n1 at its end passes the layoff test, comparing in integers.
// Growth is no layoff; n0 = 0 means no layoff.
func (p Params) Layoff(n0, n1 int32) bool {
	if n0 <= 0 || n1 >= n0 {
		return true
	}
	drop, base := int64(n0-n1), int64(n0)
	if drop*p.LayoffLimit.Den <= p.LayoffLimit.Num*base {
		return true
	}
	small := n1
	if p.SmallBy == SmallByYearStart {
		small = n0
	}
	return small <= p.SmallHeadcount && drop*p.SmallLayoffLimit.Den <= p.SmallLayoffLimit.Num*base
}

// Refund returns base × rate in integer fen, rounded half up.
func (p Params) Refund(baseFen int64) int64 {
	if baseFen <= 0 {
		return 0
	}
	return (baseFen*p.RateBP + 5000) / 10000
}

// Input is everything known about one unit: its own rows of each file.
type Input struct {
	Unit          Unit
	Contributions []Contribution
	Accounts      []Account
	Exclusions    []Exclusion
}

// Screener decides units under one set of parameters at one as-of date.
// Its scratch space makes it unsafe for concurrent use; make one per
// goroutine.
type Screener struct {
	Params Params
	AsOf   civil.Date // D, the data date
	months []monthPaid
}

type monthPaid struct {
	m    civil.Month
	paid bool
}

// Decide screens one unit. It never fails: every fact it cannot accept has
// already been refused as bad input by the reader.
func (s *Screener) Decide(in *Input) Result {
	u := &in.Unit
	p := &s.Params
	d := s.AsOf
	res := Result{
		USCC:           u.USCC,
		Name:           u.Name,
		County:         u.County,
		HeadcountStart: u.HeadcountStart,
		HeadcountEnd:   u.HeadcountEnd,
	}
	var why Reasons

	if st, err := uscc.Check(u.USCC); err != nil || st != uscc.Valid {
		why = why.With(USCCChecksum)
	}
	if !industry.Class(u.Industry).Tertiary() {
		why = why.With(NotServiceIndustry)
	}
	switch u.Size {
	case SizeUnknown:
		why = why.With(SizeMissing)
	case SizeLarge:
		why = why.With(NotSME)
	}
	if u.Status != StatusActive {
		why = why.With(Deregistered)
	}
	if !p.Layoff(u.HeadcountStart, u.HeadcountEnd) {
		why = why.With(LayoffRateExceeded)
	}

	// Contributions: the base, arrears and fully paid months.
	months := s.months[:0]
	var base int64
	arrears := false
	for i := range in.Contributions {
		c := &in.Contributions[i]
		paid := c.PaidOn != 0 && c.PaidOn <= d
		if c.Period.Year() == p.PolicyYear {
			if paid {
				base += c.EmployerFen + c.EmployeeFen
			} else {
				arrears = true
			}
		}
		if c.Period <= p.MonthsThrough {
			months = append(months, monthPaid{c.Period, paid})
		}
	}
	res.MonthsPaid = countPaidMonths(months)
	s.months = months[:0]
	res.BaseFen = base
	if arrears {
		why = why.With(Arrears)
	}
	if int(res.MonthsPaid) < p.MonthsRequired {
		why = why.With(InsufficientMonths)
	}
	if base <= 0 {
		why = why.With(NoContributions)
	}

	for i := range in.Exclusions {
		e := &in.Exclusions[i]
		if !e.OnListAt(d) {
			continue
		}
		switch e.List {
		case ListCredit:
			why = why.With(CreditBlacklist)
		case ListZombie:
			why = why.With(Zombie)
		case ListIndustryPolicy:
			why = why.With(IndustryPolicy)
		case ListEnvironment:
			why = why.With(Environment)
		}
	}

	res.Payee = ChoosePayee(u.Size, in.Accounts)
	if why.Refusals() == 0 && res.Payee.Kind == 0 {
		why = why.With(AccountMissing)
	}

	switch {
	case why.Refusals() != 0:
		res.Decision = Ineligible
	case why != 0:
		res.Decision = Hold
	default:
		res.Decision = Eligible
	}
	res.Reasons = why
	if res.Decision != Ineligible {
		res.RefundFen = p.Refund(base)
	}
	return res
}

// ChoosePayee returns the account to pay: the first corporate account;
// else, for a small or micro unit, the first social-insurance account; else
// the zero Account.
func ChoosePayee(size Size, accounts []Account) Account {
	for _, a := range accounts {
		if a.Kind == AccountCorporate {
			return a
		}
	}
	if size == SizeSmall || size == SizeMicro {
		for _, a := range accounts {
			if a.Kind == AccountSocialInsurance {
				return a
			}
		}
	}
	return Account{}
}

// countPaidMonths counts the distinct months all of whose rows are paid.
// It sorts ms in place; a unit has a few dozen rows, mostly in order, so
// insertion sort unless there are many.
func countPaidMonths(ms []monthPaid) int32 {
	if len(ms) > 64 {
		slices.SortFunc(ms, func(a, b monthPaid) int { return int(a.m - b.m) })
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].m < ms[j-1].m; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	var n int32
	for i := 0; i < len(ms); {
		j, all := i, true
		for ; j < len(ms) && ms[j].m == ms[i].m; j++ {
			all = all && ms[j].paid
		}
		if all {
			n++
		}
		i = j
	}
	return n
}
