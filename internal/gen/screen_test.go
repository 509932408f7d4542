package gen

import (
	"sort"
	"strings"

	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/policy/uscc"
)

// outcome is what DOMAIN.md's rules give one unit. The tests compute it
// with the plainest code that follows DOMAIN.md line by line, to show that
// the generated data meets every rule (the screening proper is elsewhere).
type outcome struct {
	decision string
	reasons  []string
	payee    string
	months   int
	base     int64
}

func (o outcome) reasonString() string { return strings.Join(o.reasons, "|") }

func (o outcome) has(code string) bool {
	for _, r := range o.reasons {
		if r == code {
			return true
		}
	}
	return false
}

var holdCodes = map[string]bool{"USCC_CHECKSUM": true, "SIZE_MISSING": true, "ACCOUNT_MISSING": true}

func tertiaryClass(class string) bool {
	d := int(class[0]-'0')*10 + int(class[1]-'0')
	return d == 5 || d == 11 || d == 43 || (d >= 51 && d <= 97)
}

// screenRef applies DOMAIN.md to every unit of ds, by USCC.
func screenRef(ds *refund.Dataset, y int, asOf civil.Date) map[string]outcome {
	type monthState struct{ rows, paid int }
	type unitRows struct {
		months  map[civil.Month]*monthState
		base    int64
		arrears bool
	}
	byUSCC := make(map[string]*unitRows)
	for _, c := range ds.Contributions {
		u := byUSCC[c.USCC]
		if u == nil {
			u = &unitRows{months: make(map[civil.Month]*monthState)}
			byUSCC[c.USCC] = u
		}
		m := u.months[c.Period]
		if m == nil {
			m = &monthState{}
			u.months[c.Period] = m
		}
		m.rows++
		paid := c.PaidOn != 0 && c.PaidOn <= asOf
		if paid {
			m.paid++
		}
		if c.Period.Year() == y {
			if paid {
				u.base += c.EmployerFen + c.EmployeeFen
			} else {
				u.arrears = true
			}
		}
	}
	accounts := make(map[string][]refund.Account)
	for _, a := range ds.Accounts {
		accounts[a.USCC] = append(accounts[a.USCC], a)
	}
	listed := make(map[string]map[refund.List]bool)
	for _, e := range ds.Exclusions {
		if e.OnListAt(asOf) {
			if listed[e.USCC] == nil {
				listed[e.USCC] = make(map[refund.List]bool)
			}
			listed[e.USCC][e.List] = true
		}
	}
	dec := civil.Month(y*100 + 12)
	out := make(map[string]outcome, len(ds.Units))
	for _, u := range ds.Units {
		var o outcome
		add := func(code string) { o.reasons = append(o.reasons, code) }
		if !tertiaryClass(u.Industry) {
			add("NOT_SERVICE_INDUSTRY")
		}
		if u.Size == refund.SizeLarge {
			add("NOT_SME")
		}
		if u.Status != refund.StatusActive {
			add("DEREGISTERED")
		}
		rows := byUSCC[u.USCC]
		if rows != nil {
			for m, s := range rows.months {
				if m <= dec && s.paid == s.rows {
					o.months++
				}
			}
			o.base = rows.base
			if rows.arrears {
				add("ARREARS")
			}
		}
		if o.months < 12 {
			add("INSUFFICIENT_MONTHS")
		}
		n0, n1 := int64(u.HeadcountStart), int64(u.HeadcountEnd)
		if n0 > 0 {
			cut := max(0, n0-n1)
			if !(cut*1000 <= 55*n0 || (n1 <= 30 && cut*100 <= 20*n0)) {
				add("LAYOFF_RATE_EXCEEDED")
			}
		}
		for l, code := range map[refund.List]string{
			refund.ListCredit: "CREDIT_BLACKLIST", refund.ListZombie: "ZOMBIE",
			refund.ListIndustryPolicy: "INDUSTRY_POLICY", refund.ListEnvironment: "ENVIRONMENT",
		} {
			if listed[u.USCC][l] {
				add(code)
			}
		}
		if o.base <= 0 {
			add("NO_CONTRIBUTIONS")
		}
		if st, err := uscc.Check(u.USCC); err != nil || st == uscc.Hold {
			add("USCC_CHECKSUM")
		}
		if u.Size == refund.SizeUnknown {
			add("SIZE_MISSING")
		}
		refused := false
		for _, r := range o.reasons {
			refused = refused || !holdCodes[r]
		}
		if !refused {
			for _, a := range accounts[u.USCC] {
				if a.Kind == refund.AccountCorporate {
					o.payee = "corporate"
				}
			}
			if o.payee == "" && (u.Size == refund.SizeSmall || u.Size == refund.SizeMicro) {
				for _, a := range accounts[u.USCC] {
					if a.Kind == refund.AccountSocialInsurance {
						o.payee = "social_insurance"
					}
				}
			}
			if o.payee == "" {
				add("ACCOUNT_MISSING")
			}
		}
		sort.Strings(o.reasons)
		switch {
		case refused:
			o.decision = "ineligible"
			o.payee = ""
		case len(o.reasons) > 0:
			o.decision = "hold"
		default:
			o.decision = "eligible"
		}
		out[u.USCC] = o
	}
	return out
}
