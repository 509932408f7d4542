package gen

import (
	"strconv"
	"strings"

	"wengang/policy/civil"
	"wengang/policy/refund"
)

// Case is a unit of the catalogue: made to meet one rule of DOMAIN.md, or
// a boundary of one, with the screening result the policy gives it
// (Liaocheng 2022 parameters: small means N1 ≤ 30; a Y-period paid late
// but by D counts).
type Case struct {
	USCC     string
	Name     string // what the case shows, e.g. "layoff 200→188"
	Decision string // eligible, hold or ineligible
	Reasons  string // the reason codes, sorted, joined with |
	Payee    string // corporate or social_insurance when the unit is to be paid; else ""
}

// caseKind is a catalogue entry: its index in catalogueCases plus one.
type caseKind uint16

// caseSpec describes a catalogue case: its name, the reasons it must get,
// what it needs of the dates, and how a clean eligible unit is changed
// into it.
type caseSpec struct {
	name    string
	reasons string
	phantom bool                  // not a unit: rows for a USCC that is not in units.csv
	fits    func(*countyGen) bool // nil: fits every county
	build   func(g *countyGen, d *draft)
}

// afterY says whether the county has periods after Y (D is not in January
// of Y+1).
func afterY(g *countyGen) bool { return g.last.Year() > g.y }

func setStaff(d *draft, n0, n1 int32) {
	d.unit.HeadcountStart, d.unit.HeadcountEnd = n0, n1
	d.before, d.after = n0, n1
	if n1 == 0 {
		d.after = n0
	}
}

func setIndustryClass(d *draft, class string) {
	for _, t := range [][]industry{tertiary, tertiaryOutside, secondary} {
		for _, in := range t {
			if in.class == class {
				d.setIndustry(in)
				return
			}
		}
	}
	panic("gen: no industry " + class)
}

func layoffCase(n0, n1 int32, s refund.Size, reasons string) caseSpec {
	return caseSpec{
		name:    "layoff " + strconv.Itoa(int(n0)) + "→" + strconv.Itoa(int(n1)) + " (" + s.String() + ")",
		reasons: reasons,
		build: func(g *countyGen, d *draft) {
			d.unit.Size = s
			setStaff(d, n0, n1)
			if n0 >= 1000 {
				setIndustryClass(d, "7020") // 物业管理: medium up to 1,000 staff
			}
			if n0 == 0 {
				// Nobody insured from October of Y−1 to the end of it.
				d.before, d.after = 3, n1
				d.gapFrom, d.gapTo = month(g.y-1, 10), month(g.y-1, 12)
			}
		},
	}
}

func listCase(name string, l refund.List, reasons string, dates func(g *countyGen) (listed, removed civil.Date)) caseSpec {
	return caseSpec{name: name, reasons: reasons, build: func(g *countyGen, d *draft) {
		listed, removed := dates(g)
		d.lists = append(d.lists, listPlan{list: l, listed: listed, removed: removed})
	}}
}

const layoffExceeded = "LAYOFF_RATE_EXCEEDED"

