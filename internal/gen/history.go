package gen

import (
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// Unemployment insurance in Shandong: the employer pays 0.7% and the
// employee 0.3% of the contribution base (per mille here).
const (
	employerRate = 7
	employeeRate = 3
)

// headcount returns the insured staff of d in period m: drifting towards
// N0 before Y, moving in a straight line from N0 to N1 through Y (from
// its first month when it started in Y), drifting from N1 after Y.
func (g *countyGen) headcount(d *draft, m civil.Month) int32 {
	y := g.y
	switch {
	case m.Year() < y:
		k := int64(monthsBetween(m, month(y-1, 12)))
		return d.before + int32(int64(d.before)*int64(d.priorDrift)*k/(100*24))
	case m.Year() == y:
		n0, n1 := d.unit.HeadcountStart, d.unit.HeadcountEnd
		k, s := m.Month(), 0
		if d.start.Year() == y {
			s = d.start.Month()
		}
		if k <= s {
			return n0
		}
		return n0 + (n1-n0)*int32(k-s)/int32(12-s)
	default:
		k := int64(monthsBetween(month(y, 12), m))
		return d.after + int32(int64(d.after)*int64(d.postDrift)*k/(100*12))
	}
}

// wageIn returns d's contribution base per person-month in year yr: 5%
// lower each year before Y, 5% higher each year after.
func (g *countyGen) wageIn(d *draft, yr int) int64 {
	return d.wage * int64(100+5*(yr-g.y)) / 100
}

// amounts returns the employer's and the employee's contributions on a
// base, in fen, rounded half up.
func amounts(base int64) (employer, employee int64) {
	return (base*employerRate + 500) / 1000, (base*employeeRate + 500) / 1000
}

// onTime returns a payment date in the month after the period.
func (g *countyGen) onTime(m civil.Month) civil.Date {
	return day(addMonths(m, 1), 1+g.r.IntN(25))
}

// payLate records a payment of c on date paid with the late fee due for
// it: 0.05% a day (万分之五) from the end of the month after the period.
func payLate(c *refund.Contribution, paid civil.Date) {
	c.PaidOn = paid
	c.LateFeeFen = 0
	if due := lastDay(addMonths(c.Period, 1)); paid > due {
		c.LateFeeFen = (c.EmployerFen + c.EmployeeFen) * int64(daysBetween(due, paid)) * 5 / 10000
	}
}

func unpay(c *refund.Contribution) { c.PaidOn, c.LateFeeFen = 0, 0 }

// history appends d's contribution rows, period by period.
func (g *countyGen) history(d *draft, code string) {
	stop := d.stop
	if stop == 0 || stop > g.last {
		stop = g.last
	}
	rows := g.rows[:0]
	for m := d.start; m <= stop; m = addMonths(m, 1) {
		if d.gapFrom != 0 && m >= d.gapFrom && m <= d.gapTo {
			continue
		}
		h := g.headcount(d, m)
		if h <= 0 {
			continue
		}
		er, ee := amounts(int64(h) * g.wageIn(d, m.Year()))
		paid := g.onTime(m)
		if d.prompt {
			paid = min(paid, g.asOf)
		}
		rows = append(rows, refund.Contribution{USCC: code, Period: m, EmployerFen: er, EmployeeFen: ee, PaidOn: paid})
	}
	g.rows = rows
	if cap(g.supp) < len(rows) {
		g.supp = make([][]refund.Contribution, len(rows), 2*len(rows))
	}
	supp := g.supp[:len(rows)]
	for i := range supp {
		supp[i] = supp[i][:0]
	}
	g.applyHabits(d, rows, supp)
	for i, c := range rows {
		g.ds.Contributions = append(g.ds.Contributions, c)
		g.ds.Contributions = append(g.ds.Contributions, supp[i]...)
	}
}

// indexes returns the indexes of rows whose period's year is before, in or
// after Y.
func (g *countyGen) indexes(rows []refund.Contribution) (prior, inY, post []int) {
	for i, c := range rows {
		switch y := c.Period.Year(); {
		case y < g.y:
			prior = append(prior, i)
		case y == g.y:
			inY = append(inY, i)
		default:
			post = append(post, i)
		}
	}
	return prior, inY, post
}

// applyHabits edits the on-time rows of d as its habits say, and adds
// second rows for some months to supp.
func (g *countyGen) applyHabits(d *draft, rows []refund.Contribution, supp [][]refund.Contribution) {
	if d.habits == 0 || len(rows) == 0 {
		return
	}
	r, y := g.r, g.y
	prior, inY, post := g.indexes(rows)
	h := d.habits

	if h&habitSloppy != 0 {
		for i := range rows {
			if chance(r, 150) {
				paid := day(addMonths(rows[i].Period, 2+r.IntN(5)), 1+r.IntN(28))
				if paid <= g.asOf {
					payLate(&rows[i], paid)
				}
			}
		}
	}
	if h&habitOldGaps != 0 && len(prior) > 0 {
		for n := 1 + r.IntN(4); n > 0; n-- {
			unpay(&rows[pick(r, prior)])
		}
	}
	if h&habitBackPay != 0 && len(prior) >= 2 {
		n := min(2+r.IntN(7), len(prior))
		from := r.IntN(len(prior) - n + 1)
		paid := randomDate(r, civil.MustDate(y, 3, 1), civil.MustDate(y, 12, 20))
		for _, i := range prior[from : from+n] {
			payLate(&rows[i], paid)
		}
	}
	if h&habitArrears != 0 && len(inY) > 0 {
		for n := 1 + r.IntN(3); n > 0; n-- {
			i := pick(r, inY)
			if chance(r, 500) {
				unpay(&rows[i])
			} else {
				payLate(&rows[i], g.asOf.AddDays(1+r.IntN(75)))
			}
		}
	}
	if h&habitStopPaying != 0 && len(inY) > 0 {
		from := inY[len(inY)/2+r.IntN(len(inY)-len(inY)/2)]
		for i := from; i < len(rows); i++ {
			unpay(&rows[i])
		}
	}
	if h&habitRecentUnpaid != 0 && len(post) > 0 {
		for n := min(1+r.IntN(2), len(post)); n > 0; n-- {
			i := post[len(post)-n]
			if chance(r, 500) {
				unpay(&rows[i])
			} else {
				payLate(&rows[i], g.asOf.AddDays(1+r.IntN(40)))
			}
		}
	}
	if h&habitSplit != 0 {
		for n := 1 + r.IntN(3); n > 0; n-- {
			i := r.IntN(len(rows))
			s := g.supplement(d, rows[i])
			switch {
			case rows[i].PaidOn == 0 || chance(r, 100):
				unpay(&s)
			case chance(r, 400):
				payLate(&s, rows[i].PaidOn.AddDays(5+r.IntN(36)))
			}
			supp[i] = append(supp[i], s)
		}
	}

	// The catalogue's precise events, on June of Y unless said otherwise.
	june := -1
	for _, i := range inY {
		if rows[i].Period.Month() == 6 {
			june = i
		}
	}
	if june < 0 && len(inY) > 0 {
		june = inY[len(inY)/2]
	}
	if june >= 0 {
		switch {
		case h&habitOneUnpaidY != 0:
			unpay(&rows[june])
		case h&habitOneAfterAsOf != 0:
			payLate(&rows[june], g.asOf.AddDays(1))
		case h&habitOneOnAsOf != 0:
			payLate(&rows[june], g.asOf)
		case h&habitSplitUnpaidY != 0:
			s := g.supplement(d, rows[june])
			unpay(&s)
			supp[june] = append(supp[june], s)
		case h&habitSplitPaidY != 0:
			s := g.supplement(d, rows[june])
			payLate(&s, rows[june].PaidOn.AddDays(12))
			supp[june] = append(supp[june], s)
		case h&habitSplitAfterAsOf != 0:
			s := g.supplement(d, rows[june])
			payLate(&s, g.asOf.AddDays(3))
			supp[june] = append(supp[june], s)
		}
	}
	if h&habitLateDecember != 0 && len(inY) > 0 {
		i := inY[len(inY)-1]
		paid := min(g.asOf, civil.MustDate(y+1, 2, 10))
		payLate(&rows[i], paid)
	}
	if h&habitAllYUnpaid != 0 {
		for _, i := range inY {
			unpay(&rows[i])
		}
	}
	if h&habitPriorUnpaid != 0 {
		for _, i := range prior {
			unpay(&rows[i])
		}
	}
	if h&habitPriorBackPaid != 0 {
		paid := civil.MustDate(y, 6, 15)
		for _, i := range prior {
			payLate(&rows[i], paid)
		}
	}
}

// supplement returns a second row for the period of c: the contributions
// of one or two people registered late (补差), paid with c.
func (g *countyGen) supplement(d *draft, c refund.Contribution) refund.Contribution {
	er, ee := amounts(int64(1+g.r.IntN(2)) * g.wageIn(d, c.Period.Year()))
	s := refund.Contribution{USCC: c.USCC, Period: c.Period, EmployerFen: er, EmployeeFen: ee}
	if c.PaidOn != 0 {
		payLate(&s, c.PaidOn)
	}
	return s
}

// accountsOf appends the accounts d has.
func (g *countyGen) accountsOf(d *draft, u *refund.Unit) {
	switch d.accounts {
	case acctCorporate:
		g.account(u, refund.AccountCorporate)
	case acctBoth:
		g.account(u, refund.AccountCorporate)
		g.account(u, refund.AccountSocialInsurance)
	case acctSocial:
		g.account(u, refund.AccountSocialInsurance)
	}
}

func (g *countyGen) account(u *refund.Unit, kind refund.AccountKind) {
	r := g.r
	total := 0
	for _, b := range banks {
		total += b.weight
	}
	n := r.IntN(total)
	var b bank
	for _, x := range banks {
		if n < x.weight {
			b = x.bank
			break
		}
		n -= x.weight
	}
	a := refund.Account{USCC: u.USCC, Kind: kind, Bank: g.branch(b), AccountName: u.Name}
	if !chance(r, 150) {
		code := make([]byte, 0, 12)
		code = append(code, b.code...)
		code = append(code, "4741"...)
		for len(code) < 12 {
			code = append(code, byte('0'+r.IntN(10)))
		}
		a.BankCode = string(code)
	}
	no := make([]byte, 0, b.acctLen)
	no = append(no, b.acctPrefix...)
	for len(no) < b.acctLen {
		no = append(no, byte('0'+r.IntN(10)))
	}
	a.AccountNo = string(no)
	g.ds.Accounts = append(g.ds.Accounts, a)
}

// branch names a branch of b in the county: 中国工商银行聊城东昌支行,
// 中国农业银行阳谷县支行, 山东阳谷农村商业银行股份有限公司营业部.
func (g *countyGen) branch(b bank) string {
	r, c := g.r, g.info
	switch b.kind {
	case bankRural:
		town := c.short
		if c.district || c.name == "" {
			town = "聊城"
		}
		n := "山东" + town + "农村商业银行股份有限公司"
		if c.district && c.name != "" {
			return n + c.short + "支行"
		}
		return n + pick(r, []string{"营业部", "城区支行"})
	case bankCity:
		if chance(r, 500) {
			return b.name + "聊城分行"
		}
		return b.name + "聊城" + c.short + "支行"
	}
	switch {
	case chance(r, 150):
		return b.name + "聊城分行营业部"
	case c.district:
		return b.name + "聊城" + c.short + "支行"
	case c.name != "" && c.short != c.name && chance(r, 500):
		return b.name + c.name + "支行"
	default:
		return b.name + c.short + "支行"
	}
}