// catalogueCases are the catalogue, most important first: a county with
// fewer units than cases gets the first ones.
var catalogueCases = []caseSpec{
	{name: "clean", build: func(*countyGen, *draft) {}},
	{name: "not a service industry", reasons: "NOT_SERVICE_INDUSTRY", build: func(g *countyGen, d *draft) {
		d.setIndustry(pickIndustry(g.r, secondary))
	}},
	{name: "large", reasons: "NOT_SME", build: func(g *countyGen, d *draft) {
		d.unit.Size = refund.SizeLarge
		setStaff(d, 500, 510)
	}},
	{name: "size unknown", reasons: "SIZE_MISSING", build: func(g *countyGen, d *draft) {
		d.unit.Size = refund.SizeUnknown
	}},
	{name: "deregistered", reasons: "DEREGISTERED", build: func(g *countyGen, d *draft) {
		d.unit.Status = refund.StatusDeregistered
		if afterY(g) {
			d.stop = month(g.y+1, 1)
		}
	}},
	{name: "insured from February of Y: 11 months", reasons: "INSUFFICIENT_MONTHS", build: func(g *countyGen, d *draft) {
		d.start = month(g.y, 2)
	}},
	{name: "a month of Y unpaid", reasons: "ARREARS", build: func(g *countyGen, d *draft) {
		d.habits |= habitOneUnpaidY
	}},
	layoffCase(200, 188, refund.SizeMedium, layoffExceeded),
	listCase("on the credit list", refund.ListCredit, "CREDIT_BLACKLIST", func(g *countyGen) (civil.Date, civil.Date) {
		return civil.MustDate(g.y, 6, 15), 0
	}),
	listCase("on the zombie list", refund.ListZombie, "ZOMBIE", func(g *countyGen) (civil.Date, civil.Date) {
		return civil.MustDate(g.y-1, 11, 30), 0
	}),
	listCase("on the industry-policy list", refund.ListIndustryPolicy, "INDUSTRY_POLICY", func(g *countyGen) (civil.Date, civil.Date) {
		return civil.MustDate(g.y, 3, 1), 0
	}),
	listCase("on the environment list", refund.ListEnvironment, "ENVIRONMENT", func(g *countyGen) (civil.Date, civil.Date) {
		return g.asOf.AddDays(-40), 0
	}),
	{name: "nothing insured in Y", reasons: "NO_CONTRIBUTIONS", build: func(g *countyGen, d *draft) {
		d.start, d.stop = g.first, month(g.y-1, 6)
		setStaff(d, 0, 0)
		d.before = 20
	}},
	{name: "check character wrong", reasons: "USCC_CHECKSUM", build: func(g *countyGen, d *draft) {
		d.hold = true
	}},
	{name: "no account", reasons: "ACCOUNT_MISSING", build: func(g *countyGen, d *draft) {
		d.accounts = acctNone
	}},
	{name: "social-insurance account only, small", build: func(g *countyGen, d *draft) {
		d.accounts = acctSocial
	}},
	{name: "social-insurance account only, medium", reasons: "ACCOUNT_MISSING", build: func(g *countyGen, d *draft) {
		d.accounts = acctSocial
		d.unit.Size = refund.SizeMedium
		setStaff(d, 120, 125)
	}},
	{name: "rows of a USCC that is not a unit", phantom: true},

	// Industry boundaries.
	{name: "construction 5012 (section E)", reasons: "NOT_SERVICE_INDUSTRY", build: func(g *countyGen, d *draft) {
		setIndustryClass(d, "5012")
	}},
	{name: "division 05 is service", build: func(g *countyGen, d *draft) { setIndustryClass(d, "0512") }},
	{name: "division 11 is service", build: func(g *countyGen, d *draft) { setIndustryClass(d, "1120") }},
	{name: "division 43 is service", build: func(g *countyGen, d *draft) { setIndustryClass(d, "4320") }},

	// Sizes and forms.
	{name: "medium", build: func(g *countyGen, d *draft) {
		d.unit.Size = refund.SizeMedium
		setStaff(d, 150, 150)
	}},
	{name: "micro", build: func(g *countyGen, d *draft) {
		d.unit.Size = refund.SizeMicro
		setStaff(d, 3, 3)
	}},
	{name: "size unknown, 800 staff", reasons: "SIZE_MISSING", build: func(g *countyGen, d *draft) {
		d.unit.Size = refund.SizeUnknown
		setStaff(d, 800, 800)
	}},
	{name: "revoked", reasons: "DEREGISTERED", build: func(g *countyGen, d *draft) {
		d.unit.Status = refund.StatusRevoked
	}},
	{name: "individual business", build: func(g *countyGen, d *draft) {
		d.entity = entityIndividual
		d.unit.Size = refund.SizeMicro
		setStaff(d, 4, 4)
	}},
	{name: "cooperative in division 05", build: func(g *countyGen, d *draft) {
		d.entity = entityCooperative
		setIndustryClass(d, "0512")
		d.words = []string{"农机服务"}
	}},
	{name: "private non-enterprise unit", build: func(g *countyGen, d *draft) {
		d.entity = entityNonprofit
		d.unit.Industry, d.words = "8393", []string{"艺术培训学校"}
	}},

	// Months paid.
	{name: "insured from January of Y: 12 months", build: func(g *countyGen, d *draft) {
		d.start = month(g.y, 1)
	}},
	{name: "3 months of Y−1 and 9 of Y", build: func(g *countyGen, d *draft) {
		d.start = month(g.y-1, 10)
		d.gapFrom, d.gapTo = month(g.y, 1), month(g.y, 3)
	}},
	{name: "3 unpaid months of Y−1 and 9 of Y", reasons: "INSUFFICIENT_MONTHS", build: func(g *countyGen, d *draft) {
		d.start = month(g.y-1, 10)
		d.gapFrom, d.gapTo = month(g.y, 1), month(g.y, 3)
		d.habits |= habitPriorUnpaid
	}},
	{name: "3 months of Y−1 paid during Y and 9 of Y", build: func(g *countyGen, d *draft) {
		d.start = month(g.y-1, 10)
		d.gapFrom, d.gapTo = month(g.y, 1), month(g.y, 3)
		d.habits |= habitPriorBackPaid
	}},
	{name: "months before Y never paid", build: func(g *countyGen, d *draft) {
		d.habits |= habitPriorUnpaid
	}},
	{name: "months before Y back-paid in Y with late fees", build: func(g *countyGen, d *draft) {
		d.habits |= habitBackPay
	}},

	// Arrears and payment dates.
	{name: "a month of Y paid the day after D", reasons: "ARREARS", build: func(g *countyGen, d *draft) {
		d.habits |= habitOneAfterAsOf
	}},
	{name: "a month of Y paid on D", build: func(g *countyGen, d *draft) {
		d.habits |= habitOneOnAsOf
	}},
	{name: "December of Y paid late, before D", fits: func(g *countyGen) bool {
		return g.asOf > civil.MustDate(g.y+1, 1, 31)
	}, build: func(g *countyGen, d *draft) {
		d.habits |= habitLateDecember
	}},
	{name: "a month of Y in two rows, both paid", build: func(g *countyGen, d *draft) {
		d.habits |= habitSplitPaidY
	}},
	{name: "a month of Y in two rows, one unpaid", reasons: "ARREARS", build: func(g *countyGen, d *draft) {
		d.habits |= habitSplitUnpaidY
	}},
	{name: "a month of Y in two rows, one paid after D", reasons: "ARREARS", build: func(g *countyGen, d *draft) {
		d.habits |= habitSplitAfterAsOf
	}},
	{name: "every month of Y unpaid", reasons: "ARREARS|NO_CONTRIBUTIONS", build: func(g *countyGen, d *draft) {
		d.habits |= habitAllYUnpaid
	}},
	{name: "insured only after Y", reasons: "INSUFFICIENT_MONTHS|NO_CONTRIBUTIONS", fits: afterY, build: func(g *countyGen, d *draft) {
		d.start = month(g.y+1, 1)
		setStaff(d, 0, 0)
		d.after = 5
	}},
	{name: "months after Y unpaid", fits: afterY, build: func(g *countyGen, d *draft) {
		d.habits |= habitRecentUnpaid
	}},

	// The layoff vectors of DOMAIN.md, and more boundaries.
	layoffCase(100, 110, refund.SizeSmall, ""),
	layoffCase(200, 189, refund.SizeMedium, ""),
	layoffCase(1000, 945, refund.SizeMedium, ""),
	layoffCase(1000, 944, refund.SizeMedium, layoffExceeded),
	layoffCase(10, 8, refund.SizeMicro, ""),
	layoffCase(10, 7, refund.SizeMicro, layoffExceeded),
	layoffCase(31, 29, refund.SizeSmall, ""),
	layoffCase(20, 15, refund.SizeSmall, layoffExceeded),
	layoffCase(0, 5, refund.SizeMicro, ""),
	layoffCase(5, 4, refund.SizeMicro, ""),
	layoffCase(37, 30, refund.SizeSmall, ""),
	layoffCase(34, 31, refund.SizeSmall, layoffExceeded),
	layoffCase(40, 32, refund.SizeSmall, layoffExceeded),
	layoffCase(3, 0, refund.SizeMicro, layoffExceeded),

	// Exclusion lists at the data date.
	listCase("listed on D", refund.ListEnvironment, "ENVIRONMENT", func(g *countyGen) (civil.Date, civil.Date) {
		return g.asOf, 0
	}),
	listCase("listed the day after D", refund.ListIndustryPolicy, "", func(g *countyGen) (civil.Date, civil.Date) {
		return g.asOf.AddDays(1), 0
	}),
	listCase("removed before D", refund.ListCredit, "", func(g *countyGen) (civil.Date, civil.Date) {
		return civil.MustDate(g.y, 3, 1), g.asOf.AddDays(-20)
	}),
	listCase("removed on D", refund.ListZombie, "", func(g *countyGen) (civil.Date, civil.Date) {
		return civil.MustDate(g.y, 5, 1), g.asOf
	}),
	listCase("removed the day after D", refund.ListCredit, "CREDIT_BLACKLIST", func(g *countyGen) (civil.Date, civil.Date) {
		return civil.MustDate(g.y, 5, 1), g.asOf.AddDays(1)
	}),
	{name: "removed from the credit list and listed again", reasons: "CREDIT_BLACKLIST", build: func(g *countyGen, d *draft) {
		d.lists = append(d.lists,
			listPlan{list: refund.ListCredit, listed: civil.MustDate(g.y-1, 3, 1), removed: civil.MustDate(g.y, 2, 1)},
			listPlan{list: refund.ListCredit, listed: civil.MustDate(g.y, 9, 1)})
	}},

	// USCCs and accounts.
	{name: "organization code check digit wrong (a warning only)", build: func(g *countyGen, d *draft) {
		d.orgBad = true
	}},
	{name: "social-insurance account only, micro", build: func(g *countyGen, d *draft) {
		d.accounts = acctSocial
		d.unit.Size = refund.SizeMicro
		setStaff(d, 6, 6)
	}},
	{name: "social-insurance account only, size unknown", reasons: "ACCOUNT_MISSING|SIZE_MISSING", build: func(g *countyGen, d *draft) {
		d.accounts = acctSocial
		d.unit.Size = refund.SizeUnknown
	}},
	{name: "both accounts", build: func(g *countyGen, d *draft) {
		d.accounts = acctBoth
	}},
	{name: "size unknown and no account", reasons: "ACCOUNT_MISSING|SIZE_MISSING", build: func(g *countyGen, d *draft) {
		d.unit.Size = refund.SizeUnknown
		d.accounts = acctNone
	}},
	{name: "check character wrong and no account", reasons: "ACCOUNT_MISSING|USCC_CHECKSUM", build: func(g *countyGen, d *draft) {
		d.hold = true
		d.accounts = acctNone
	}},

	// Several reasons at once.
	{name: "refused and no account", reasons: "NOT_SERVICE_INDUSTRY", build: func(g *countyGen, d *draft) {
		d.setIndustry(pickIndustry(g.r, secondary))
		d.accounts = acctNone
	}},
	{name: "refused and check character wrong", reasons: "NOT_SME|USCC_CHECKSUM", build: func(g *countyGen, d *draft) {
		d.hold = true
		d.unit.Size = refund.SizeLarge
		setStaff(d, 600, 600)
	}},
	{name: "everything wrong", reasons: "ARREARS|CREDIT_BLACKLIST|DEREGISTERED|NOT_SERVICE_INDUSTRY|NOT_SME|USCC_CHECKSUM|ZOMBIE", build: func(g *countyGen, d *draft) {
		d.hold = true
		d.setIndustry(pickIndustry(g.r, secondary))
		d.unit.Size = refund.SizeLarge
		setStaff(d, 400, 400)
		d.unit.Status = refund.StatusDeregistered
		d.habits |= habitOneUnpaidY
		d.accounts = acctNone
		d.lists = append(d.lists,
			listPlan{list: refund.ListCredit, listed: civil.MustDate(g.y, 1, 10)},
			listPlan{list: refund.ListZombie, listed: civil.MustDate(g.y, 8, 1)})
	}},
}

// catalogue returns the cases that fit the county's dates, in priority
// order.
func (g *countyGen) catalogue() []caseKind {
	var out []caseKind
	for i, c := range catalogueCases {
		if c.fits == nil || c.fits(g) {
			out = append(out, caseKind(i+1))
		}
	}
	return out
}

// cleanDraft is a unit that is eligible: a small service company insured
// since January of Y−1, paying on time, with a corporate account.
func (g *countyGen) cleanDraft() *draft {
	r := g.r
	d := &draft{entity: entityCompany}
	d.setIndustry(pickIndustry(r, tertiary))
	d.unit.Size = refund.SizeSmall
	d.unit.Status = refund.StatusActive
	d.start = month(g.y-1, 1)
	setStaff(d, 20, 21)
	d.wage = wage(r)
	d.accounts = acctCorporate
	d.oldRegistration = true
	d.prompt = true
	return d
}

func (g *countyGen) caseDraft(ck caseKind) *draft {
	d := g.cleanDraft()
	catalogueCases[ck-1].build(g, d)
	return d
}

// caseOf returns the Case a unit of the catalogue plays.
func caseOf(ck caseKind, d *draft, code string) Case {
	spec := catalogueCases[ck-1]
	c := Case{USCC: code, Name: spec.name, Reasons: spec.reasons, Decision: "eligible"}
	for _, r := range strings.Split(spec.reasons, "|") {
		switch r {
		case "":
		case "USCC_CHECKSUM", "SIZE_MISSING", "ACCOUNT_MISSING":
			if c.Decision == "eligible" {
				c.Decision = "hold"
			}
		default:
			c.Decision = "ineligible"
		}
	}
	if c.Decision != "ineligible" && !strings.Contains(c.Reasons, "ACCOUNT_MISSING") {
		switch d.accounts {
		case acctCorporate, acctBoth:
			c.Payee = refund.AccountCorporate.String()
		case acctSocial:
			c.Payee = refund.AccountSocialInsurance.String()
		}
	}
	return c
}
